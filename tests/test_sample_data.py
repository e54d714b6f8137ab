"""Sample data: a gray photo with truth, CryptoPunks with truth, a 16-bit stack."""

import numpy as np
import pytest

from napari_colorize import sample_data
from napari_colorize.color import rgb_to_lab


def test_sample_data_layers():
    (gray, _gray_kw, kind), (truth, truth_kw, _) = sample_data.gray_photo()
    assert kind == "image"
    assert gray.dtype == np.uint8
    assert gray.shape == truth.shape[:2]
    assert truth_kw["rgb"]
    assert not truth_kw["visible"]
    # the gray has the truth's lightness, to within rounding
    lab_gray = rgb_to_lab(np.repeat(gray[..., None], 3, axis=-1))
    np.testing.assert_allclose(lab_gray[..., 0], rgb_to_lab(truth)[..., 0], atol=0.5)
    np.testing.assert_allclose(lab_gray[..., 1:], 0, atol=0.01)

    [(stack, kwargs, _)] = sample_data.gray16_stack()
    assert stack.dtype == np.uint16
    assert stack.ndim == 3
    assert len(kwargs["scale"]) == 3
    assert stack.max() > 1000
    np.testing.assert_array_equal(stack, sample_data.make_gray16_stack())


def test_punks_sample():
    try:
        layers = sample_data.punks_stack(n=8)
    except Exception as exc:  # the dataset is fetched on first use
        pytest.skip(f"CryptoPunks not available here: {exc}")
    (gray, _kw, _), (truth, truth_kw, _) = layers
    assert gray.shape == (8, 24, 24)
    assert truth.shape == (8, 24, 24, 3)
    assert truth_kw["rgb"]
