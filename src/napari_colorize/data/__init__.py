"""Training and evaluation data: the CryptoPunks, folders of images, in-memory arrays.

Every dataset yields ``(l_net, ab_net)`` float32 tensors of shapes ``(1, h, w)``
and ``(2, h, w)``, with random crops and flips that depend only on
``(seed, epoch, index)``. :func:`parse_data_spec` (:mod:`.spec`) is the one
parser of the strings the CLI and the widgets accept; :func:`dataset_from_spec`
turns them into datasets.

Importing this package is cheap: torch loads with the first dataset.
"""

from __future__ import annotations

from ..lazy_names import lazy_names
from .spec import SPEC_FORMS, DataNotFoundError, DataSpec, parse_data_spec

__all__ = [
    "PUNK_TYPES",
    "SPEC_FORMS",
    "ArrayDataset",
    "DataNotFoundError",
    "DataSpec",
    "ImageFolderDataset",
    "PunksDataset",
    "PunksSplit",
    "dataset_from_spec",
    "load_punks",
    "parse_data_spec",
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

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())


def dataset_from_spec(spec, patch_size=None, seed: int = 0, **kwargs):
    """Build a dataset from a short specification.

    Parameters
    ----------
    spec : str or path-like
        ``"punks:train"`` / ``"punks:test"`` (the CryptoPunks), ``"folder:PATH"``
        (the colour images under PATH), or a bare existing path: a folder is read
        like ``folder:``, a single image file becomes random patches of it
        (see :func:`~napari_colorize.data.spec.parse_data_spec`).
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
    DataNotFoundError
        (a ``FileNotFoundError`` and a ``ValueError``) for a path that does not exist.
    """
    parsed = parse_data_spec(spec)
    if parsed.kind == "punks":
        from .arrays import PunksDataset

        dataset = PunksDataset(parsed.split, patch_size=patch_size, seed=seed, **kwargs)
    elif parsed.kind == "folder":
        from .folder import ImageFolderDataset

        dataset = ImageFolderDataset(parsed.path, patch_size=patch_size, seed=seed, **kwargs)
    else:
        from ..image_files import read_rgb
        from .arrays import ArrayDataset

        dataset = ArrayDataset(read_rgb(parsed.path), patch_size=patch_size, seed=seed, **kwargs)
    dataset.spec = parsed.text
    return dataset
