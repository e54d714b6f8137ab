"""Fixtures shared by the training tests."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def rgb():
    """Ten 8x8 RGB images of noise: training data for tiny models."""
    return (np.random.default_rng(0).random((10, 8, 8, 3)) * 255).astype(np.uint8)
