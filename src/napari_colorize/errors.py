"""Exceptions with messages meant for users: each names the problem and the fix."""

from __future__ import annotations

__all__ = ["CheckpointError", "ColorizeError", "DownloadError", "UnknownModelError"]


class ColorizeError(Exception):
    """Base class for errors that napari-colorize reports to users as one clear line."""


class CheckpointError(ColorizeError, ValueError):
    """A model file is missing, truncated, corrupted or does not fit its architecture."""


class UnknownModelError(ColorizeError, KeyError):
    """A model or architecture name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DownloadError(ColorizeError, OSError):
    """Weights or data could not be fetched (offline, wrong hash, server error)."""


def short_list(names, limit: int = 5) -> str:
    """The first ``limit`` of ``names``, comma-separated, then how many more: for messages.

    >>> short_list(["a.weight", "a.bias", "b.weight"], limit=2)
    'a.weight, a.bias and 1 more'
    """
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
