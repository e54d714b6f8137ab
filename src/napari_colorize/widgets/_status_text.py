"""Short status lines of the Colorize widget: progress in planes, errors in one or two lines.

Plain functions on plain values (no Qt): the widget shows their text in its
status label and keeps the full error for the tooltip and the log.
"""

from __future__ import annotations

import re

__all__ = ["OFFLINE_OPTIONS", "progress_text", "short_error"]

#: What can be done without a network, said after a failed download.
OFFLINE_OPTIONS = (
    "Offline: open a copy with 'Browse checkpoint...', or use 'reference' or 'propagate' "
    "(more in the tooltip)"
)
#: A status line longer than this is cut (the whole text goes to the tooltip).
MAX_LINE = 160
_TILES = re.compile(r"^tiles (\d+)/(\d+)$")
_PLANES = re.compile(r"^plane (\d+)/(\d+)$")


def _flat_index(index, leading_shape) -> int:
    flat = 0
    for i, n in zip(index, leading_shape):
        flat = flat * n + int(i)
    return flat


def progress_text(event, leading_shape: tuple[int, ...]) -> str:
    """The status line of a progress event: which plane of how many, and its tiles.

    Parameters
    ----------
    event : ColorizeProgress or DownloadProgress
        Its ``message`` (and ``plane_index``, ``done``, ``total``) as yielded.
    leading_shape : tuple of int
        The stack axes of the input (``()`` for one image).

    Returns
    -------
    str
        ``"plane 3 of 20: tiles 2/4"``, ``"planes 5-8 of 20: tiles 4/4"`` for
        planes predicted together, ``"plane 3 of 20 done"``; other messages
        unchanged.
    """
    message = str(getattr(event, "message", "") or "")
    n = 1
    for size in leading_shape:
        n *= int(size)
    if n <= 1:
        return message
    written = _PLANES.match(message)
    if written:
        return f"plane {written[1]} of {written[2]} done"
    tiles = _TILES.match(message)
    index = getattr(event, "plane_index", None)
    if not tiles or index is None or len(index) != len(leading_shape):
        return message
    first = _flat_index(index, leading_shape) + 1
    done, items = int(tiles[1]), int(tiles[2])
    # each plane counts its tiles plus one step for its colours
    total = int(getattr(event, "total", 0) or 0)
    per_plane = total // n - 1 if total and total % n == 0 else 0
    count = items // per_plane if per_plane > 0 and items % per_plane == 0 else 1
    last = min(n, first + count - 1)
    planes = f"plane {first}" if last == first else f"planes {first}-{last}"
    return f"{planes} of {n}: tiles {done}/{items}"


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    match = re.search(r"(?<=[a-z0-9)'\"])[.;] (?=[A-Z])", text)
    return text[: match.start()] if match else text


def _cut(text: str, limit: int = MAX_LINE) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def short_error(exc: BaseException) -> str:
    """One or two short lines for a status label; the full message belongs in a tooltip.

    A failed download says which model could not be fetched and the offline
    options; other errors stay whole when short, else give their first
    sentence, cut to :data:`MAX_LINE` characters.
    """
    from ..errors import DownloadError

    full = str(exc) or type(exc).__name__
    if isinstance(exc, DownloadError):
        first = _first_sentence(full)
        # the low-level cause (proxy, DNS, socket details) is for the tooltip
        first = re.sub(r"\s*\((?:[A-Za-z]*Error|[A-Za-z]*Exception)\b.*$", "", first)
        first = re.sub(r" from \S+://\S+", "", first)  # the address too
        return f"{_cut(first)}\n{OFFLINE_OPTIONS}"
    flat = " ".join(full.split())
    return flat if len(flat) <= MAX_LINE else _cut(_first_sentence(flat))
