"""What a :class:`~.colorizer.Colorizer`'s options mean: defaults, checks, and the method run.

The working-size defaults, the training-free methods ``model`` may name, and the
helpers that turn the ``model``, ``reference``, ``hints`` and ``temporal`` options
into what the Colorizer runs.
"""

from __future__ import annotations

import numpy as np

from ..guided import HintPropagator, ReferenceColorizer
from ..temporal import DEFAULT_STRENGTH

__all__ = [
    "CPU_BATCH_PIXELS",
    "DEFAULT_CHROMA_SIZE",
    "GUIDED_CHROMA_SIZE",
    "GUIDED_METHODS",
    "check_positive",
    "guided_method",
    "hint_maps",
    "network_takes_hints",
    "temporal_strength",
]

#: Working size (longest side, in pixels) when neither the caller nor the model says.
DEFAULT_CHROMA_SIZE = 256
#: Working size of the training-free methods (a reference, hint propagation).
GUIDED_CHROMA_SIZE = 1024
#: Most input pixels per forward pass on the CPU by default (see ``Colorizer(batch_size=)``)
CPU_BATCH_PIXELS = 2 * 512 * 512
#: What ``model`` may name besides networks: the training-free methods.
GUIDED_METHODS = ("propagate", "reference")


def hint_maps(value):
    """Hint maps from what users pass: arrays, or a :class:`~.hints.HintSource` (made lazily)."""
    from ..hints import HintSource

    if isinstance(value, HintSource):
        return value.stack() if value.leading_shape else value.plane(())
    return value


def network_takes_hints(model) -> bool:
    """Whether a network has a hint branch: flagged so, or ``forward`` has a ``hints`` argument."""
    import inspect

    from ..models.hint_format import model_accepts_hints

    if model_accepts_hints(model):
        return True
    if getattr(model, "accepts_hints", None) is not None:
        return False  # explicitly says no
    try:
        return "hints" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def guided_method(model, reference):
    """The training-free method ``model`` and ``reference`` ask for, or None for a network."""
    if hasattr(model, "predict_ab") and hasattr(model, "prepare"):
        if reference is not None:
            raise ValueError("give either a guided method object or reference=, not both")
        return model
    name = model if isinstance(model, str) else None
    if reference is not None:
        if name not in (None, "reference"):
            raise ValueError(
                f"reference= colours from a reference image; it cannot be combined with "
                f"model={model!r}. Leave model out (or use model='reference')"
            )
        return ReferenceColorizer(reference)
    if name == "reference":
        raise ValueError(
            "model='reference' needs a colour image: pass reference=RGB_ARRAY "
            "(CLI: --reference REF.png)"
        )
    if name == "propagate":
        return HintPropagator()
    return None


def temporal_strength(value) -> float:
    if value is True:
        return DEFAULT_STRENGTH
    if value is False or value is None:
        return 0.0
    if isinstance(value, (int, float, np.floating)) and 0.0 <= float(value) < 1.0:
        return float(value)
    raise ValueError(f"temporal must be True, False or a blend strength in [0, 1), got {value!r}")


def check_positive(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
