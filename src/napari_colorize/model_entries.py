"""A named model's entry and where its file lives on this machine.

:class:`PretrainedModel` is one line of the named-model table
(:mod:`napari_colorize.registry`): a bundled file under ``weights/``, a published
URL fetched into the user cache (:func:`cache_dir`, see
:mod:`napari_colorize.downloads`), or a user's checkpoint path
(:mod:`napari_colorize.user_models`). :func:`local_file` finds an entry's file
without downloading or hashing anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checkpoint import TORCH_SUFFIXES

__all__ = [
    "CACHE_ENV",
    "WEIGHTS_DIR",
    "PretrainedModel",
    "cache_dir",
    "converted_path",
    "local_file",
    "needs_conversion",
]

WEIGHTS_DIR = Path(__file__).parent / "weights"
CACHE_ENV = "NAPARI_COLORIZE_CACHE"
APP = "napari-colorize"


@dataclass(frozen=True)
class PretrainedModel:
    """A named model: an architecture plus where its weights come from.

    Attributes
    ----------
    name : str
    arch : str
        Architecture name; for bundled and user files the file's own metadata wins.
    description : str
    source : {"bundled", "url", "path"}
    filename : str
        File name under ``weights/`` (bundled), in the cache (url), or the full
        path (path).
    url, sha256, size : optional
        Download location, its sha256 (hex) and size in bytes (url).
    sha256_prefix : str, optional
        For published files whose full sha256 is not known, only the leading hex
        digits (as torchvision names its files, ``name-<prefix>.pth``): the file is
        downloaded to a temporary name and kept only if its sha256 starts so.
    convert : str or callable, optional
        ``"module:function"`` turning a foreign state dict (``.pth``) into this
        package's layout: ``convert(state_dict) -> state_dict``. Applied once;
        the result is cached as a safetensors checkpoint next to the download.
    config : dict
        Architecture config for foreign files that carry none.
    data : object
        What it was trained on, for listing before the file is present.
    extra : dict
        Stored in the converted checkpoint's ``extra`` (``chroma_size``, ``hints``).
    card : dict
        What the file does not say, for its card (see :func:`napari_colorize.cards.build_card`:
        ``purpose``, ``image_size``, ``input``, ``lightness``, ...).
    """

    name: str
    arch: str
    description: str = ""
    source: str = "bundled"
    filename: str = ""
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    sha256_prefix: str | None = None
    convert: str | Callable | None = None
    config: dict = field(default_factory=dict)
    data: Any = None
    extra: dict = field(default_factory=dict)
    card: dict = field(default_factory=dict)


def cache_dir() -> Path:
    """Where downloads go: ``$NAPARI_COLORIZE_CACHE`` or the platform's user cache dir."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP))


def converted_path(entry: PretrainedModel) -> Path:
    """Where the safetensors conversion of a downloaded foreign file is cached."""
    return cache_dir() / (Path(entry.filename).stem + ".safetensors")


def local_file(entry: PretrainedModel) -> Path | None:
    """The file of an entry if it is on this machine now (no download, no hashing)."""
    if entry.source == "bundled":
        path = WEIGHTS_DIR / entry.filename
    elif entry.source == "path":
        path = Path(entry.filename)
    else:
        if needs_conversion(entry):
            path = converted_path(entry)
        else:
            path = cache_dir() / entry.filename
            if entry.size is not None and path.is_file() and path.stat().st_size != entry.size:
                return None
    return path if path.is_file() else None


def needs_conversion(entry: PretrainedModel) -> bool:
    """Whether the entry's file is a foreign ``.pt``/``.pth`` to convert once."""
    return Path(entry.filename).suffix.lower() in TORCH_SUFFIXES
