"""Training-free colour: from a colour reference, and hints spread along lightness.

:class:`ReferenceColorizer` learns, in seconds, how the colours of a reference
image follow from its lightness textures and applies that to gray images of
the same kind of scene or tissue. :class:`HintPropagator` spreads colour hints
edge-aware along lightness, alone (the ``propagate`` method) or as a local
correction of any network's prediction.

Both take L in [0, 100] at the working size and return ab in Lab units; the
:class:`~napari_colorize.inference.Colorizer` does the rest (reading planes,
composing full-resolution RGB).
"""

from .propagate import HintPropagator
from .reference import ReferenceColorizer

__all__ = ["HintPropagator", "ReferenceColorizer"]
