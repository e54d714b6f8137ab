"""Writing a file so that readers see either the old or the complete new content.

Every file this package writes (checkpoints, colorized images, reports, the
user-model list, cached downloads' conversions) goes through :func:`atomic_write`:
a temporary file in the destination folder, fsynced, renamed onto the name, the
folder fsynced. A crash or Ctrl+C mid-write leaves the previous file intact and
at most a ``.NAME.PID.HEX.tmp`` leftover (see :mod:`napari_colorize.leftovers`).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["atomic_write"]


def atomic_write(path, write_fn: Callable[[Path], Any], *, exclusive: bool = False) -> Path:
    """Write a file so that readers see either the old or the complete new content.

    ``write_fn(tmp_path)`` writes a temporary file in the destination folder; the
    file is then fsynced, renamed onto ``path`` (atomic on POSIX and Windows) and
    the folder fsynced so that the rename survives a power cut. If anything
    raises (including ``KeyboardInterrupt``), the temporary file is removed and a
    previous file at ``path`` is left untouched.

    Parameters
    ----------
    path : str or path-like
        The destination; its folder is created if needed.
    write_fn : callable
        Called with the temporary path (a ``pathlib.Path`` that exists and is
        empty); it may reopen it in any mode.
    exclusive : bool
        Refuse to replace an existing ``path``, also one that appears while
        writing (another process racing for the name): the final name is
        created by a hard link, which fails if it exists.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    FileExistsError
        With ``exclusive``, when ``path`` exists; the temporary file is removed.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a directory; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created with open() rather than mkstemp so that it gets the umask's permissions.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb"):
            pass
        mode = tmp.stat().st_mode & 0o777
        write_fn(tmp)
        # write_fn may have replaced the file by one of its own (safetensors, mkstemp: 0600)
        os.chmod(tmp, mode)
        with open(tmp, "r+b") as f:
            os.fsync(f.fileno())
        if exclusive:
            _link_exclusive(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    return path


def _link_exclusive(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(
            f"{path} exists (written meanwhile by another run?); pass --overwrite to replace it"
        ) from None
    except OSError:
        # no hard links here (FAT, some network shares): a check, then a rename
        if path.exists():
            raise FileExistsError(f"{path} exists; pass --overwrite to replace it") from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def _fsync_dir(folder: Path) -> None:
    # Not possible on Windows (and some file systems); the rename is still atomic there.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
