"""Which precision a run's network uses: bf16 where it is fast and keeps the colours.

With ``precision="auto"`` on a CPU whose matrix units run bf16 (Intel AMX), the
rule is the one of issue 20: bf16 unless it moves the model's colours by more
than :data:`MAX_COLOUR_CHANGE` (mean CIEDE2000) on the model's quality set. A
checkpoint evaluated by ``export --evaluate`` records that change beside its
scores (:func:`napari_colorize.evaluation.precision_change`, read back by
:func:`quality_set_change`): ``beta-punks`` moves the colours of punks:test by
0.041, so it runs in bf16. How much bf16 moves the colours depends on the
network and on the image, though (the same model moves those of photographs by
about 0.2, see docs/benchmarks.md, full resolution), so a model without that
figure (a module passed in, a checkpoint never evaluated) is judged on the data
being coloured instead: a large run first colours nine windows spread over its
first plane twice (see :func:`check_windows`), in float32 and in bf16, composed
to sRGB as the user would see them, and runs in bf16 only if the two are within
:data:`MAX_COLOUR_CHANGE`. On CPUs without AMX, bf16 is no faster than float32
and the run stays in float32; on CUDA ``"auto"`` is bf16 or fp16 (see
:func:`napari_colorize.devices.inference_dtype`).
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..color import AB_SCALE, l_ab_to_rgb, l_to_net, rgb_to_lab

__all__ = [
    "MAX_COLOUR_CHANGE",
    "PRECISION_ENV",
    "QUALITY_SET_KEY",
    "colour_change",
    "cpu_has_fast_bf16",
    "precision_asked",
    "quality_set_change",
]

#: An environment variable that sets what ``precision="auto"`` means in this process
#: and the processes it starts (dask workers), e.g. ``fp32`` for the same colours on
#: every machine of a cluster, AMX or not.
PRECISION_ENV = "NAPARI_COLORIZE_PRECISION"


def precision_asked(precision: str, choices) -> str:
    """``precision``; for ``"auto"``, what :data:`PRECISION_ENV` says. Checked against ``choices``.

    Raises
    ------
    ValueError
        ``precision`` (or the environment variable) is not one of ``choices``.
    """
    if precision not in choices:
        raise ValueError(f"precision must be one of {choices}, got {precision!r}")
    if precision != "auto":
        return precision
    value = os.environ.get(PRECISION_ENV, "").strip().lower() or "auto"
    if value not in choices:
        raise ValueError(
            f"the environment variable {PRECISION_ENV}={os.environ[PRECISION_ENV]!r} is not "
            f"a precision: use one of {', '.join(choices)}, or unset it"
        )
    return value


#: The largest mean CIEDE2000 between float32 and bf16 colours for which "auto" takes bf16.
MAX_COLOUR_CHANGE = 0.1
#: The checkpoint metric that records bf16's colour change on the metrics' data.
QUALITY_SET_KEY = "bf16_change"


def quality_set_change(meta) -> tuple[float, str] | None:
    """bf16's recorded colour change on a model's quality set: ``(mean ΔE00, data)``, or None.

    Parameters
    ----------
    meta : CheckpointMeta or None
        The model's checkpoint metadata; its ``metrics`` hold the figure under
        :data:`QUALITY_SET_KEY` beside the scores on the same ``data``.
    """
    metrics = getattr(meta, "metrics", None) or {}
    value = metrics.get(QUALITY_SET_KEY)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return float(value), str(metrics.get("data") or "its quality set")


#: A run checks bf16 only when it has at least this many tiles of network work
#: (planes x tiles per plane): the check costs about a tile's work, not worth it for
#: small runs (a 1024² check over one 512-px window, 9 tiles, took a quarter longer).
_MIN_TILES_OF_WORK = 16


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU runs bf16 matrix products on AMX tiles (several times float32's rate)."""
    import torch

    check = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(check()) if check is not None else False
    except Exception:  # a torch whose check fails on this platform
        return False


def worth_checking(n_planes: int, n_tiles: int) -> bool:
    """Whether a run of ``n_planes`` planes of ``n_tiles`` tiles is large enough to check bf16."""
    return n_planes * n_tiles >= _MIN_TILES_OF_WORK


#: Side of the windows the check samples, in working-size pixels.
CHECK_WINDOW = 128


def check_windows(shape: tuple[int, int], side: int = CHECK_WINDOW) -> list[tuple[slice, slice]]:
    """Where the check looks: nine windows spread over a plane of ``shape`` (3 x 3).

    Their mean colour change estimates the plane's: one window would say more
    of the part of the image it happens to fall on (a flat centre keeps its
    colours in any precision, a textured one does not).
    """
    h, w = shape
    sh, sw = min(side, h), min(side, w)
    rows = sorted({round(i * (h - sh) / 2) for i in range(3)})
    cols = sorted({round(i * (w - sw) / 2) for i in range(3)})
    return [(slice(y, y + sh), slice(x, x + sw)) for y in rows for x in cols]


def colour_change(forward, lightness, cond: dict, dtype) -> float:
    """Mean CIEDE2000 between the sRGB colours of a float32 and a ``dtype`` forward pass.

    Parameters
    ----------
    forward : callable
        ``forward(x, cond, dtype)`` -> ab in the network's units (N, 2, h, w),
        with ``dtype=None`` for float32.
    lightness : torch.Tensor
        CIE L of one or more windows, (N, 1, h, w).
    cond : dict
        The network's other inputs for the same windows.
    dtype : torch.dtype
        The reduced precision to compare.

    Returns
    -------
    float
        The mean ΔE00 over the windows' pixels, composed as the Colorizer composes.
    """
    from ..metrics import ciede2000

    x = l_to_net(lightness)
    light = lightness[:, 0].float().cpu().numpy()
    labs = []
    for d in (None, dtype):
        ab = forward(x, cond, d).clamp(-1.0, 1.0).mul(AB_SCALE)
        ab = np.ascontiguousarray(ab.permute(0, 2, 3, 1).float().cpu().numpy())
        labs.append(rgb_to_lab(l_ab_to_rgb(light, ab)))
    return float(ciede2000(labs[1], labs[0]))
