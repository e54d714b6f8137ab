"""Whether a path names a bioimage.io package, and the bioimageio.spec import with its advice."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DESCRIPTION_NAMES", "is_package", "require_spec"]

#: File names of a bioimage.io description.
DESCRIPTION_NAMES = ("rdf.yaml", "bioimageio.yaml")


def is_package(name_or_path) -> bool:
    """Whether ``name_or_path`` names a bioimage.io package: a .zip, an rdf.yaml or its folder."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        return False
    text = os.fspath(name_or_path)
    if text.lower().endswith((".zip", *DESCRIPTION_NAMES)):
        return True
    path = Path(text).expanduser()
    return path.is_dir() and any((path / n).is_file() for n in DESCRIPTION_NAMES)


def require_spec():
    """Import :mod:`bioimageio.spec`, or say how to install it."""
    try:
        import bioimageio.spec as spec
    except ImportError:
        from ..errors import ColorizeError

        raise ColorizeError(
            "bioimage.io packages need the bioimageio.spec package; install it with "
            "pip install 'napari-colorize[bioimageio]'"
        ) from None
    return spec
