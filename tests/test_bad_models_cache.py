"""Bad model files, downloads and the cache: one clear message each, nothing left behind."""

import errno
import gc
import io
import json
import os
import stat
import sys
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from napari_colorize import cli, model_size, registry
from napari_colorize.checkpoint import (
    atomic_write,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
)
from napari_colorize.errors import CheckpointError


@dataclass
class TinyConfig:
    width: int = 4


class TinyNet(nn.Module):
    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        self.conv = nn.Conv2d(1, config.width, 3, padding=1)
        self.head = nn.Conv2d(config.width, 2, 1)

    def forward(self, x):
        return torch.tanh(self.head(torch.relu(self.conv(x))))


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """A private copy of the registry tables and private cache/data folders."""
    monkeypatch.setattr(registry, "_ARCHITECTURES", dict(registry._ARCHITECTURES))
    monkeypatch.setattr(registry, "_PRETRAINED", dict(registry._PRETRAINED))
    monkeypatch.setattr(registry, "_user_models", None)
    monkeypatch.setenv("NAPARI_COLORIZE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NAPARI_COLORIZE_DATA", str(tmp_path / "data"))
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    registry.register_architecture("tiny-test", TinyNet, TinyConfig, "tiny test net")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ----------------------------------------------------------------- model files (item 11)


def _raw_safetensors(path, header: bytes) -> None:
    path.write_bytes(len(header).to_bytes(8, "little") + header)


@pytest.mark.parametrize("where", ["header", "config"])
def test_deeply_nested_header_is_a_message(tmp_path, where):
    path = tmp_path / "deep.safetensors"
    deep = "[" * 200_000 + "]" * 200_000
    if where == "header":
        _raw_safetensors(path, deep.encode())
    else:
        meta = {"format": "napari-colorize", "format_version": "1", "arch": "tiny-test",
                "config": deep}  # fmt: skip
        _raw_safetensors(path, json.dumps({"__metadata__": meta}).encode())
    with pytest.raises(CheckpointError, match=r"malformed .*nested too deep.*not a napari-colori"):
        read_metadata(path)
    with pytest.raises(CheckpointError, match=r"malformed"):
        load_checkpoint(path)


def test_deeply_nested_header_cli_says_one_line(tmp_path, capsys):
    path = tmp_path / "deep.safetensors"
    _raw_safetensors(path, b"[" * 200_000 + b"]" * 200_000)
    image = tmp_path / "gray.png"
    import imageio.v3 as iio

    iio.imwrite(image, np.zeros((16, 16), np.uint8))
    out = tmp_path / "out.png"
    code = cli.main(["colorize", str(image), "-o", str(out), "--model", str(path)])
    err = capsys.readouterr().err
    assert code != 0
    assert "malformed" in err
    assert "Traceback" not in err
    assert "RecursionError" not in err


def test_config_asking_for_huge_widths_is_refused_before_building(tmp_path, monkeypatch):
    from napari_colorize.models.beta import BetaColorizer, BetaConfig

    state = BetaColorizer(BetaConfig()).state_dict()
    path = save_checkpoint(
        tmp_path / "huge.safetensors", state, arch="beta",
        config={"widths": [65536, 65536, 65536]},
    )  # fmt: skip
    original = registry.build_model

    def only_on_meta(arch, config=None):
        # building it for real would try to allocate ~1 TB: fail the test instead
        assert torch.empty(0).device.type == "meta", "built for real before its size was checked"
        return original(arch, config)

    monkeypatch.setattr(registry, "build_model", only_on_meta)
    with pytest.raises(CheckpointError) as info:
        registry.load_model(path)
    message = str(info.value)
    assert "huge.safetensors" in message
    assert "widths=[65536, 65536, 65536]" in message
    assert "GB of memory" in message
    assert "save the model again" in message


def test_model_bigger_than_memory_is_refused(tmp_path, monkeypatch):
    model = TinyNet(TinyConfig(width=64))
    path = save_checkpoint(tmp_path / "w.safetensors", model.state_dict(), arch="tiny-test",
                           config=model.config)  # fmt: skip
    monkeypatch.setattr(model_size, "available_memory", lambda: 1000)
    with pytest.raises(CheckpointError, match=r"width=64.*more than the 0\.0 MB of memory avail"):
        registry.load_model(path)
    monkeypatch.setattr(model_size, "available_memory", lambda: None)
    _model, meta = registry.load_model(path)
    assert meta.config == {"width": 64}


# ----------------------------------------------------------------- file modes (item 12)


def test_checkpoints_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "m.safetensors", TinyNet(TinyConfig()).state_dict(),
                               arch="tiny-test")  # fmt: skip
        assert stat.S_IMODE(path.stat().st_mode) == 0o644

        def via_mkstemp(tmp):  # a writer that replaces the file by a 0600 one of its own
            import tempfile

            fd, other = tempfile.mkstemp(dir=tmp.parent)
            os.write(fd, b"x")
            os.close(fd)
            os.replace(other, tmp)

        other = atomic_write(tmp_path / "other.bin", via_mkstemp)
        assert stat.S_IMODE(other.stat().st_mode) == 0o644
    finally:
        os.umask(old)


# ----------------------------------------------------------------- a full disk (item 11)


class _FullDiskRaw(io.FileIO):
    """A file on a full disk: every write fails with ENOSPC, as the kernel says it."""

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def fileno(self):  # Pillow's encoders would write to the descriptor, past write()
        raise io.UnsupportedOperation("fileno")


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """A folder on a "full disk": files opened for writing in it fail with ENOSPC.

    Unraisable exceptions ("Exception ignored in ...") are collected instead of printed.
    """
    import builtins

    full = tmp_path / "full"
    full.mkdir()
    real_open = builtins.open

    def open_on_full_disk(file, mode="r", *args, **kwargs):
        inside = isinstance(file, (str, os.PathLike)) and os.fspath(file).startswith(str(full))
        if inside and "w" in mode:
            return io.BufferedWriter(_FullDiskRaw(file, "w"))
        return real_open(file, mode, *args, **kwargs)

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    monkeypatch.setattr(builtins, "open", open_on_full_disk)
    yield full, unraisable
    monkeypatch.setattr(builtins, "open", real_open)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_full_disk_png_jpeg_output_prints_no_exception_ignored(tmp_path, full_disk, capfd, suffix):
    import imageio.v3 as iio

    full, unraisable = full_disk
    rng = np.random.default_rng(0)
    gray, ref = tmp_path / "gray.png", tmp_path / "ref.png"
    iio.imwrite(gray, rng.integers(0, 255, (64, 64), dtype=np.uint8))
    iio.imwrite(ref, rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    out = full / f"out{suffix}"
    code = cli.main(["colorize", str(gray), "--reference", str(ref), "-o", str(out)])
    gc.collect()
    err = capfd.readouterr().err
    assert code != 0, (err, list(full.iterdir()))
    assert "no space left on the device" in err
    assert "Exception ignored" not in err
    assert [u.exc_value for u in unraisable] == []
    assert list(full.iterdir()) == []


def test_full_disk_demo_image_prints_no_exception_ignored(full_disk, capfd):
    from napari_colorize import demo

    full, unraisable = full_disk
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    with pytest.raises(OSError, match="No space left"):
        demo._write_image(full / "panel.png", image)
    gc.collect()
    assert "Exception ignored" not in capfd.readouterr().err
    assert [u.exc_value for u in unraisable] == []
    assert list(full.iterdir()) == []
