"""What killed processes leave behind: temporary files and folders, found by name and removed.

Every writer in the package names its temporaries so that they can be told
apart from anything else in a folder, most with the id of the process that
writes them (``.NAME.PID.XXXXXXXX.tmp`` of
:func:`~napari_colorize.atomic.atomic_write`, ``.NAME.PID.part`` downloads,
result stores, OME-Zarr folders being written). :func:`remove_leftovers` removes
those of a pattern whose process has ended, or that nobody has written to for
long enough, and never anything else.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from pathlib import Path

__all__ = ["last_write", "process_alive", "remove_leftovers"]


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` may be running (this one, or one we cannot tell about, is)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):
        return True  # someone else's process, or cannot tell: leave its files alone
    return True


def last_write(path: Path) -> float:
    """The newest modification time of a file, or of a folder and everything in it."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for inner in path.rglob("*"):
            with contextlib.suppress(OSError):
                newest = max(newest, inner.lstat().st_mtime)
    return newest


def remove_leftovers(
    folder: str | os.PathLike,
    pattern: re.Pattern,
    *,
    kind: str = "any",
    dead_after_s: float = 60.0,
    untouched_after_s: float | None = None,
) -> list[Path]:
    """Remove the entries of ``folder`` whose names match ``pattern`` and that are left over.

    An entry whose name holds a process id (the pattern's group ``pid``) is
    left over once that process has ended and nothing was written to it for
    ``dead_after_s`` seconds (another machine sharing the folder may run a
    process with that id); with ``untouched_after_s``, also when nothing was
    written to it for that long (an id in use again, or no id in the name).

    Parameters
    ----------
    folder : path-like
    pattern : re.Pattern
        Matched against each entry's name; a group named ``pid`` is the writer's process id.
    kind : {"any", "file", "dir"}
        Which entries may be removed.
    dead_after_s : float
        Age (since the last write) from which a dead process's entry is removed.
    untouched_after_s : float, optional
        Age from which any matching entry is removed; None: only dead processes' entries.

    Returns
    -------
    list of Path
        What was removed (nothing, silently, where the folder cannot be read or changed).
    """
    if kind not in ("any", "file", "dir"):
        raise ValueError(f"kind must be 'any', 'file' or 'dir', got {kind!r}")
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    now = time.time()
    for path in entries:
        match = pattern.match(path.name)
        if match is None:
            continue
        is_dir = path.is_dir() and not path.is_symlink()
        if (kind == "file" and is_dir) or (kind == "dir" and not is_dir):
            continue
        pid = match.groupdict().get("pid")
        try:
            age = now - last_write(path)
        except OSError:
            continue
        dead = pid is not None and not process_alive(int(pid))
        left_over = (dead and age >= dead_after_s) or (
            untouched_after_s is not None and age >= untouched_after_s
        )
        if not left_over:
            continue
        try:
            shutil.rmtree(path) if is_dir else path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed
