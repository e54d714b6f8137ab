"""Which method colours an image when the user names none.

The bundled networks were trained on 24x24 CryptoPunks and only help on
images of that kind; a photograph or a stained section needs a colour
reference, a few hints, or a photo model (a download). :func:`default_method`
picks one from what the user gave and what is on this machine, and never
silently paints punks colours on a photo: with nothing that helps, it stops
with :class:`NoMethodError`, whose message names the three options.
"""

from __future__ import annotations

from .cards import NEAR_FACTOR, PUNKS_SIZE
from .errors import ColorizeError

__all__ = [
    "PHOTO_MODEL",
    "PUNKS_MAX_SIDE",
    "NoMethodError",
    "default_method",
    "no_method_advice",
    "suggest_method",
]

#: Images whose longest side is at most this get the CryptoPunks models (the sizes at
#: which those models keep their own working size, see :func:`cards.auto_working_size`).
PUNKS_MAX_SIDE = PUNKS_SIZE * NEAR_FACTOR
#: The photo model used when its weights are already downloaded.
PHOTO_MODEL = "eccv16"
#: The hint-aware photo model, used with hints when downloaded.
PHOTO_HINT_MODEL = "siggraph17"


class NoMethodError(ColorizeError, ValueError):
    """No method that helps this image is available without the user's choice."""


def _downloaded(name: str) -> bool:
    from .registry import needs_download

    try:
        return not needs_download(name)
    except ColorizeError:
        return False


def no_method_advice(shape) -> str:
    """The message of :class:`NoMethodError` for a plane of ``shape`` (H, W)."""
    h, w = (int(n) for n in shape[-2:])
    return (
        f"no colorization method helps a {h}x{w} image out of the box: the bundled models "
        f"only know CryptoPunks ({PUNKS_SIZE}x{PUNKS_SIZE} pixel art) and no photo model is "
        "downloaded. Give one of: a colour reference of the same kind of scene or tissue "
        "(reference=RGB_ARRAY; CLI --reference REF.png; the widget's reference layer), "
        "colour hints (model='propagate', hints=...; CLI --model propagate --hints hints.csv; "
        "a Points layer), or download Zhang et al.'s photo model once "
        f"(model='{PHOTO_MODEL}'; CLI --model {PHOTO_MODEL}; 129 MB)"
    )


def default_method(shape, *, hints: bool = False, reference: bool = False) -> str:
    """The method for an image of ``shape`` when the user names none.

    Parameters
    ----------
    shape : tuple of int
        The image's spatial shape ``(H, W)`` (leading axes are ignored).
    hints : bool
        Whether the user gave colour hints.
    reference : bool
        Whether the user gave a colour reference.

    Returns
    -------
    str
        ``"reference"``; a bundled punks model for punks-sized images;
        ``"eccv16"`` (``"siggraph17"`` with hints) when downloaded; or
        ``"propagate"`` with hints.

    Raises
    ------
    NoMethodError
        For any other image with nothing given: the message names the options.
    """
    if reference:
        return "reference"
    if max(int(n) for n in shape[-2:]) <= PUNKS_MAX_SIDE:
        return "beta-punks-hints" if hints else "beta-punks"
    if hints and _downloaded(PHOTO_HINT_MODEL):
        return PHOTO_HINT_MODEL
    if _downloaded(PHOTO_MODEL):
        return PHOTO_MODEL
    if hints:
        return "propagate"
    raise NoMethodError(no_method_advice(shape))


def suggest_method(shape, *, hints: bool = False, reference: bool = False) -> str:
    """Like :func:`default_method`, for a menu: never raises.

    Where :func:`default_method` would stop, the photo model is suggested: the
    Colorize widget then offers its download in one click, and says that a
    reference layer or hints work offline.
    """
    try:
        return default_method(shape, hints=hints, reference=reference)
    except NoMethodError:
        return PHOTO_MODEL
