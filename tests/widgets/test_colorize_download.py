"""The Colorize widget offers published models before they are downloaded, and fetches
them in its worker with a progress bar (served here by a local http.server)."""

import functools
import hashlib
import http.server
import threading

import numpy as np
import pytest

from napari_colorize import registry
from napari_colorize.registry import PretrainedModel
from napari_colorize.widgets import colorize as colorize_module


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served_model(tiny_checkpoint, tmp_path, monkeypatch):
    """A URL entry ``tiny-download`` whose file is served on 127.0.0.1; a private cache."""
    monkeypatch.setattr(registry, "_PRETRAINED", dict(registry._PRETRAINED))
    monkeypatch.setenv("NAPARI_COLORIZE_CACHE", str(tmp_path / "cache"))
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    root = tmp_path / "served"
    root.mkdir()
    data = tiny_checkpoint.read_bytes()
    (root / "tiny-download.safetensors").write_bytes(data)
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]

    def register(name, url):
        registry.register_pretrained(
            PretrainedModel(
                name, "alpha", "served locally", source="url",
                filename=f"{name}.safetensors", url=url,
                sha256=hashlib.sha256(data).hexdigest(), size=len(data),
            ),
            replace=True,
        )  # fmt: skip

    register("tiny-download", f"http://127.0.0.1:{port}/tiny-download.safetensors")
    # a port nothing listens on: the "offline" case
    register("tiny-offline", f"http://127.0.0.1:{port}/missing/tiny-offline.safetensors")
    yield tmp_path / "cache"
    httpd.shutdown()
    httpd.server_close()


def test_a_published_model_is_offered_then_downloaded_with_progress(
    colorize_widget, served_model, monkeypatch, qtbot
):
    viewer, widget = colorize_widget
    errors = []
    monkeypatch.setattr(colorize_module, "show_error", errors.append)
    widget.refresh_choices(block=True)
    labels = {value: label for label, value in widget._model_choices()}
    assert labels["tiny-download"].startswith("tiny-download (downloads")
    widget.set_model("tiny-download")
    assert widget.model.value == "tiny-download"

    image = viewer.add_image(np.linspace(0, 255, 16 * 16).reshape(16, 16).astype(np.uint8))
    widget.image.value = image
    seen = []
    worker = widget.run(start=False)
    worker.yielded.connect(seen.append)
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        worker.start()
    assert errors == []
    assert (served_model / "tiny-download.safetensors").is_file()
    assert any(
        isinstance(e, registry.DownloadProgress) and "downloading tiny-download" in e.message
        for e in seen
    )
    assert viewer.layers[f"{image.name} colorized"].data.shape == (16, 16, 3)
    # downloaded: offered under its own name now
    widget.refresh_choices(block=True)
    labels = {value: label for label, value in widget._model_choices()}
    assert labels["tiny-download"] == "tiny-download"


def test_a_failed_download_is_a_notification_and_leaves_nothing(
    colorize_widget, run_and_wait, served_model, monkeypatch
):
    viewer, widget = colorize_widget
    errors = []
    monkeypatch.setattr(colorize_module, "show_error", errors.append)
    widget.refresh_choices(block=True)
    widget.set_model("tiny-offline")
    image = viewer.add_image(np.zeros((16, 16), np.uint8), name="flat")
    widget.image.value = image
    run_and_wait(widget)
    assert len(errors) == 1
    assert "tiny-offline" in errors[0]
    assert "load it by path" in errors[0]  # how to fetch it elsewhere
    assert "flat colorized" not in viewer.layers
    assert not served_model.exists() or list(served_model.rglob("*.safetensors")) == []
    assert widget.run_button.enabled
    assert not widget.busy
