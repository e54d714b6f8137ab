"""Consistent colours through stacks and time-lapses.

Motion between neighbouring planes (:mod:`.flow`) carries hints and colours
from plane to plane (:mod:`.carry`) along the axis napari scrolls
(:mod:`.sequence`). Switched on by ``temporal=True`` in
:func:`napari_colorize.colorize` and :class:`~napari_colorize.inference.Colorizer`,
``--temporal`` on the command line and *consistent across planes* in the widget.
"""

from .carry import blend_colours, carry_hints
from .flow import Motion, estimate_motion, flow_backend, warp
from .sequence import DEFAULT_STRENGTH, keyframe, plane_order, run_sequences

__all__ = [
    "DEFAULT_STRENGTH",
    "Motion",
    "blend_colours",
    "carry_hints",
    "estimate_motion",
    "flow_backend",
    "keyframe",
    "plane_order",
    "run_sequences",
    "warp",
]
