"""`napari-colorize colorize`: files, folders, stacks, bad files, no overwriting."""

from __future__ import annotations

import errno
import os
import signal
import time

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch

from napari_colorize import cli
from napari_colorize.checkpoint import save_checkpoint
from napari_colorize.color import rgb_to_lab
from napari_colorize.models.beta import BetaColorizer, BetaConfig


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    config = BetaConfig(widths=(4, 8), norm="none")
    model = BetaColorizer(config)
    path = tmp_path_factory.mktemp("model") / "tiny-beta.safetensors"
    save_checkpoint(path, model.state_dict(), arch="beta", config=config,
                    extra={"chroma_size": 16})  # fmt: skip
    return path


def _gray(shape, dtype=np.uint8, seed=0):
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(0, info.max, shape, endpoint=True).astype(dtype)


def _run(model_file, *args):
    return cli.main(["colorize", *map(str, args), "--model", str(model_file), "--device", "cpu"])


def test_one_file_keeps_its_size_and_lightness(model_file, tmp_path, capsys):
    gray = _gray((24, 40))
    iio.imwrite(tmp_path / "in.png", gray)
    assert _run(model_file, tmp_path / "in.png", "-o", tmp_path / "out.png") == 0
    out = iio.imread(tmp_path / "out.png")
    assert out.shape == (24, 40, 3)
    assert out.dtype == np.uint8
    gray_l = rgb_to_lab(np.repeat(gray[..., None], 3, axis=-1))[..., 0]
    assert np.abs(rgb_to_lab(out)[..., 0] - gray_l).max() < 0.6
    assert "colorized 1 of 1" in capsys.readouterr().out


def test_the_precision_auto_chose_is_said_once(tmp_path, capsys, monkeypatch):
    """On a CPU with AMX (pretended here) the bundled model runs in bf16, by its record."""
    monkeypatch.setattr("napari_colorize.inference.colorizer.cpu_has_fast_bf16", lambda: True)
    monkeypatch.delenv("NAPARI_COLORIZE_PRECISION")
    for name in ("a.png", "b.png"):
        iio.imwrite(tmp_path / name, _gray((24, 24)))
    out = tmp_path / "out"
    assert _run("beta-punks", tmp_path / "a.png", tmp_path / "b.png", "-o", out) == 0
    said = capsys.readouterr()
    notes = [line for line in said.err.splitlines() if "precision" in line]
    assert notes == [
        "napari-colorize: a.png: precision bf16: bf16 moves this model's colours by 0.041 "
        "CIEDE2000 on punks:test, within 0.1"
    ]


def test_folder_with_16bit_and_multipage_tifs(model_file, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    iio.imwrite(src / "a.png", _gray((20, 24)))
    iio.imwrite(src / "b.jpg", _gray((16, 20)))
    tifffile.imwrite(src / "c.tif", _gray((24, 20), np.uint16))
    tifffile.imwrite(src / "stack.tif", _gray((3, 16, 24), np.uint16))
    (src / "notes.txt").write_text("not an image")
    assert _run(model_file, src, "-o", tmp_path / "out") == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["a.png", "b.jpg", "c.tif", "stack.tif"]
    assert iio.imread(tmp_path / "out" / "a.png").shape == (20, 24, 3)
    assert iio.imread(tmp_path / "out" / "b.jpg").shape == (16, 20, 3)
    assert tifffile.imread(tmp_path / "out" / "c.tif").shape == (24, 20, 3)
    stack = tifffile.imread(tmp_path / "out" / "stack.tif")
    assert stack.shape == (3, 16, 24, 3)
    assert stack.dtype == np.uint8
    assert all(stack[i].any() for i in range(3))


def test_bad_file_is_reported_and_the_others_are_written(model_file, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    iio.imwrite(src / "good.png", _gray((16, 16)))
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    tifffile.imwrite(src / "nan.tif", np.full((16, 16), np.nan, np.float32))
    tifffile.imwrite(src / "tiny.tif", np.zeros((2, 2), np.uint8))
    status = _run(model_file, src, tmp_path / "missing.png", "-o", tmp_path / "out")
    assert status == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 4
    assert any("broken.png: cannot read it as PNG" in line for line in lines)
    assert any("nan.tif: the image contains NaN" in line for line in lines)
    assert any("tiny.tif: the image is 2 pixels" in line for line in lines)
    assert any("missing.png: no such file" in line for line in lines)
    assert "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]


def test_never_overwrites_without_the_flag(model_file, tmp_path, capsys):
    iio.imwrite(tmp_path / "in.png", _gray((16, 16)))
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    assert _run(model_file, tmp_path / "in.png", "-o", out) == 1
    assert out.read_bytes() == b"precious"
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert _run(model_file, tmp_path / "in.png", "-o", out, "--overwrite") == 0
    assert iio.imread(out).shape == (16, 16, 3)
    # an input is never overwritten, even with --overwrite
    assert _run(model_file, tmp_path / "in.png", "-o", tmp_path, "--overwrite") == 1
    assert "would overwrite an input" in capsys.readouterr().err
    assert iio.imread(tmp_path / "in.png").ndim == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_stack_needs_a_tif_output(model_file, tmp_path, capsys):
    tifffile.imwrite(tmp_path / "stack.tif", _gray((2, 16, 16)))
    assert _run(model_file, tmp_path / "stack.tif", "-o", tmp_path / "out.png") == 1
    assert "write it to a .tif file" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_options_reach_the_colorizer(model_file, tmp_path, monkeypatch):
    from napari_colorize import inference

    seen = {}
    original = inference.Colorizer.__init__

    def spy(self, model, **options):
        seen.update(options)
        original(self, model, **options)

    monkeypatch.setattr(inference.Colorizer, "__init__", spy)
    iio.imwrite(tmp_path / "in.png", _gray((16, 16)))
    args = ["--chroma-size", "0", "--tile", "64", "--batch-size", "2"]
    assert _run(model_file, tmp_path / "in.png", "-o", tmp_path / "o.png", *args) == 0
    assert seen == {"device": "cpu", "tile": 64, "batch_size": 2, "chroma_size": None}


def test_unknown_model_is_one_line(tmp_path, capsys):
    iio.imwrite(tmp_path / "in.png", _gray((16, 16)))
    status = cli.main(["colorize", str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"),
                       "--model", "no-such-model", "--device", "cpu"])  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert "no-such-model" in err
    assert "Traceback" not in err


def test_compressed_tif_stack_is_read_lazily(model_file, tmp_path):
    from napari_colorize.files import read_image

    stack = _gray((3, 16, 24), np.uint16)
    tifffile.imwrite(tmp_path / "z.tif", stack, compression="zlib")
    lazy = read_image(tmp_path / "z.tif")
    assert not isinstance(lazy, np.ndarray)  # a zarr view of the file, read plane by plane
    np.testing.assert_array_equal(np.asarray(lazy[1]), stack[1])
    assert _run(model_file, tmp_path / "z.tif", "-o", tmp_path / "out") == 0
    assert tifffile.imread(tmp_path / "out" / "z.tif").shape == (3, 16, 24, 3)


# ------------------------------------------------ files and processes (issue 17)


def _no_temporaries(folder):
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.skipif(not hasattr(os, "posix_fallocate"), reason="no posix_fallocate here")
def test_full_disk_tif_output_is_a_message_and_no_file(model_file, tmp_path, monkeypatch, capsys):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    # without the reservation, the memory-mapped write would raise SIGBUS on a full disk
    monkeypatch.setattr(os, "posix_fallocate", full)
    tifffile.imwrite(tmp_path / "stack.tif", _gray((2, 16, 16), np.uint16))
    assert _run(model_file, tmp_path / "stack.tif", "-o", tmp_path / "out.tif") == 1
    err = capsys.readouterr().err
    assert "no space left on the device" in err
    assert "nothing was written" in err
    assert not (tmp_path / "out.tif").exists()
    assert _no_temporaries(tmp_path)


def test_sigterm_stops_like_ctrl_c_and_leaves_no_temporary(model_file, tmp_path, monkeypatch):
    from napari_colorize import files

    got = []
    # a handler that survives, so that without the fix the run goes on (and the test fails)
    previous = signal.signal(signal.SIGTERM, lambda *a: got.append(a))

    def killed(path, shape):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)

    monkeypatch.setattr(files, "_reserve", killed, raising=False)
    try:
        tifffile.imwrite(tmp_path / "in.tif", _gray((16, 16), np.uint16))
        assert _run(model_file, tmp_path / "in.tif", "-o", tmp_path / "out.tif") == 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not got
    assert not (tmp_path / "out.tif").exists()
    assert _no_temporaries(tmp_path)


def test_stale_temporaries_of_dead_runs_are_removed(model_file, tmp_path, capsys):
    iio.imwrite(tmp_path / "in.png", _gray((16, 16)))
    out = tmp_path / "out"
    out.mkdir()
    old = time.time() - 3600
    dead = out / ".x.tif.999999999.0123abcd.tmp"  # beyond any pid_max
    alive = out / f".x.tif.{os.getpid()}.0123abcd.tmp"
    young = out / ".y.tif.999999998.0123abcd.tmp"
    other = out / ".notes.999999999.tmp"  # not our pattern
    for path in (dead, alive, young, other):
        path.write_bytes(b"partial")
    for path in (dead, alive, other):
        os.utime(path, (old, old))
    assert _run(model_file, tmp_path / "in.png", "-o", out) == 0
    assert not dead.exists()
    assert alive.exists()
    assert young.exists()
    assert other.exists()
    assert "interrupted run" in capsys.readouterr().out


def test_output_written_meanwhile_by_another_run_is_kept(
    model_file, tmp_path, monkeypatch, capsys
):
    from napari_colorize import files

    target = tmp_path / "out.tif"

    def other_run_finishes(path, shape):  # after the "exists" check, before our rename
        target.write_bytes(b"the other run's result")

    monkeypatch.setattr(files, "_reserve", other_run_finishes, raising=False)
    tifffile.imwrite(tmp_path / "in.tif", _gray((16, 16), np.uint16))
    assert _run(model_file, tmp_path / "in.tif", "-o", target) == 1
    assert target.read_bytes() == b"the other run's result"
    assert "exists" in capsys.readouterr().err
    assert _no_temporaries(tmp_path)
    # with --overwrite the newer result replaces it
    assert _run(model_file, tmp_path / "in.tif", "-o", target, "--overwrite") == 0
    assert tifffile.imread(target).shape == (16, 16, 3)


@pytest.mark.parametrize(
    ("name", "inputs", "message"),
    [
        ("out.bmp", 1, "cannot write .bmp files"),
        ("out.png", 2, "need a folder"),
        ("existing-file", 1, "exists and is not a folder"),
    ],
)
def test_output_that_is_neither_a_writable_file_nor_a_folder(
    model_file, tmp_path, capsys, name, inputs, message
):
    sources = []
    for i in range(inputs):
        sources.append(tmp_path / f"in{i}.png")
        iio.imwrite(sources[-1], _gray((16, 16)))
    out = tmp_path / name
    if name == "existing-file":
        out.write_bytes(b"keep")
    assert _run(model_file, *sources, "-o", out) == 1
    err = capsys.readouterr().err
    assert message in err
    assert ".png, .jpg" in err or "need a folder" in err
    assert not out.is_dir()
    if name == "existing-file":
        assert out.read_bytes() == b"keep"
    else:
        assert not out.exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.png", b"", "the file is empty"),
        ("empty.tif", b"", "the file is empty"),
        ("notes.png", b"just some text\n", "not an image"),
        ("notes.tif", b"just some text\n", "not an image"),
    ],
)
def test_empty_or_non_image_file_says_so(model_file, tmp_path, capsys, name, content, message):
    (tmp_path / name).write_bytes(content)
    assert _run(model_file, tmp_path / name, "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert message in err
    assert "plugin" not in err


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (65535, 255)])
def test_constant_16bit_image_stays_black_or_white(model_file, tmp_path, value, expected):
    tifffile.imwrite(tmp_path / "flat.tif", np.full((16, 16), value, np.uint16))
    assert _run(model_file, tmp_path / "flat.tif", "-o", tmp_path / "out.tif") == 0
    out = tifffile.imread(tmp_path / "out.tif").astype(int)
    assert np.abs(out - expected).max() <= 1  # no mid-gray, no invented colour


@pytest.mark.parametrize("kind", ["png", "tif", "tif-zlib", "tif-stack"])
def test_gray_with_alpha_is_a_gray_image(model_file, tmp_path, kind):
    gray = _gray((3, 16, 24) if kind == "tif-stack" else (16, 24))
    alpha = np.full_like(gray, 255)
    image = np.stack([gray, alpha], axis=-1)
    if kind == "png":
        iio.imwrite(tmp_path / "in.png", image)  # an LA PNG
        source = tmp_path / "in.png"
    else:
        options = {"compression": "zlib"} if kind == "tif-zlib" else {}
        tifffile.imwrite(tmp_path / "in.tif", image, photometric="minisblack",
                         planarconfig="contig", **options)  # fmt: skip
        source = tmp_path / "in.tif"
    from napari_colorize.files import read_image

    np.testing.assert_array_equal(np.asarray(read_image(source)), gray)
    out = tmp_path / f"out{source.suffix}"
    assert _run(model_file, source, "-o", out) == 0
    result = iio.imread(out) if kind == "png" else tifffile.imread(out)
    assert result.shape == (*gray.shape, 3)
    gray_l = rgb_to_lab(np.repeat(gray[..., None], 3, axis=-1))[..., 0]
    assert np.abs(rgb_to_lab(result)[..., 0] - gray_l).max() < 1.0


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A 1 MB tmpfs, where mounting works (root on Linux); skipped elsewhere."""
    import shutil
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    if not shutil.which("mount") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_real_full_disk_tif_output(model_file, tmp_path, tiny_filesystem, capsys):
    # 4 x 512 x 512 RGB is 3.1 MB: a memory-mapped write into it died of SIGBUS (exit 135)
    tifffile.imwrite(tmp_path / "big.tif", _gray((4, 512, 512), np.uint16))
    assert _run(model_file, tmp_path / "big.tif", "-o", tiny_filesystem / "out.tif") == 1
    assert "no space left on the device" in capsys.readouterr().err
    assert not list(tiny_filesystem.iterdir())
