"""Consistency through stacks: ``python -m benchmarks.run --suite temporal``.

Camera paths over scikit-image's colour photographs (:mod:`benchmarks.sequences`:
pan, zoom, a little rotation, an exposure change and a cut) are coloured plane
by plane and with ``temporal=True``, by a colour reference (the truth of each
shot's first frame), a network and 30 hints on the first plane. Reported: the
mean CIEDE2000 of every plane against the truth, the flicker (mean ab change
between a plane and its predecessor warped by the true motion, minus the
truth's own) and the time. The floors of issue 19 are checked at the end.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from . import report
from .any_image import gray_rgb, load_image, score
from .sequences import Sequence, flicker, make_sequence


@dataclass(frozen=True)
class Settings:
    frames: int
    shape: tuple[int, int]
    cut_pairs: tuple[tuple[str, str], ...]
    hint_photos: tuple[str, ...]
    network: str | None
    reference_steps: int | None = None  # fewer fitting steps: a smoke test


FULL = Settings(
    24,
    (192, 256),
    (("astronaut", "coffee"), ("chelsea", "rocket")),
    ("astronaut", "coffee", "chelsea"),
    "beta-punks",
)
QUICK = Settings(6, (64, 96), (("astronaut", "coffee"),), ("chelsea",), None, 40)

#: Number of hints on the first plane
N_HINTS = 30


def _mean_score(rgb: np.ndarray, sequence: Sequence, planes=None) -> float:
    planes = range(len(rgb)) if planes is None else planes
    return float(np.mean([score(rgb[t], sequence.rgb[t]) for t in planes]))


def _timed(gray, **options) -> tuple[np.ndarray, float]:
    import napari_colorize

    start = time.perf_counter()
    rgb = napari_colorize.colorize(gray, device="cpu", **options)
    return rgb, time.perf_counter() - start


def _row(name, sequence, plain, temporal):
    (rgb0, t0), (rgb1, t1) = plain, temporal
    own = flicker(sequence.rgb, sequence)
    return {
        "method": name,
        "sequence": sequence.name,
        "ciede": (_mean_score(rgb0, sequence), _mean_score(rgb1, sequence)),
        "flicker": (flicker(rgb0, sequence) - own, flicker(rgb1, sequence) - own),
        "seconds": (t0, t1),
    }


def first_plane_hints(sequence: Sequence, n: int = N_HINTS, seed: int = 0):
    """``n`` one-pixel hints of the true colours on plane 0 only, as PointHints."""
    from napari_colorize.hints import PointHints

    frames, height, width = sequence.gray.shape
    flat = np.random.default_rng(seed).choice(height * width, size=n, replace=False)
    rows, cols = np.unravel_index(flat, (height, width))
    points = np.stack([np.zeros(n), rows, cols], axis=1).astype(float)
    colors = sequence.rgb[0][rows, cols] / 255.0
    return PointHints(points, colors, 1.0, (frames, height, width))


def measure(settings: Settings) -> dict:
    """Every row of the report."""
    from napari_colorize.guided import ReferenceColorizer

    rows, hint_rows = [], []
    for pair in settings.cut_pairs:
        photos = [load_image(name) for name in pair]
        sequence = make_sequence(photos, list(pair), settings.frames, settings.shape)
        cut = sequence.photo_of.index(1)
        gray_rgbs = np.stack([gray_rgb(g) for g in sequence.gray])
        rows.append(
            {
                "method": "gray",
                "sequence": sequence.name,
                "ciede": (_mean_score(gray_rgbs, sequence),) * 2,
                "flicker": (flicker(gray_rgbs, sequence) - flicker(sequence.rgb, sequence),) * 2,
                "seconds": (0.0, 0.0),
            }
        )
        steps = {} if settings.reference_steps is None else {"steps": settings.reference_steps}
        reference = ReferenceColorizer([sequence.rgb[0], sequence.rgb[cut]], **steps)
        _timed(sequence.gray[:1], model=reference)  # fitted once, outside the timings
        runs = [_timed(sequence.gray, model=reference, temporal=t) for t in (False, True)]
        rows.append(_row("reference", sequence, *runs))
        if settings.network:
            _timed(sequence.gray[:1], model=settings.network)  # loaded once
            runs = [
                _timed(sequence.gray, model=settings.network, temporal=t) for t in (False, True)
            ]
            rows.append(_row(f"network ({settings.network})", sequence, *runs))
    for name in settings.hint_photos:
        sequence = make_sequence([load_image(name)], [name], settings.frames, settings.shape)
        hints = first_plane_hints(sequence)
        later = range(1, len(sequence.rgb))
        gray_rgbs = np.stack([gray_rgb(g) for g in sequence.gray])
        alone, _ = _timed(sequence.gray, model="propagate", hints=hints)
        carried, seconds = _timed(sequence.gray, model="propagate", hints=hints, temporal=True)
        hint_rows.append(
            {
                "sequence": name,
                "first": score(carried[0], sequence.rgb[0]),
                "later": _mean_score(carried, sequence, later),
                "later_alone": _mean_score(alone, sequence, later),
                "gray": _mean_score(gray_rgbs, sequence, later),
                "flicker": flicker(carried, sequence) - flicker(sequence.rgb, sequence),
                "seconds": seconds,
            }
        )
    return {"rows": rows, "hints": hint_rows}


def floors(results: dict) -> list[str]:
    """The issue's floors, one line each, PASS or FAIL."""
    lines = []
    for row in results["rows"]:
        if row["method"] == "gray":
            continue
        (c0, c1), (f0, f1), (t0, t1) = row["ciede"], row["flicker"], row["seconds"]
        ok = f1 <= 0.5 * f0 and c1 <= 1.05 * c0 and t1 <= 3 * t0
        steadier = f"{f1 / f0:.2f}x" if f1 > 0 else "below the truth's own"
        lines.append(
            f"- {'PASS' if ok else 'FAIL'} {row['method']} on {row['sequence']}: flicker "
            f"{steadier} (at most 0.5x), CIEDE2000 {c1 / c0:.2f}x "
            f"(at most 1.05x), time {t1 / t0:.2f}x (at most 3x)"
        )
    for row in results["hints"]:
        ok = row["later"] <= 0.6 * row["gray"] and row["later"] <= 1.5 * row["first"]
        lines.append(
            f"- {'PASS' if ok else 'FAIL'} 30 hints on plane 0 of {row['sequence']}: later planes "
            f"{row['later'] / row['gray']:.2f}x gray's (at most 0.6x), "
            f"{row['later'] / row['first']:.2f}x the first plane's (at most 1.5x)"
        )
    return lines


def format_report(results: dict, settings: Settings, command: str, minutes: float) -> str:
    lines = [
        f"Measured {report.today()} with `{command}` in {minutes:.1f} min on "
        f"{report.machine()}; optical flow: "
        f"{__import__('napari_colorize.temporal', fromlist=['x']).flow_backend()}.",
        "",
        f"Sequences of {settings.frames} frames of {settings.shape[0]}x{settings.shape[1]} "
        "(pan, zoom, 3 degree turn, 15 % darker; a cut halfway to the second photo). "
        "Flicker: mean ab change from the previous plane warped by the true motion, minus "
        "the truth's own (ab units; lower is steadier). Reference: the truth of each shot's "
        "first frame, fitted once outside the timings.",
        "",
        "| method | sequence | CIEDE2000 per plane | with temporal | flicker | with temporal "
        "| seconds | with temporal |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        (c0, c1), (f0, f1), (t0, t1) = row["ciede"], row["flicker"], row["seconds"]
        lines.append(
            f"| {row['method']} | {row['sequence']} | {c0:.2f} | {c1:.2f} | {f0:.3f} | "
            f"{f1:.3f} | {t0:.2f} | {t1:.2f} |"
        )
    lines += [
        "",
        f"{N_HINTS} one-pixel hints of the true colours on the first plane only, "
        "`model='propagate', temporal=True` (one shot, no cut):",
        "",
        "| sequence | first plane | later planes | later, without temporal | gray (later) "
        "| flicker | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["hints"]:
        lines.append(
            f"| {row['sequence']} | {row['first']:.2f} | {row['later']:.2f} | "
            f"{row['later_alone']:.2f} | {row['gray']:.2f} | {row['flicker']:.3f} | "
            f"{row['seconds']:.2f} |"
        )
    lines += ["", "Floors (issue 19):", "", *floors(results)]
    return "\n".join(lines)


def main(args) -> int:
    """Run the suite, print it and (with ``args.write``) write its docs section."""
    settings = QUICK if getattr(args, "quick", False) else FULL
    print(f"machine: {report.machine()}")
    start = time.perf_counter()
    results = measure(settings)
    minutes = (time.perf_counter() - start) / 60
    text = format_report(results, settings, getattr(args, "command", ""), minutes)
    print()
    print(text)
    if getattr(args, "write", False):
        path = report.update_section("temporal", text, "Consistency through stacks")
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    from .run import main as run_main

    sys.exit(run_main(["--suite", "temporal", *sys.argv[1:]]))
