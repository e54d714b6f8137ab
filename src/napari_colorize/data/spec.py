"""The one parser of data specifications: what ``--data`` and the widgets' data choices mean.

``punks:train`` and ``punks:test`` are the CryptoPunks splits; ``folder:PATH``
and a bare ``PATH`` name a folder of images or one image file, told apart by
what is on disk. :func:`parse_data_spec` turns a specification into a
:class:`DataSpec`, or raises one clear error naming the forms; training
(:func:`napari_colorize.data.dataset_from_spec`, the presets, datasets from a
spec with a held-out part) and :mod:`napari_colorize.evaluation` all parse
with it. Pure Python: no torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SPEC_FORMS", "DataNotFoundError", "DataSpec", "parse_data_spec"]

#: The forms :func:`parse_data_spec` understands.
SPEC_FORMS = ("punks:train", "punks:test", "folder:PATH", "PATH (an existing folder or image)")
PUNKS_SPLITS = ("train", "test")


class DataNotFoundError(FileNotFoundError, ValueError):
    """A data specification names a file or folder that does not exist."""


@dataclass(frozen=True)
class DataSpec:
    """A parsed data specification.

    Attributes
    ----------
    text : str
        The specification as given (stripped).
    kind : str
        ``"punks"``, ``"folder"`` (an existing folder) or ``"file"`` (an existing file).
    split : str or None
        ``"train"`` or ``"test"`` for the punks.
    path : Path or None
        The folder or file, user folder expanded.
    """

    text: str
    kind: str
    split: str | None = None
    path: Path | None = None


def forms() -> str:
    """``"use one of 'punks:train', ..."``: the end of every error message here."""
    return "use one of " + ", ".join(repr(f) if ":" in f else f for f in SPEC_FORMS)


def parse_data_spec(spec, *, default_split: str | None = None) -> DataSpec:
    """Parse a data specification.

    Parameters
    ----------
    spec : str or path-like
        ``"punks:train"``, ``"punks:test"``, ``"folder:PATH"`` or a bare path of
        an existing folder or image file (``folder:`` before a file is allowed).
    default_split : str, optional
        The split of a bare ``"punks"`` (evaluation: ``"test"``); without it a
        bare ``"punks"`` is an error.

    Returns
    -------
    DataSpec

    Raises
    ------
    ValueError
        For an empty specification or an unknown punks split.
    DataNotFoundError
        (a ``FileNotFoundError`` and a ``ValueError``) for a path that does not exist.
    """
    text = os.fspath(spec) if isinstance(spec, os.PathLike) else spec
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"dataset spec must be a non-empty string, got {spec!r}; {forms()}")
    text = text.strip()
    head, colon, rest = text.partition(":")
    if head.lower() == "punks" and (colon or default_split is not None):
        split = rest if colon else default_split
        if split not in PUNKS_SPLITS:
            raise ValueError(f"unknown punks split {split!r} in {text!r}; {forms()}")
        return DataSpec(text, "punks", split=split)
    if text.lower() == "punks":
        raise ValueError(f"{text!r} needs a split; {forms()}")
    prefixed = head.lower() == "folder" and colon
    path = Path(rest if prefixed else text).expanduser()
    if path.is_dir():
        return DataSpec(text, "folder", path=path)
    if path.is_file():
        return DataSpec(text, "file", path=path)
    if prefixed:
        raise DataNotFoundError(f"{text!r}: {path} is not an existing folder; {forms()}")
    raise DataNotFoundError(f"unknown dataset spec {text!r} (no such file or folder); {forms()}")
