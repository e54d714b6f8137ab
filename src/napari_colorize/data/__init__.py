"""Training and evaluation data: the CryptoPunks, folders of images, in-memory arrays.

Every dataset yields ``(l_net, ab_net)`` float32 tensors of shapes ``(1, h, w)``
and ``(2, h, w)``, with random crops and flips that depend only on
``(seed, epoch, index)``. :func:`dataset_from_spec` turns the strings the CLI
and the widgets accept into datasets.

Importing this package is cheap: torch loads with the first dataset.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

__all__ = [
    "PUNK_TYPES",
    "SPEC_FORMS",
    "ArrayDataset",
    "ImageFolderDataset",
    "PunksDataset",
    "PunksSplit",
    "dataset_from_spec",
    "load_punks",
    "punk_type_index",
    "read_rgb",
]

_LAZY = {
    "PUNK_TYPES": "punks",
    "PunksSplit": "punks",
    "load_punks": "punks",
    "punk_type_index": "punks",
    "ArrayDataset": "arrays",
    "PunksDataset": "arrays",
    "ImageFolderDataset": "folder",
    "read_rgb": "folder",
}

#: The dataset specifications :func:`dataset_from_spec` understands.
SPEC_FORMS = ("punks:train", "punks:test", "folder:PATH", "PATH (an existing folder or image)")


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


def dataset_from_spec(spec, patch_size=None, seed: int = 0, **kwargs):
    """Build a dataset from a short specification.

    Parameters
    ----------
    spec : str or path-like
        ``"punks:train"`` / ``"punks:test"`` (the CryptoPunks), ``"folder:PATH"``
        (the colour images under PATH), or a bare existing path: a folder is read
        like ``folder:``, a single image file becomes random patches of it.
    patch_size : int or (int, int), optional
        Random crop size; ``None`` yields whole images.
    seed : int
        Seed of the crops and flips.
    **kwargs
        Passed to the dataset (``flips``, ``samples_per_epoch``, ``recursive``,
        ``return_alpha``, ``sdist``, ...).

    Returns
    -------
    torch.utils.data.Dataset
        With the attribute ``spec`` set to the specification it was built from.

    Raises
    ------
    ValueError
        For a specification of none of these forms.
    FileNotFoundError
        For ``folder:PATH`` with a missing PATH.
    """
    text = os.fspath(spec) if isinstance(spec, os.PathLike) else spec
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"dataset spec must be a non-empty string, got {spec!r}; {_forms()}")
    text = text.strip()
    if text.startswith("punks:"):
        split = text[len("punks:") :]
        if split not in ("train", "test"):
            raise ValueError(f"unknown punks split {split!r} in {text!r}; {_forms()}")
        from .arrays import PunksDataset

        dataset = PunksDataset(split, patch_size=patch_size, seed=seed, **kwargs)
    elif text.startswith("folder:"):
        from .folder import ImageFolderDataset

        root = Path(text[len("folder:") :]).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"{text!r}: {root} is not an existing folder; {_forms()}")
        dataset = ImageFolderDataset(root, patch_size=patch_size, seed=seed, **kwargs)
    elif Path(text).expanduser().is_dir():
        from .folder import ImageFolderDataset

        dataset = ImageFolderDataset(
            Path(text).expanduser(), patch_size=patch_size, seed=seed, **kwargs
        )
    elif Path(text).expanduser().is_file():
        from .arrays import ArrayDataset
        from .folder import read_rgb

        dataset = ArrayDataset(
            read_rgb(Path(text).expanduser()), patch_size=patch_size, seed=seed, **kwargs
        )
    else:
        raise ValueError(f"unknown dataset spec {text!r} (no such file or folder); {_forms()}")
    dataset.spec = text
    return dataset


def _forms() -> str:
    return "use one of " + ", ".join(repr(f) if ":" in f else f for f in SPEC_FORMS)
