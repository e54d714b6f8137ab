"""Class probabilities' "Download weights" without a network (issue 17 item 14).

The worker's failure must reach the widget, not napari as an unhandled
exception (outside napari's exception hook the process aborted): one line in
the status saying what to copy where, and the button usable again.
"""

import socket
import urllib.error

import pytest
import requests

from napari_colorize.widgets import class_probabilities as module
from napari_colorize.widgets._download_message import download_failure_line

PLUGIN = "napari-colorize"
NAME = "inception-imagenet"


def _offline_urllib(*_args, **_kwargs):
    raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))


def _offline_requests(*_args, **_kwargs):
    raise requests.ConnectionError("Max retries exceeded (NameResolutionError)")


def _server_error(*_args, **_kwargs):
    raise urllib.error.HTTPError("https://example.org/x.pth", 503, "Unavailable", {}, None)


@pytest.fixture
def errors(monkeypatch):
    messages = []
    monkeypatch.setattr(module, "show_error", messages.append)
    return messages


@pytest.fixture
def widget(make_napari_viewer, qtbot, monkeypatch, tmp_path, errors):
    monkeypatch.setenv("NAPARI_COLORIZE_CACHE", str(tmp_path / "cache"))
    viewer = make_napari_viewer()
    _dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Class probabilities")
    qtbot.waitUntil(lambda: w.picker.worker is None, timeout=30_000)
    w.classifier.value = NAME
    assert not w.download_button.native.isHidden()
    return w


@pytest.mark.parametrize("fail", [_offline_urllib, _offline_requests], ids=["urllib", "requests"])
def test_offline_download_says_so_in_one_line_and_frees_the_button(
    widget, qtbot, monkeypatch, tmp_path, errors, fail
):
    import pooch

    # the network call under fetch_weights (this entry is pinned by a sha256 prefix)
    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", fail)
    monkeypatch.setattr(pooch, "retrieve", fail)
    worker = widget.download(start=False)
    assert worker is not None
    assert widget.status.value == f"downloading {NAME}..."
    assert not widget.download_button.enabled
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        worker.start()  # pytest-qt fails the test on an exception raised in a slot
    qtbot.waitUntil(lambda: widget._download_worker is None, timeout=10_000)
    status = widget.status.value
    assert "\n" not in status
    assert len(status) < 300, status
    assert status.startswith(f"Could not download {NAME}: no network")
    assert "inception_v3_google-0cc3c7bd.pth" in status
    assert str(tmp_path / "cache") in status
    assert "NAPARI_COLORIZE_CACHE" in status
    assert widget.download_button.enabled
    assert not widget.progress.visible
    assert errors == [f"Class probabilities: {status}"]
    # the whole advice (URL, sha256) is still at hand
    assert "download.pytorch.org" in widget.status.tooltip
    assert not list((tmp_path / "cache").glob("*.part"))


def test_a_server_error_keeps_its_reason_in_one_line():
    from napari_colorize.errors import DownloadError

    try:
        try:
            _server_error()
        except OSError as exc:
            raise DownloadError(
                f"could not download the weights of model {NAME!r} from https://x (HTTPError: "
                f"{exc}). If this computer is offline, fetch it on another one. " + "x" * 500
            ) from exc
    except DownloadError as exc:
        line = download_failure_line(NAME, exc)
    assert "no network" not in line
    assert "503" in line
    assert "If this computer" not in line
    assert len(line) < 300
