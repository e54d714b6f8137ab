"""One line for a status bar when a download of weights fails (no Qt).

The registry's :class:`~napari_colorize.errors.DownloadError` carries the whole
advice (URL, sha256, where to copy the file, how to load it by path): right
for a terminal or a tooltip, too long for a dock's status line.
"""

from __future__ import annotations

import socket

__all__ = ["download_failure_line", "is_offline_error"]

_CACHE_ENV = "NAPARI_COLORIZE_CACHE"
#: Characters of the error's own first sentence shown, at most.
_LONGEST = 200


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_offline_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the server could not be reached."""
    from urllib.error import HTTPError, URLError

    offline: tuple[type, ...] = (URLError, ConnectionError, socket.gaierror, TimeoutError)
    try:
        import requests

        offline += (requests.ConnectionError, requests.Timeout)
    except ImportError:  # pragma: no cover - pooch brings requests
        pass
    return any(isinstance(e, offline) and not isinstance(e, HTTPError) for e in _chain(exc))


def download_failure_line(name: str, exc: BaseException) -> str:
    """A one-line message for the failed download of model ``name``.

    Offline: what to copy where (or which variable to set). Otherwise the
    error's first sentence, without the advice that follows it.
    """
    try:
        from ..registry import cache_dir, get_model

        filename, folder = get_model(name).filename, str(cache_dir())
    except Exception:  # an unknown name: the error says enough
        filename, folder = "the weights file", "the download cache"
    if is_offline_error(exc):
        return (
            f"Could not download {name}: no network. Copy {filename} to {folder} "
            f"or set {_CACHE_ENV} to a folder that holds it"
        )
    text = " ".join((str(exc) or type(exc).__name__).split())
    first = text.split(". ", 1)[0].rstrip(".")
    if len(first) > _LONGEST:
        first = first[: _LONGEST - 3].rstrip() + "..."
    return f"Could not download {name}: {first}"
