"""Fixtures shared by the whole suite."""

import functools
import http.server
import threading

import pytest


@pytest.fixture(autouse=True)
def _private_user_data(monkeypatch, tmp_path_factory):
    """Models that tests register (``persist=True``) never reach the user's real registry."""
    if "NAPARI_COLORIZE_DATA" not in __import__("os").environ:
        monkeypatch.setenv("NAPARI_COLORIZE_DATA", str(tmp_path_factory.mktemp("user-data")))


@pytest.fixture(autouse=True)
def _no_bf16_check(monkeypatch):
    """The same forward passes on every CPU: "auto" precision takes no bf16 (AMX only).

    Also in the processes tests start (dask workers, the CLI), through the
    environment. tests/inference/test_precision.py turns it on where it tests it.
    """
    monkeypatch.setattr(
        "napari_colorize.inference.colorizer.cpu_has_fast_bf16", lambda: False, raising=False
    )
    monkeypatch.setenv("NAPARI_COLORIZE_PRECISION", "fp32")


@pytest.fixture
def one_torch_thread():
    """Tiny models on a shared 2-core machine: a second torch thread only contends."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def user_dirs(monkeypatch, tmp_path):
    """Registered models and downloads go to a temporary folder and are forgotten afterwards."""
    from napari_colorize import registry

    monkeypatch.setenv("NAPARI_COLORIZE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("NAPARI_COLORIZE_CACHE", str(tmp_path / "cache"))
    registry.reload_user_models()
    yield tmp_path
    for name in list(registry.model_names()):
        if registry.get_model(name).source == "path":
            registry.unregister_model(name, persist=False)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder quietly and records the paths asked for."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """A local HTTP server for download tests: (folder served, base URL, paths requested)."""
    root = tmp_path / "srv"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root))
    )
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", httpd.requests
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def tiny_png(tmp_path):
    """A 24x20 RGB PNG of noise, for training commands that read an image file."""
    import numpy as np
    from skimage.io import imsave

    path = tmp_path / "tiny.png"
    rng = np.random.default_rng(1)
    imsave(path, (rng.random((24, 20, 3)) * 255).astype(np.uint8), check_contrast=False)
    return path
