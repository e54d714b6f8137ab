"""bioimage.io model packages as models: the torch graph they hold, and reading them.

:func:`load_package` (in :mod:`.loading`) turns a package napari-colorize
exported (:mod:`napari_colorize.export.bioimageio`), or any gray -> RGB
bioimage.io model with TorchScript weights, into a model the
:class:`~napari_colorize.inference.Colorizer` runs; :mod:`.graph` holds the torch
modules on both sides. Needs the ``bioimageio`` extra (``pip install
'napari-colorize[bioimageio]'``); importing this package is cheap (torch and
bioimageio.spec load on first use).
"""

from __future__ import annotations

from .detect import DESCRIPTION_NAMES, is_package, require_spec

__all__ = ["DESCRIPTION_NAMES", "is_package", "load_package", "require_spec"]


def load_package(path, device="cpu"):
    """See :func:`napari_colorize.bioimageio.loading.load_package`."""
    from .loading import load_package as load

    return load(path, device=device)
