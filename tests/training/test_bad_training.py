"""Training given bad input or stopped rudely: one clear line, the right exit status, no traceback.

Tiny images (32x32), a few steps; memory errors are simulated by monkeypatching,
never provoked.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("torch")
from PIL import Image

from napari_colorize import cli


def _colour_image(path, size=32, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8)).save(path)
    return path


def _truncated(path, seed=1):
    _colour_image(path, seed=seed)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture
def files(tmp_path):
    """A colour PNG, a text file and an empty file named .png, an empty folder, a text folder."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "readme.txt").write_text("no images here")
    (tmp_path / "notanimage.png").write_text("hello")
    (tmp_path / "empty.png").write_bytes(b"")
    _colour_image(tmp_path / "photo.png")
    return tmp_path


def _train(tmp_path, capsys, *args):
    """``napari-colorize train ARGS`` in ``tmp_path``: (status, stdout, stderr)."""
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        status = cli.main(["train", *args])
    finally:
        os.chdir(old)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


#: alpha on the 32x32 photo.png of the ``files`` fixture
ALPHA = ["--preset", "alpha", "--image", "photo.png"]


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("napari-colorize: error:")]
    assert len(lines) == 1, err
    return lines[0]


BAD_INPUTS = [
    # (arguments, words the one error line must hold)
    (["--preset", "alpha", "--image", "notanimage.png"], ["notanimage.png", "not an image"]),
    (["--preset", "alpha", "--image", "missing.png"], ["missing.png", "no image file"]),
    (["--preset", "alpha", "--image", "empty.png"], ["empty.png", "the file is empty"]),
    (["--preset", "alpha", "--data", "empty"], ["empty", "no images", "--image"]),
    (["--preset", "alpha", "--data", "text"], ["text", "no images", "--image"]),
    (["--preset", "alpha", "--data", "."], ["folder", "--image PATH", "--preset beta-punks"]),
    (["--preset", "beta-punks", "--data", "notanimage.png"], ["notanimage.png", "not an image"]),
    (["--preset", "beta-punks", "--data", "empty"], ["no usable colour images", "add colour"]),
    (["--preset", "beta-punks", "--data", "text"], ["no usable colour images", "add colour"]),
    (["--preset", "alpha", "--image", "photo.png", "--patch-size", "0"], ["--patch-size", "0"]),
    (["--preset", "alpha", "--image", "photo.png", "--patch-size", "-8"], ["--patch-size", "-8"]),
]


@pytest.mark.parametrize(("args", "words"), BAD_INPUTS, ids=lambda a: " ".join(a))
def test_bad_input_is_one_line(files, capsys, one_torch_thread, args, words):
    status, _, err = _train(files, capsys, *args, "--steps", "2", "--out", "m.safetensors")
    assert status in (1, 2)
    line = _error_line(err)
    for word in words:
        assert word in line
    assert not (files / "m.safetensors").exists()


def test_truncated_images_are_skipped_by_name(tmp_path, capsys, one_torch_thread):
    folder = tmp_path / "photos"
    folder.mkdir()
    _colour_image(folder / "a.png")
    _truncated(folder / "b.png")
    rgb = (np.random.default_rng(2).random((32, 32, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=95)
    data = (tmp_path / "c.jpg").read_bytes()
    (folder / "c.jpg").write_bytes(data[: len(data) // 2])
    args = ["--preset", "beta-punks", "--data", "photos", "--batch-size", "2"]
    status, out, err = _train(tmp_path, capsys, *args, "--steps", "2", "--out", "m.safetensors")
    assert status == 0, err
    assert "done: 2/2" in out
    for name in ("b.png", "c.jpg"):
        assert re.search(rf"warning: skipping \S*{name}: the image is truncated", err), err


def test_truncated_items_read_the_next_image_alike_every_time(tmp_path):
    from napari_colorize.data import ImageFolderDataset

    _colour_image(tmp_path / "a.png")
    _truncated(tmp_path / "b.png")
    dataset = ImageFolderDataset(tmp_path, patch_size=16, seed=3)
    assert len(dataset.items) == 2  # the header of b.png is whole
    with pytest.warns(UserWarning, match="b.png: the image is truncated"):
        first = [dataset[i][1].numpy() for i in range(len(dataset))]
    again = [dataset[i][1].numpy() for i in range(len(dataset))]  # no second warning needed
    assert all(np.array_equal(x, y) for x, y in zip(first, again))


def test_only_truncated_images_is_one_line(tmp_path, capsys, one_torch_thread):
    folder = tmp_path / "photos"
    folder.mkdir()
    _truncated(folder / "a.png")
    _truncated(folder / "b.png", seed=2)
    args = ["--preset", "beta-punks", "--data", "photos", "--steps", "2", "--out", "m.safetensors"]
    status, _, err = _train(tmp_path, capsys, *args)
    assert status == 2
    assert "none of the 2 images" in _error_line(err)
    assert not (tmp_path / "m.safetensors").exists()


def test_patch_larger_than_the_image_is_said(files, capsys, one_torch_thread):
    args = ["--preset", "alpha", "--image", "photo.png", "--patch-size", "100", "--steps", "1"]
    status, _, err = _train(files, capsys, *args, "--batch-size", "2", "--out", "m.safetensors")
    assert status == 0
    notes = [line for line in err.splitlines() if "warning:" in line]
    assert notes == [
        "napari-colorize: warning: patch size 100 is larger than the image (32x32): "
        "training on 32x32 patches"
    ]


def test_resume_with_fewer_steps_trains_nothing(files, capsys, one_torch_thread):
    common = [*ALPHA, "--batch-size", "2"]
    status, _, _ = _train(files, capsys, *common, "--steps", "3", "--out", "r.safetensors")
    assert status == 0
    path = files / "r.safetensors"
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    for steps in ("2", "3"):
        resume = ["--steps", steps, "--resume", "r.safetensors"]
        status, out, _ = _train(files, capsys, *common, *resume)
        assert status == 0
        assert "nothing trained: r.safetensors already holds 3 steps" in out
        assert "saved" not in out
        assert (path.read_bytes(), path.stat().st_mtime_ns) == before


# ------------------------------------------------------------------ memory


def test_batch_too_large_for_memory_names_the_batch_that_fits(
    files, capsys, monkeypatch, one_torch_thread
):
    from napari_colorize.training import memory

    monkeypatch.setattr(memory, "available_memory", lambda device: 64 * 2**20)
    common = [*ALPHA, "--steps", "1", "--out", "m.safetensors"]
    status, _, err = _train(files, capsys, *common, "--batch-size", "100000")
    assert status == 2
    line = _error_line(err)
    assert "--batch-size 100000 needs about" in line
    assert "only 64 MiB of RAM is free" in line
    fits = int(re.search(r"pass --batch-size (\d+) or less", line).group(1))
    assert 1 <= fits < 100000
    assert not (files / "m.safetensors").exists()
    status, _, err = _train(files, capsys, *common, "--batch-size", str(fits))
    assert status == 0, err  # the advice is taken as given


def test_step_memory_grows_with_the_batch(tmp_path, one_torch_thread):
    from napari_colorize.training import TrainConfig, Trainer
    from napari_colorize.training.memory import step_memory

    rgb = (np.random.default_rng(0).random((4, 16, 16, 3)) * 255).astype(np.uint8)
    config = TrainConfig(arch="alpha", model_config={"width": 4}, max_steps=1, batch_size=2)
    trainer = Trainer(config, rgb)
    trainer._setup()
    estimate = step_memory(trainer)
    assert estimate.per_item > 16 * 16 * 4  # more than the item itself
    assert estimate.bytes_for(4) - estimate.bytes_for(2) == 2 * estimate.per_item
    assert estimate.largest_batch(estimate.bytes_for(10) * 2) >= 10


@pytest.mark.parametrize("version", [2, 1])
def test_a_cgroup_limit_caps_the_free_memory(tmp_path, version):
    from napari_colorize.training.memory import _cgroup_room

    mib = 2**20
    if version == 2:
        names, cache_key, folder = ("memory.max", "memory.current"), "inactive_file", tmp_path
    else:
        names = ("memory.limit_in_bytes", "memory.usage_in_bytes")
        cache_key, folder = "total_inactive_file", tmp_path / "memory"
        folder.mkdir()
    (folder / names[0]).write_text(f"{1024 * mib}\n")
    (folder / names[1]).write_text(f"{900 * mib}\n")
    (folder / "memory.stat").write_text(f"anon 1\n{cache_key} {100 * mib}\n")
    assert _cgroup_room(str(tmp_path)) == 224 * mib  # the limit - usage + droppable cache
    (folder / names[0]).write_text("max\n" if version == 2 else f"{2**63 - 4096}\n")
    assert _cgroup_room(str(tmp_path)) is None


def _fail_allocation(exc):
    def training_step(self, batch, ctx):
        raise exc

    return training_step


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough "
                     "memory: you tried to allocate 98000000000 bytes."),
        "torch.OutOfMemoryError",
        MemoryError(),
    ],
    ids=["cpu-allocator", "cuda-oom", "python-memoryerror"],
)  # fmt: skip
def test_allocation_failure_in_a_step_is_advice(files, capsys, monkeypatch, one_torch_thread, exc):
    import torch

    from napari_colorize.training.task import ColorizationTask

    if exc == "torch.OutOfMemoryError":
        exc = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    monkeypatch.setattr(ColorizationTask, "training_step", _fail_allocation(exc))
    common = [*ALPHA, "--steps", "2", "--out", "m.safetensors"]
    status, _, err = _train(files, capsys, *common, "--batch-size", "8")
    assert status == 2
    line = _error_line(err)
    assert "ran out of RAM at step 1 with --batch-size 8; pass --batch-size 4 or less" in line


def test_other_runtime_errors_are_not_called_memory(files, capsys, monkeypatch):
    from napari_colorize.training.memory import is_out_of_memory

    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))


# ------------------------------------------------------------------ signals


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_then_exits_with_its_status(files, sig, status):
    from napari_colorize.checkpoint import load_checkpoint

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["--preset", "alpha", "--image", "photo.png", "--steps", "100000", "--batch-size", "2"]
    cmd = [sys.executable, "-m", "napari_colorize.train", *args, "--out", "s.safetensors"]
    err_path = files / "err.txt"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, cwd=files, env=env, stdout=subprocess.PIPE, stderr=err)
        deadline = time.monotonic() + 60
        while "/100000" not in err_path.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, err_path.read_text()
            time.sleep(0.1)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == status, err_path.read_text()
    assert "stopped at" in out.decode()
    assert "resume with --resume s.safetensors" in err_path.read_text()
    meta = load_checkpoint(files / "s.safetensors").training_meta
    assert meta["step"] >= 1
