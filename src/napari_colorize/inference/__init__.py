"""Colorize images of any size: tiled, batched, nD and lazy-array aware prediction.

The one prediction path. A :class:`Colorizer` wraps one model (any ``nn.Module``
honouring the model contract, or a registered name / checkpoint path). For each
2D plane of the input it

1. converts the plane to CIE L in [0, 100] with :mod:`napari_colorize.images`
   (the intensity range is computed once for the whole stack, so every plane is
   scaled the same way; :mod:`.reading`);
2. shrinks L to the *working size* (``chroma_size``: the longest side the network
   sees) and predicts ab there, in overlapping tiles blended with a raised-cosine
   window when the working image is larger than ``tile`` (:mod:`.network`,
   :mod:`.tiling`);
3. upsamples ab bilinearly onto the full-resolution L and converts Lab to RGB in
   row strips, so memory stays bounded for very large images (:mod:`.compose`).
   The result keeps the input's own L: colours that fall outside the sRGB gamut
   are desaturated towards the gray of the same luminance rather than clipped,
   so lightness never changes.

Stacks are read one plane at a time (dask and zarr arrays are never
materialised whole), in groups of planes that share one network batch, while a
background thread reads the next planes (:mod:`.reading`). The work is a
generator of :class:`ColorizeProgress` events (:meth:`Colorizer.run`,
:mod:`.progress`) that checks :meth:`Colorizer.request_stop` between tiles and
planes. Models loaded by name are kept in :mod:`.model_cache`; what the options
mean is in :mod:`.options`.
"""

from __future__ import annotations

from .colorizer import Colorizer, colorize
from .model_cache import clear_model_cache
from .options import DEFAULT_CHROMA_SIZE, GUIDED_CHROMA_SIZE, GUIDED_METHODS
from .progress import ColorizeProgress

__all__ = [
    "DEFAULT_CHROMA_SIZE",
    "GUIDED_CHROMA_SIZE",
    "GUIDED_METHODS",
    "ColorizeProgress",
    "Colorizer",
    "clear_model_cache",
    "colorize",
]
