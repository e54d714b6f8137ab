"""Fixtures of the data tests: a fake punks sdist and a private cache folder."""

from __future__ import annotations

import pytest
from fake_punks_sdist import FakeSdist, make_fake_sdist


@pytest.fixture
def fake_sdist(tmp_path) -> FakeSdist:
    folder = tmp_path / "download"
    folder.mkdir()
    return make_fake_sdist(folder)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never touch the user's real cache or a configured sdist from the tests."""
    monkeypatch.setenv("NAPARI_COLORIZE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NAPARI_COLORIZE_PUNKS_SDIST", raising=False)
