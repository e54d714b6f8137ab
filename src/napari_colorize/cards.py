"""Model cards: what a model was trained on, what it is for, its sizes and figures.

A card is a plain dict built from a checkpoint's header (``data``, ``extra``,
``metrics``) and, for the built-in models, a few facts the registry knows
(:func:`napari_colorize.registry.model_card` puts the two together). The same
metadata decide the working size that ``chroma_size="auto"`` gives an image
(:func:`auto_working_size`, used by :class:`~napari_colorize.inference.Colorizer`)
and whether an image is like a classifier's training data
(:func:`domain_warnings`, used by :mod:`napari_colorize.classify`).

Training-free methods (colour from a reference, hint propagation) have no
weights and so no registry entry; their cards are added with
:func:`register_method_card`.

Pure Python: no torch, no Qt.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "NEAR_FACTOR",
    "PUNKS_SIZE",
    "auto_working_size",
    "build_card",
    "card_lines",
    "card_summary",
    "domain_warnings",
    "format_size",
    "method_cards",
    "native_resolution",
    "register_method_card",
    "training_image_size",
    "working_size_text",
]

#: Side of a CryptoPunk in pixels.
PUNKS_SIZE = 24
#: An image whose longest side is within this factor of a model's training size is
#: "near" it: the model's own working size applies (else the default one).
NEAR_FACTOR = 4
_PUNKS_PURPOSE = f"CryptoPunks {PUNKS_SIZE}x{PUNKS_SIZE} pixel art only"
#: Metrics that are counts or labels, not figures.
_NOT_FIGURES = ("n_images", "data")
#: Cards of the training-free methods, by name (see :func:`register_method_card`).
_METHOD_CARDS: dict[str, dict] = {}


def _positive_int(value) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or value < 1:
        return None
    return int(value)


def _mentions_punks(data) -> bool:
    return "punks" in str(data or "").lower()


def training_image_size(extra: Mapping | None, data: Any = None) -> int | None:
    """Longest side (pixels) of the images or patches a model was trained on.

    Parameters
    ----------
    extra : mapping or None
        The checkpoint's ``extra``: ``image_size`` where the trainer recorded it.
    data : object
        The checkpoint's ``data``; files written before ``image_size`` was
        recorded are recognised as CryptoPunks models (24 px) from it, and
        otherwise fall back to their stored ``chroma_size``.

    Returns
    -------
    int or None
        None when the metadata do not say.
    """
    extra = extra or {}
    size = _positive_int(extra.get("image_size"))
    if size is not None:
        return size
    if _mentions_punks(data):
        return PUNKS_SIZE
    return _positive_int(extra.get("chroma_size"))


def native_resolution(extra: Mapping | None) -> bool:
    """Whether a model was trained on crops at the images' own resolution, with no
    working size (``extra["native_resolution"]``, recorded by the trainer for patch
    training): it colorizes at full resolution, tiled."""
    extra = extra or {}
    return bool(extra.get("native_resolution")) and not _positive_int(extra.get("chroma_size"))


def _size_rule(extra, data, default: int) -> tuple[int | None, int | None]:
    """``(size near the training size, reference size)``; the first is None for native."""
    extra = extra or {}
    if native_resolution(extra):
        return None, None
    stored = _positive_int(extra.get("chroma_size"))
    trained = training_image_size(extra, data)
    if stored is None and trained is None:
        return default, None
    # a stored working size is the scale the training images had (the trainer sets it so)
    return (stored or trained), (stored or trained)


def auto_working_size(
    extra: Mapping | None, data: Any, spatial_shape: Sequence[int], default: int
) -> int | None:
    """The working size ``chroma_size="auto"`` gives one image.

    The rule:

    1. a model trained on native-resolution patches (:func:`native_resolution`)
       colorizes at full resolution (None: tiled, never shrunk);
    2. a model's stored ``chroma_size`` (or, without one, its training image size)
       applies to images whose longest side is at most :data:`NEAR_FACTOR` times
       that size: a 24 px CryptoPunks model works at 24 px on punks up to 96 px;
    3. any other image gets ``default``, or the stored size if that is larger
       (a 2048 px photo never gets its colours from a 24x24 grid).

    Parameters
    ----------
    extra, data : the checkpoint's metadata (see :func:`training_image_size`).
    spatial_shape : (int, int)
        The image's ``(H, W)``.
    default : int
        The working size when the model says nothing (``inference.DEFAULT_CHROMA_SIZE``).

    Returns
    -------
    int or None
        The longest side the network sees (images smaller than it are not
        enlarged), or None for full resolution.
    """
    near, reference = _size_rule(extra, data, default)
    if near is None or reference is None:
        return near
    if max(int(s) for s in spatial_shape) <= NEAR_FACTOR * reference:
        return near
    return max(default, near)


def working_size_text(extra: Mapping | None, data: Any, default: int) -> str:
    """:func:`auto_working_size` in words, for a card."""
    near, reference = _size_rule(extra, data, default)
    if near is None:
        return "full resolution (tiled)"
    if reference is None or near >= default:
        return f"{near} px"
    return f"{near} px for images up to {NEAR_FACTOR * reference} px, else {default} px"


def _input_text(size: int | None, extra: Mapping, data, facts: Mapping) -> str:
    if facts.get("input"):
        return str(facts["input"])
    if size is None:
        return "any size"
    if native_resolution(extra):
        return f"patches of {size} px at the images' own resolution"
    if _mentions_punks(data) and size == PUNKS_SIZE:
        return f"{PUNKS_SIZE}x{PUNKS_SIZE} images"
    stored = _positive_int(extra.get("chroma_size"))
    if stored is not None and stored > size:
        return f"patches of {size} px of images of up to {stored} px"
    return f"images of about {size} px"


def _purpose(kind: str, extra: Mapping, data, facts: Mapping, description: str) -> str:
    if facts.get("purpose"):
        return str(facts["purpose"])
    if extra.get("purpose"):
        return str(extra["purpose"])
    if _mentions_punks(data):
        return _PUNKS_PURPOSE
    if kind == "classifier":
        return "classifies images like its training data"
    if native_resolution(extra):
        return "images like its training data, at their own resolution"
    if data:
        return "images like its training data"
    return description or "unknown: its file does not say what it was trained on"


def _figures(metrics: Mapping | None) -> dict:
    out = {}
    for key, value in (metrics or {}).items():
        if key in _NOT_FIGURES or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue
        out[key] = value
    return out


def format_size(n_bytes) -> str:
    """``718.6 KB``, ``129.0 MB``; ``-`` for None."""
    if n_bytes is None:
        return "-"
    n = float(n_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return "-"


def build_card(
    name: str,
    *,
    arch: str = "",
    source: str = "",
    data: Any = None,
    extra: Mapping | None = None,
    metrics: Mapping | None = None,
    description: str = "",
    size: int | None = None,
    available: bool = True,
    facts: Mapping | None = None,
    default_working_size: int = 256,
) -> dict:
    """The card of one model from its metadata (and the registry's facts about it).

    Parameters
    ----------
    name : str
    arch, source : str
        Architecture and registry source (``bundled``, ``url``, ``path``).
    data, extra, metrics : the checkpoint's metadata (None/empty when not on this machine).
    description : str
    size : int, optional
        Bytes of the weights file (the download size for a URL model).
    available : bool
        Whether the file is on this machine.
    facts : mapping, optional
        What the registry knows beyond the file: ``purpose``, ``trained_on``,
        ``image_size``, ``input``, ``lightness`` (``{"mean": [lo, hi], "std": [lo,
        hi], "levels": [lo, hi]}`` of the training images' L), ``any_larger_size``
        (a classifier that resizes its input, so larger images are fine),
        ``download_size_approx``.
    default_working_size : int
        The working size when a model says nothing.

    Returns
    -------
    dict
        ``name``, ``kind`` (``colorizer`` or ``classifier``), ``purpose``,
        ``trained_on``, ``image_size`` (int or None), ``input``, ``working_size``
        (words), ``hints``, ``download_size`` (bytes or None), ``needs_download``,
        ``figures`` (numeric metrics), ``figures_on`` (the evaluation data),
        ``description``, ``summary`` (one short line), plus ``lightness`` and
        ``any_larger_size`` where known.
    """
    extra = dict(extra or {})
    facts = dict(facts or {})
    kind = "classifier" if arch == "inception" else "colorizer"
    size_px = _positive_int(facts.get("image_size")) or training_image_size(extra, data)
    trained_on = facts.get("trained_on") or data
    if isinstance(trained_on, (dict, list)):
        import json

        trained_on = json.dumps(trained_on)
    figures = _figures(metrics)
    on = (metrics or {}).get("data")
    n_images = (metrics or {}).get("n_images")
    if on and isinstance(n_images, int):
        on = f"{on}, {n_images} images"
    download = size if size is not None else facts.get("download_size_approx")
    card = {
        "name": name,
        "kind": kind,
        "purpose": _purpose(kind, extra, data, facts, description),
        "trained_on": str(trained_on) if trained_on else "unknown",
        "image_size": size_px,
        "input": _input_text(size_px, extra, data, facts),
        "working_size": (
            None if kind == "classifier"
            else working_size_text(extra, data, default_working_size)
        ),
        "hints": bool(extra.get("hints", facts.get("hints", False))),
        "download_size": download,
        "download_size_approx": size is None and download is not None,
        "needs_download": source == "url" and not available,
        "figures": figures,
        "figures_on": str(on) if on else None,
        "description": description,
    }  # fmt: skip
    for key in ("lightness", "any_larger_size"):
        if key in facts or key in extra:
            card[key] = facts.get(key, extra.get(key))
    card["summary"] = card_summary(card)
    return card


def card_summary(card: Mapping) -> str:
    """One short line: what the model is for, and its size (or download)."""
    size = card.get("download_size")
    text = format_size(size)
    if card.get("download_size_approx") and size is not None:
        text = f"about {format_size(size)}"
    if card.get("kind") == "method":
        return f"{card.get('purpose', '')}; no weights"
    if card.get("needs_download"):
        return f"{card.get('purpose', '')}; {text} download"
    return f"{card.get('purpose', '')}; {text}" if size is not None else str(card.get("purpose"))


def _format_figure(value) -> str:
    return str(value) if isinstance(value, int) else f"{value:.3g}"


def card_lines(card: Mapping, max_figures: int = 6) -> list[str]:
    """The card as ``label: text`` lines, for a terminal or a tooltip.

    Parameters
    ----------
    card : mapping
        From :func:`build_card` (or a method card).
    max_figures : int
        Figures shown (the first ones stored; evaluation on held-out data first).
    """
    lines = [f"for: {card.get('purpose')}"]
    if card.get("trained_on"):
        lines.append(f"trained on: {card['trained_on']}")
    if card.get("input"):
        lines.append(f"input: {card['input']}")
    if card.get("working_size"):
        lines.append(f"working size: {card['working_size']}")
    if card.get("hints"):
        lines.append("takes colour hints")
    size = card.get("download_size")
    if card.get("kind") == "method":
        lines.append("size: no weights, nothing to download")
    elif size is not None:
        approx = "about " if card.get("download_size_approx") else ""
        what = "download" if card.get("needs_download") else "weights file"
        lines.append(f"{what}: {approx}{format_size(size)}")
    figures = dict(card.get("figures") or {})
    # validation figures repeat the test ones on other data: shown only without those
    shown = {k: v for k, v in figures.items() if not k.startswith("val_")} or figures
    if shown:
        items = list(shown.items())[: max(int(max_figures), 0)]
        text = ", ".join(f"{k} {_format_figure(v)}" for k, v in items)
        on = f" (on {card['figures_on']})" if card.get("figures_on") else ""
        lines.append(f"measured: {text}{on}")
    elif card.get("kind") != "method":
        lines.append("measured: no figures stored in its file")
    return lines


def register_method_card(
    name: str,
    *,
    purpose: str,
    needs: str,
    input: str = "any size",
    description: str = "",
    figures: Mapping | None = None,
    figures_on: str | None = None,
) -> dict:
    """Add the card of a training-free method (no weights): ``reference``, ``propagate``.

    Parameters
    ----------
    name : str
        The name users give it where a model name goes.
    purpose : str
        What it is for, in a few words.
    needs : str
        What the user has to give (``"a colour reference image"``, ``"colour hints"``).
    input, description : str
    figures : mapping, optional
        Measured figures (e.g. from the benchmarks), with ``figures_on`` saying on what.

    Returns
    -------
    dict
        The card (kind ``method``), also returned by :func:`method_cards`.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("a method card needs a non-empty name")
    card = {
        "name": name,
        "kind": "method",
        "purpose": purpose,
        "trained_on": f"nothing: training-free, needs {needs}",
        "image_size": None,
        "input": input,
        "working_size": "full resolution",
        "hints": False,
        "download_size": None,
        "download_size_approx": False,
        "needs_download": False,
        "figures": _figures(figures),
        "figures_on": figures_on,
        "description": description,
    }
    card["summary"] = card_summary(card)
    _METHOD_CARDS[name] = card
    return card


def method_cards() -> dict[str, dict]:
    """The cards of the training-free methods registered so far, by name."""
    return dict(_METHOD_CARDS)


# ------------------------------------------------------------ classifier domain


def domain_warnings(
    card: Mapping,
    image_shape: Sequence[int],
    lightness_mean: float | None = None,
    lightness_std: float | None = None,
    lightness_levels: int | None = None,
) -> list[str]:
    """Why an image is unlike a model's training data (empty when nothing is known against it).

    Parameters
    ----------
    card : mapping
        The model's card (``image_size``, ``any_larger_size``, ``lightness``,
        ``trained_on``, ``name``).
    image_shape : (int, int)
        The image's ``(H, W)`` at full resolution.
    lightness_mean, lightness_std : float, optional
        The image's mean and standard deviation of L (0-100).
    lightness_levels : int, optional
        How many distinct whole-number L values the image has (pixel art has few).

    Returns
    -------
    list of str
        One sentence per reason: the size is more than :data:`NEAR_FACTOR` times
        larger or smaller than the training images, or the mean or spread of the
        lightness, or its number of distinct lightness levels, lies outside the
        training images' range (``card["lightness"]``: ``mean``, ``std``, ``levels``
        as ``[low, high]``).
    """
    reasons = []
    height, width = (int(s) for s in image_shape[-2:])
    longest = max(height, width)
    size = _positive_int(card.get("image_size"))
    trained = card.get("input") or "its training images"
    if size is not None:
        too_small = longest * NEAR_FACTOR < size
        too_large = longest > NEAR_FACTOR * size and not card.get("any_larger_size")
        if too_small or too_large:
            reasons.append(f"it is {height}x{width} px (trained on {trained})")
    bounds = card.get("lightness") or {}
    for key, value, what in (
        ("mean", lightness_mean, "its mean lightness is {:.0f}"),
        ("std", lightness_std, "its lightness spread is {:.0f}"),
        ("levels", lightness_levels, "it has {:.0f} distinct lightness levels"),
    ):
        band = bounds.get(key)
        if value is None or not isinstance(band, (list, tuple)) or len(band) != 2:
            continue
        lo, hi = float(band[0]), float(band[1])
        if not lo <= value <= hi:
            reasons.append(f"{what.format(value)} (training images: {lo:.0f}-{hi:.0f})")
    return reasons


# the built-in training-free methods (napari_colorize.guided); figures measured by
# `python -m benchmarks.run --suite any-image` (docs/benchmarks.md, "Colour on any image")
def _guided_card(name: str, **kwargs) -> None:
    card = register_method_card(name, **kwargs)
    card["working_size"] = "1024 px (colours; the lightness stays at full resolution)"
    card["summary"] = card_summary(card)


_guided_card(
    "reference",
    purpose="any image, given a colour image of the same kind of scene or tissue",
    needs="a colour reference image",
    description="Learns in seconds how the reference's colours follow its lightness "
    "textures and gives them to the gray image; falls back towards gray where the "
    "reference does not cover the image.",
    figures={"ciede2000": 3.96, "ciede2000_lookup_table": 4.86, "ciede2000_gray": 14.19},
    figures_on="right halves of 6 scikit-image photos and samples, the left half as reference",
)
_guided_card(
    "propagate",
    purpose="any image, given a few colour hints",
    needs="colour hints (points, strokes, labels or a hints CSV)",
    description="Spreads each hint's colour along lightness edges (edge-aware normalized "
    "convolution); gray without hints. Hints also correct any model's colours locally.",
    figures={"ciede2000_20_hints": 5.53, "ciede2000_100_hints": 4.04, "ciede2000_gray": 15.35},
    figures_on="4 scikit-image photos, one-pixel true-colour hints at random places",
)
