"""Keeping the download cache clean: stale temporaries, corrupt files, permissions.

The cache folder (``$NAPARI_COLORIZE_CACHE`` or the platform's user cache)
receives downloads (pooch's ``tmpXXXXXXXX`` files, this package's
``.NAME.PID.part`` files, pip's ``.punks-download-XXXXXXXX`` folders) and
converted checkpoints (:func:`~napari_colorize.atomic.atomic_write`'s
``.NAME.PID.XXXXXXXX.tmp``). A process killed mid-download leaves its
temporary behind; :func:`remove_stale_temporaries` removes those of dead
processes, and those without a process id once nobody has written to them for
an hour (a running download writes every few seconds and times out after a
minute of silence). A cached checkpoint that no longer reads is removed by
:func:`discard_corrupt` so that it is fetched or converted again.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from pathlib import Path

from .errors import CheckpointError, DownloadError
from .leftovers import remove_leftovers

__all__ = [
    "CACHE_ENV",
    "apply_umask",
    "cached_and_readable",
    "discard_corrupt",
    "load_or_refetch",
    "read_only_advice",
    "remove_stale_temporaries",
    "writable",
]

CACHE_ENV = "NAPARI_COLORIZE_CACHE"
#: Temporaries that name their process: ``.NAME.PID.part``, ``.NAME.PID.XXXXXXXX.tmp``.
_WITH_PID = re.compile(r"^\..+\.(?P<pid>\d+)(\.part|\.[0-9a-f]{8}\.tmp)$")
#: Temporaries without a process id: pooch's files, pip's download folders.
_WITHOUT_PID = re.compile(r"^(tmp[a-z0-9_]{8}|\.punks-download-[a-z0-9_]{8})$")
#: A temporary untouched for this long belongs to no running download.
STALE_AFTER_S = 3600.0
#: Younger temporaries of a dead process are kept (another machine sharing the
#: folder may run a process with that id).
_DEAD_GRACE_S = 60.0
#: A temporary whose process id is in use is removed only this old (the id was reused).
_REUSED_PID_AFTER_S = 24 * 3600.0


def remove_stale_temporaries(
    folder: str | os.PathLike, *, stale_after_s: float = STALE_AFTER_S
) -> list[Path]:
    """Remove the temporaries that killed downloads and conversions left in ``folder``.

    Only names of this package's and its downloaders' temporaries are
    considered (see the module docstring); other files are never touched. A
    temporary naming a process id is removed once that process has ended (and
    the file is a minute old), or after a day untouched (the id was reused);
    one without a process id after ``stale_after_s`` untouched, so a download
    running in another process is left alone.

    Parameters
    ----------
    folder : path-like
    stale_after_s : float
        Seconds since the last write after which a temporary is stale.

    Returns
    -------
    list of Path
        What was removed (nothing, silently, where the folder is read-only).
    """
    with_pid = remove_leftovers(
        folder,
        _WITH_PID,
        dead_after_s=_DEAD_GRACE_S,
        untouched_after_s=max(stale_after_s, _REUSED_PID_AFTER_S),
    )
    return with_pid + remove_leftovers(folder, _WITHOUT_PID, untouched_after_s=stale_after_s)


def writable(folder: str | os.PathLike) -> bool:
    """Whether files can be created in ``folder`` (made if missing)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


_SET_CACHE = (
    f"set the environment variable {CACHE_ENV} to a folder you can write to "
    "(for example $HOME/napari-colorize-cache)"
)


def read_only_advice(folder: str | os.PathLike) -> str:
    """What to do when the cache folder cannot be written (one sentence, no newline)."""
    return f"the cache folder {folder} is not writable; {_SET_CACHE}"


def _umask() -> int:
    try:  # thread-safe where available (Linux >= 4.7)
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: str | os.PathLike) -> None:
    """Give a file made private by ``mkstemp`` (mode 0600) the umask's permissions.

    Downloaders create their temporaries with :func:`tempfile.mkstemp` and rename
    them into place; the file would stay readable by its owner only. Files with
    any other mode are left as they are.
    """
    with contextlib.suppress(OSError):
        if os.stat(path).st_mode & 0o777 == 0o600:
            os.chmod(path, 0o666 & ~_umask())


def discard_corrupt(path: str | os.PathLike, problem: Exception) -> None:
    """Remove a cached file that cannot be read, so that it is fetched again.

    Parameters
    ----------
    path : path-like
        The cached file.
    problem : Exception
        Why it cannot be read (said in the warning).

    Raises
    ------
    DownloadError
        It cannot be removed (a read-only cache): the message says what to do.
    """
    path = Path(path)
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DownloadError(
            f"the cached file {path} is corrupted ({problem}) and cannot be removed "
            f"({exc.strerror}): delete it, or {_SET_CACHE}"
        ) from None
    warnings.warn(
        f"removed the corrupted cached file {path} ({problem}); fetching it again",
        stacklevel=3,
    )


def cached_and_readable(path: str | os.PathLike, check) -> bool:
    """Whether a cached file exists and ``check(path)`` reads it; a corrupt one is removed.

    Parameters
    ----------
    path : path-like
    check : callable
        Raises :class:`~napari_colorize.errors.CheckpointError` for a corrupt file
        (e.g. :func:`~napari_colorize.checkpoint.read_metadata`).
    """
    if not Path(path).is_file():
        return False
    try:
        check(path)
    except CheckpointError as exc:
        discard_corrupt(path, exc)
        return False
    return True


def load_or_refetch(path, load, refetch):
    """``load(path)``; if the cached file is corrupt, remove it and ``load(refetch())`` once.

    Parameters
    ----------
    path : path-like
        A file in the cache.
    load : callable
        Reads the file; raises :class:`~napari_colorize.errors.CheckpointError`
        for a corrupt one.
    refetch : callable
        Downloads or converts the file again and returns its path.
    """
    try:
        return load(path)
    except CheckpointError as exc:
        discard_corrupt(path, exc)
    return load(refetch())
