"""Write models in formats other tools read: bioimage.io model packages."""

from __future__ import annotations

__all__ = ["export_bioimageio"]


def export_bioimageio(model, dst, **kwargs):
    """See :func:`napari_colorize.export.bioimageio.export_bioimageio`."""
    from .bioimageio import export_bioimageio as export

    return export(model, dst, **kwargs)
