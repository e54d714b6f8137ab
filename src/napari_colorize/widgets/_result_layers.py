"""The Colorize widget's output layers: a run's result shown in the viewer (main thread only).

A whole result becomes (or replaces the data of) the colorized layer and its
L, a, b layers; a single plane goes into the plane of an existing stack, in
memory or in its result store on disk. A new result layer goes below the
hint layer so that the hints stay visible, and a result store no layer reads
any more is removed (:mod:`._result_store`).
"""

from __future__ import annotations

import numpy as np

from ..layers import LAB_CHANNELS
from ._hint_points import keep_hints_above
from ._result_store import release_unused, set_store, store_of, watch_removals, writable_store
from ._viewer import add_or_replace_image, find_output, lab_display_kwargs

__all__ = ["show_result"]


def show_result(viewer, job, result, hints=None):
    """Put a run's result into its output layers (main thread); returns the colorized one.

    A single plane whose source already has a colorized layer of the whole
    stack is written into that layer's plane, so a preview or live run
    does not throw away the colorized stack. A new result layer goes
    below the hint layer, and a live run leaves the hint layer selected.

    Parameters
    ----------
    viewer : napari.Viewer
    job : ColorizeJob
    result : JobResult
    hints : napari.layers.Layer, optional
        The hint layer, kept above a new result layer.

    Returns
    -------
    napari.layers.Image
        The colorized layer.
    """
    kwargs = {**job.outputs["colorized"], "rgb": True}
    roles = ("colorized", *LAB_CHANNELS)
    before = {
        role: find_output(viewer, job.outputs[role]["name"], job.source, role) for role in roles
    }
    old_stores = [store_of(layer) for layer in before.values()]  # replaced below
    active = viewer.layers.selection.active
    colorized = _write_plane(viewer, job, result.rgb, kwargs)
    if colorized is not None:
        return colorized
    shown = {"colorized": add_or_replace_image(viewer, result.rgb, kwargs)}
    if result.lab is not None:
        for channel, data in zip(LAB_CHANNELS, result.lab):
            lab_kwargs = {
                **job.outputs[channel],
                **lab_display_kwargs(channel),
                "visible": False,
            }
            shown[channel] = add_or_replace_image(viewer, data, lab_kwargs)
    for layer in shown.values():
        set_store(layer, result.store)
    if result.store is not None:
        watch_removals(viewer)
    release_unused(viewer.layers, old_stores)
    colorized = shown["colorized"]
    if before["colorized"] is not colorized:  # new: the hints stay visible above it
        keep_hints_above(viewer, colorized, hints)
    if job.live and active is not None and active in viewer.layers:
        viewer.layers.selection.active = active  # keep adding hint points
    return colorized


def _write_plane(viewer, job, rgb, kwargs):
    if job.plane is None:
        return None
    layer = find_output(viewer, kwargs["name"], job.source, "colorized")
    if layer is None or not layer.rgb:
        return None
    # a stack in memory, or in a result store on disk, takes the plane
    store = None if isinstance(layer.data, np.ndarray) else writable_store(layer)
    target = layer.data if store is None else store.array
    if store is None and not isinstance(target, np.ndarray):
        return None
    n_stack = len(job.plane)
    if target.ndim != rgb.ndim or target.shape[n_stack:] != rgb.shape[n_stack:]:
        return None
    # the stack's own geometry: the plane's place along the stack axes
    if not np.allclose(layer.scale[n_stack:], kwargs["scale"][n_stack:]) or any(
        i >= n for i, n in zip(job.plane, target.shape[:n_stack])
    ):
        return None
    if target.shape[:n_stack] == rgb.shape[:n_stack]:
        return None  # a one-plane layer: replaced as a whole
    target[job.plane] = rgb.reshape(rgb.shape[n_stack:])
    if store is not None:  # a new dask graph: napari's chunk cache holds the old plane
        layer.data = store.to_dask()
    else:
        layer.refresh()
    return layer
