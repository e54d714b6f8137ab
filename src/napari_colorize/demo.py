"""The library side of ``napari-colorize demo``: sample, model, and the files it writes.

The demo colorizes a grayscale sample (CryptoPunks of the test split, or the
scikit-image astronaut where the punks cannot be had) with the bundled model.
With a display, :mod:`napari_colorize.widgets.demo` shows it in napari; without
one, :func:`run_headless` writes the colorized sample and a side-by-side PNG
(gray | colorized | truth). Nothing here imports Qt or napari; torch is
imported only when colorizing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ColorizeError

__all__ = [
    "DEMO_MODEL",
    "DemoSample",
    "display_problem",
    "load_demo_sample",
    "montage",
    "pick_model",
    "run_headless",
    "side_by_side",
    "write_outputs",
]

#: The model the demo uses when it is installed.
DEMO_MODEL = "beta-punks"
#: How many punks the demo colorizes.
N_DEMO_PUNKS = 64

_QT_PROBE = "from qtpy.QtWidgets import QApplication; app = QApplication([]); print('ok')"


@dataclass
class DemoSample:
    """A grayscale image (or stack) to colorize, with its colour truth.

    Attributes
    ----------
    name : str
        Layer and file name stem.
    gray : numpy.ndarray
        uint8, ``(H, W)`` or ``(N, H, W)``.
    truth : numpy.ndarray or None
        uint8 RGB, ``gray.shape + (3,)``.
    note : str or None
        Why this sample was chosen instead of the usual one, if it was.
    """

    name: str
    gray: np.ndarray
    truth: np.ndarray | None = None
    note: str | None = None


def load_demo_sample(n: int = N_DEMO_PUNKS) -> DemoSample:
    """The first ``n`` test-split CryptoPunks in gray (what ``beta-punks`` knows), with truth.

    Falls back to the scikit-image astronaut when the punks cannot be loaded
    (they are downloaded on first use).
    """
    from . import sample_data

    try:
        (gray, kwargs, _), (truth, _tkw, _) = sample_data.punks_stack(n)
        return DemoSample(kwargs["name"], gray, truth)
    except Exception as exc:  # offline on first use, or a broken cache
        (gray, kwargs, _), (truth, _tkw, _) = sample_data.gray_photo()
        note = f"the CryptoPunks could not be loaded ({exc}); using the astronaut photo"
        return DemoSample(kwargs["name"], gray, truth, note=note)


def pick_model(preferred: str = DEMO_MODEL) -> tuple[str, str | None]:
    """The model to run: ``preferred`` if installed, else another available one.

    Returns
    -------
    name : str
        A registered name or a checkpoint path.
    note : str or None
        What was substituted and why, for the user; None when ``preferred`` is used.

    Raises
    ------
    ColorizeError
        No model at all is available; the message says how to get one.
    """
    if Path(preferred).expanduser().is_file():
        return str(Path(preferred).expanduser()), None
    from .registry import list_models

    # classifiers (the full model's Inception head) are registered too, but colour nothing
    available = [
        m["name"] for m in list_models() if m.get("available") and m.get("arch") != "inception"
    ]
    if preferred in available:
        return preferred, None
    if available:
        fallback = DEMO_MODEL if DEMO_MODEL in available else available[0]
        return fallback, (
            f"model {preferred!r} is not installed here; using {fallback!r} instead "
            "(see `napari-colorize models`)"
        )
    raise ColorizeError(
        f"no colorization model is installed: {preferred!r} is missing and no other model "
        "is registered. Train the bundled one with `napari-colorize train --preset beta-punks "
        "--out beta-punks.safetensors` and run `napari-colorize demo --model "
        "beta-punks.safetensors`"
    )


def display_problem() -> str | None:
    """Why a napari window cannot open here, or None if it can.

    On Linux a display needs ``DISPLAY`` (X11) or ``WAYLAND_DISPLAY``; then Qt
    is started once in a subprocess, since a Qt that cannot reach its display
    aborts the whole process instead of raising.
    """
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return "no display found (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    try:
        result = subprocess.run(
            [sys.executable, "-c", _QT_PROBE], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Qt could not be started ({exc})"
    if result.returncode != 0 or "ok" not in result.stdout:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit status {result.returncode}"
        if "No module named" in detail:
            detail += "; install a Qt binding with: pip install 'napari-colorize[qt]'"
        return f"Qt could not be started: {detail}"
    return None


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(gray)[..., None], 3, axis=-1)


def montage(stack: np.ndarray, columns: int = 8, gap: int = 0, fill: int = 255) -> np.ndarray:
    """Tile the planes of an ``(N, H, W[, 3])`` stack into one image, row by row."""
    stack = np.asarray(stack)
    n, height, width = stack.shape[:3]
    columns = max(1, min(int(columns), n))
    rows = -(-n // columns)
    shape = (rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap)
    out = np.full(shape + stack.shape[3:], fill, dtype=stack.dtype)
    for i in range(n):
        r, c = divmod(i, columns)
        out[r * (height + gap) : r * (height + gap) + height,
            c * (width + gap) : c * (width + gap) + width] = stack[i]  # fmt: skip
    return out


def side_by_side(
    gray: np.ndarray,
    colorized: np.ndarray,
    truth: np.ndarray | None = None,
    *,
    columns: int = 8,
    zoom: int | None = None,
    gap: int = 8,
) -> np.ndarray:
    """One RGB uint8 picture: gray | colorized | truth, each a montage for a stack.

    Parameters
    ----------
    gray : numpy.ndarray
        ``(H, W)`` or ``(N, H, W)``.
    colorized, truth : numpy.ndarray
        RGB, ``gray.shape + (3,)``; ``truth`` may be None.
    columns : int
        Planes per row of a stack's montage.
    zoom : int, optional
        Nearest-neighbour enlargement; default: enough that the picture is
        about 512 pixels high.
    gap : int
        White pixels between the panels.
    """
    panels = [_gray_to_rgb(gray), np.asarray(colorized)]
    if truth is not None:
        panels.append(np.asarray(truth))
    if panels[0].ndim == 4:
        panels = [montage(p, columns, gap=1) for p in panels]
    height = panels[0].shape[0]
    if zoom is None:
        zoom = max(1, 512 // max(height, 1))
    panels = [np.repeat(np.repeat(p, zoom, axis=0), zoom, axis=1) for p in panels]
    spacer = np.full((panels[0].shape[0], gap, 3), 255, dtype=np.uint8)
    pieces = []
    for i, panel in enumerate(panels):
        if i:
            pieces.append(spacer)
        pieces.append(panel.astype(np.uint8, copy=False))
    return np.concatenate(pieces, axis=1)


def _write_image(path: Path, image: np.ndarray) -> Path:
    from .atomic import atomic_write

    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        return atomic_write(path, lambda tmp: tifffile.imwrite(tmp, image))
    import imageio.v3 as iio

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # closed here: see files.colorize_file on a full disk
            iio.imwrite(f, image, extension=path.suffix)

    return atomic_write(path, write)


def write_outputs(out_dir, sample: DemoSample, colorized: np.ndarray) -> list[Path]:
    """Write the gray sample, its colorization and the side-by-side PNG into ``out_dir``.

    A stack is written as TIFF stacks; a single image as PNGs.

    Returns
    -------
    list of pathlib.Path
        The files written, the side-by-side picture last.
    """
    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".tif" if sample.gray.ndim > 2 else ".png"
    paths = [
        _write_image(out_dir / f"{sample.name}_gray{suffix}", sample.gray),
        _write_image(out_dir / f"{sample.name}_colorized{suffix}", colorized),
    ]
    if sample.truth is not None:
        paths.append(_write_image(out_dir / f"{sample.name}_truth{suffix}", sample.truth))
    picture = side_by_side(sample.gray, colorized, sample.truth)
    paths.append(_write_image(out_dir / "side_by_side.png", picture))
    return paths


def run_headless(
    out_dir="napari-colorize-demo",
    model: str = DEMO_MODEL,
    device: str = "auto",
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Colorize the demo sample without a viewer and write the results.

    Parameters
    ----------
    out_dir : path-like
        Folder for the files (created if needed).
    model : str
        Model name or checkpoint path; another installed model is used (and
        said so) when it is missing.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda:0"``...
    log : callable
        Receives one line per step.

    Returns
    -------
    list of pathlib.Path
        As :func:`write_outputs`.
    """
    from .inference import Colorizer

    model, note = pick_model(model)
    if note:
        log(note)
    sample = load_demo_sample()
    if sample.note:
        log(sample.note)
    log(f"colorizing {sample.name} {sample.gray.shape} with {model!r}")
    colorized = Colorizer(model, device=device).colorize(sample.gray)
    paths = write_outputs(out_dir, sample, colorized)
    for path in paths:
        log(f"wrote {path}")
    return paths
