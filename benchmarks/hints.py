"""What colour hints are worth, and how fast live mode answers a point edit.

Quality
    ``ciede2000_fg`` (and the other report keys) of the hint-aware punks model
    on punks:test given 0, 1, 5 and 20 hints per image sampled from the truth
    (:func:`napari_colorize.evaluation.evaluate_hints`: one pixel's exact colour
    each by default, ``--radius 1`` for Zhang et al.'s 3x3 patch means; seed 0, so
    every run and every model sees the same hints), next to ``beta-punks``
    (no hints). The target of issue 10: the error falls as hints grow.

Latency (1024x1024 gray image, this CPU)
    *library*: from a point edit (one point recoloured) to the RGB result:
    points -> hint map (:func:`~napari_colorize.hints.points_to_hints`) and a
    :class:`~napari_colorize.inference.Colorizer` run on the plane, as the
    widget's worker does; for the hint-aware punks model at its own working
    size and at 256 px, and for the SIGGRAPH17 architecture (random weights:
    the published file cannot be fetched here; its speed does not depend on
    them) at 256 px.
    *widget*: in a headless napari viewer with the Colorize widget in live mode,
    from setting a point's colour to the output layer holding the new result;
    this includes the 100 ms debounce and the Qt event loop. Needs an X server
    (run under ``xvfb-run``) or ``QT_QPA_PLATFORM=offscreen``; skipped if napari
    cannot start. Target: under 1 s.

Run: ``python -m benchmarks.hints [--hints-model NAME|PATH] [--hints-baseline
NAME|PATH] [--hints-repeats N] [--no-hints-quality] [--no-widget] [--no-write]``
(``python -m benchmarks.run --suite hints``); writes the ``hints`` section of
``docs/benchmarks.md``. ``--quick``: 0 and 5 uniform hints, nothing pasted, two
library edits, no widget and no SIGGRAPH17 row.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time

import numpy as np

from . import report

HINT_COUNTS = (0, 1, 5, 20)
KEYS = ("ciede2000_fg", "ciede2000", "psnr", "auc")
SIZE = 1024
#: Five hint points on the 1024^2 image: (row, col), RGBA.
POINTS = np.array([[200, 300], [512, 512], [800, 200], [300, 800], [700, 700]], dtype=float)
COLORS = np.array(
    [[0.9, 0.2, 0.2, 1], [0.2, 0.6, 0.9, 1], [0.3, 0.8, 0.3, 1], [0.9, 0.8, 0.2, 1],
     [0.7, 0.3, 0.8, 1]]
)  # fmt: skip
POINT_SIZE = 40.0


def gray_image(size: int = SIZE) -> np.ndarray:
    """A smooth gray uint8 test image with some structure (no file needed)."""
    y, x = np.mgrid[0:size, 0:size] / size
    img = 0.5 + 0.25 * np.sin(6 * np.pi * x) * np.cos(4 * np.pi * y) + 0.2 * (x - y)
    return np.clip(img * 255, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------ quality


def pasted_hints_model(model):
    """``(module, chroma_size)``: ``model``'s own colours with the hinted pixels pasted.

    The trivial way to follow hints, to tell what a hint-aware model adds around them.
    """
    import torch

    from napari_colorize.registry import load_model

    class PastedHints(torch.nn.Module):
        accepts_hints = True

        def __init__(self, prior):
            super().__init__()
            self.prior = prior

        def forward(self, x, hints=None):
            ab = self.prior(x)
            if hints is None:
                return ab
            return torch.where(hints[:, 2:3] > 0, hints[:, :2].to(ab.dtype), ab)

    prior, meta = load_model(model)
    return PastedHints(prior.eval()), (meta.extra or {}).get("chroma_size")


#: Hint positions: uniform, or all where the model alone is wrong (in proportion to its error).
FOCUS = {"uniform": 0.0, "where wrong": 1.0}


def quality(
    model, baseline, data="punks:test", seed=0, radius=1, *, counts=HINT_COUNTS, focus=FOCUS,
    paste=True,
) -> dict:  # fmt: skip
    """``{"hints": {(placement, n): report}, "paste": {...}, "baseline": report or None}``.

    ``paste``: ``baseline`` with the hinted pixels set to the hints' colours,
    under the same hints, to tell what the model adds beyond the hinted pixels
    (left out with ``paste=False``). ``counts`` and ``focus`` (placement name ->
    focus) choose the hints.
    """
    from napari_colorize.evaluation import evaluate, evaluate_hints

    out = {"hints": {}, "paste": {}, "baseline": None}
    paste, paste_size = pasted_hints_model(baseline) if baseline and paste else (None, None)
    placements = focus
    for placement, focus in placements.items():
        for n in counts:
            t0 = time.perf_counter()
            out["hints"][placement, n] = evaluate_hints(
                model, n, data, seed=seed, radius=radius, focus=focus
            )
            fg = out["hints"][placement, n]["ciede2000_fg"]
            line = f"{model} with {n:2d} hints ({placement}): ciede2000_fg {fg:.3f}"
            if paste is not None and n:
                # the same hints (the frozen prior of a local-hints model is the
                # baseline, so "where wrong" picks the same pixels too)
                r = evaluate_hints(paste, n, data, seed=seed, radius=radius, focus=focus,
                                   chroma_size=paste_size)  # fmt: skip
                out["paste"][placement, n] = r
                line += f"; {baseline} + pasted hints {r['ciede2000_fg']:.3f}"
            print(line + f" ({time.perf_counter() - t0:.0f} s)")
    if baseline:
        try:
            out["baseline"] = evaluate(baseline, data=data, device="cpu")
            print(f"{baseline}: ciede2000_fg {out['baseline']['ciede2000_fg']:.3f}")
        except Exception as exc:  # a missing baseline leaves its row out
            print(f"skipping the baseline {baseline}: {exc}")
    return out


# ------------------------------------------------------------------ latency


def _edit(colors: np.ndarray, i: int) -> np.ndarray:
    """Recolour point 0 (a new hue each time), as a user picking another colour."""
    colors = colors.copy()
    angle = 2 * np.pi * ((i * 0.37) % 1.0)
    colors[0, :3] = 0.5 + 0.4 * np.cos(angle - 2 * np.pi * np.arange(3) / 3)
    return colors


def library_latency(model, chroma_size, repeats: int, image=None) -> list[float]:
    """Seconds from a point edit to the RGB result, through the library, per repeat."""
    from napari_colorize.hints import points_to_hints
    from napari_colorize.inference import Colorizer

    image = gray_image() if image is None else image
    times = []
    colors = COLORS
    for i in range(repeats + 1):  # the first run loads the model: not timed
        colors = _edit(colors, i)
        t0 = time.perf_counter()
        hints = points_to_hints(POINTS, colors, POINT_SIZE, image.shape)
        colorizer = Colorizer(model, device="cpu", chroma_size=chroma_size, hints=hints)
        colorizer.colorize(image)
        if i:
            times.append(time.perf_counter() - t0)
    return times


def widget_latency(model, repeats: int) -> list[float] | None:
    """Seconds from a point recoloured to the updated output layer, in live mode."""
    try:
        import napari
        from qtpy.QtWidgets import QApplication

        from napari_colorize.widgets.colorize import ColorizeWidget
    except Exception as exc:
        print(f"skipping the widget latency: {exc}")
        return None
    try:
        viewer = napari.Viewer(show=False)
    except Exception as exc:
        print(f"skipping the widget latency (no display? run under xvfb-run): {exc}")
        return None
    times = []
    try:
        widget = ColorizeWidget(viewer, probe=False)
        widget.set_model(str(model))
        widget.device.value = "auto"
        image = viewer.add_image(gray_image(), name="photo")
        points = viewer.add_points(POINTS, face_color=COLORS, size=POINT_SIZE, name="hints")
        widget.reset_choices()  # a docked widget gets this from napari
        widget.image.value = image
        widget.hints.value = points
        app = QApplication.instance()

        def wait_applied(n, timeout=120.0):
            end = time.perf_counter() + timeout
            while widget.live_counts["applied"] < n:
                if time.perf_counter() > end:
                    raise TimeoutError(f"no live result after {timeout} s: {widget.status.value}")
                app.processEvents()
                time.sleep(0.002)

        wait_applied(1)  # the first run loads the model: not timed
        colors = np.asarray(points.face_color)
        for i in range(repeats):
            colors = _edit(colors, i + 1)
            t0 = time.perf_counter()
            points.face_color = colors
            wait_applied(i + 2)
            times.append(time.perf_counter() - t0)
            app.processEvents()
    finally:
        viewer.close()
    return times


def _stats(times) -> str:
    if not times:
        return "-"
    ms = [1000 * t for t in times]
    return f"{statistics.median(ms):,.0f} ms ({min(ms):,.0f}–{max(ms):,.0f})"


# ------------------------------------------------------------------ report


def section(results: dict, args, loads) -> str:
    lines = [
        f"{report.today()}, {report.machine()}. Load average (1/5/15 min) at the start "
        f"{loads[0]}, at the end {loads[1]}: other jobs shared the 2 cores. "
        f"Command: `{args.command}`.",
        "",
    ]
    q = results.get("quality")
    if q:
        lines += [
            "### What hints are worth",
            "",
            "punks:test (1,000 images); hints sampled from the true colours "
            + (
                "(each the exact colour of one pixel, as a user picks it on pixel art"
                if args.radius == 0
                else f"(each the mean colour of a {2 * args.radius + 1}² patch"
            )
            + ", seed 0), the same for every model. "
            f"`{args.model}` was trained with the `beta-punks-hints` preset "
            "(`napari-colorize train --preset beta-punks-hints`).",
            "",
            "*where wrong*: every hint drawn at a pixel with probability proportional to "
            "the model's own error there without hints, as a user puts hints where the "
            "colours are wrong. *the hinted pixels pasted*: the baseline's colours with "
            "only the hinted pixels set to the hints' (the same hints): the difference "
            "is what the model does around its hints.",
            "",
            "| model | hint positions | hints per image | " + " | ".join(KEYS) + " |",
            "| --- | --- | ---: | " + " | ".join("---:" for _ in KEYS) + " |",
        ]
        if q["baseline"] is not None:
            b = q["baseline"]
            lines.append(f"| {args.baseline} (no hint input) | – | – | "
                         + " | ".join(f"{b[k]:.3f}" for k in KEYS) + " |")  # fmt: skip
        for (placement, n), r in q["hints"].items():
            lines.append(f"| {args.model} | {placement} | {n} | "
                         + " | ".join(f"{r[k]:.3f}" for k in KEYS) + " |")  # fmt: skip
            pasted = q.get("paste", {}).get((placement, n))
            if pasted is not None:
                lines.append(f"| {args.baseline} + the hinted pixels pasted | {placement} | {n} | "
                             + " | ".join(f"{pasted[k]:.3f}" for k in KEYS) + " |")  # fmt: skip
        lines.append("")
        for placement in dict.fromkeys(p for p, _ in q["hints"]):
            errs = [r["ciede2000_fg"] for (p, _), r in q["hints"].items() if p == placement]
            falls = all(a > b for a, b in itertools.pairwise(errs))
            lines.append(
                f"- {placement}: ciede2000_fg falls as hints grow "
                f"({' > '.join(f'{e:.3f}' for e in errs)}): "
                + ("**met**" if falls else "**not met**")
            )
        lines.append("")
    lat = results.get("latency")
    if lat:
        lines += [
            "### Live mode latency, 1024x1024",
            "",
            "From a point edit (one of five hint points recoloured) to the new RGB plane, "
            f"median (min–max) of {args.repeats} edits after a warm-up, CPU. Library: "
            "points -> hint map + `Colorizer` on the plane (what the widget's worker does). "
            "Widget: a headless napari viewer with the Colorize widget in live mode, from "
            "`points.face_color = ...` to the output layer holding the result, including the "
            "100 ms debounce.",
            "",
            "| model | working size | library | widget |",
            "| --- | --- | ---: | ---: |",
        ]
        for row in lat:
            lines.append(f"| {row['model']} | {row['size']} | {_stats(row['library'])} | "
                         f"{_stats(row.get('widget'))} |")  # fmt: skip
        widget_rows = [r for r in lat if r.get("widget")]
        if widget_rows:
            med = statistics.median(widget_rows[0]["widget"])
            lines += [
                "",
                f"- widget latency of {widget_rows[0]['model']} under 1 s: "
                + ("**met**" if med < 1.0 else "**not met**")
                + f" ({1000 * med:,.0f} ms)",
            ]
    return "\n".join(lines)


#: The smoke test (``--quick``): hint counts, placements, timed edits.
QUICK_COUNTS = (0, 5)
QUICK_FOCUS = ("uniform",)
QUICK_REPEATS = 2


def add_arguments(parser) -> None:
    group = parser.add_argument_group("hints")
    group.add_argument("--hints-model", default="beta-punks-hints",
                       help="hints suite: hint-aware model (name or file)")  # fmt: skip
    group.add_argument("--hints-baseline", default="beta-punks",
                       help="hints suite: model without hints to compare")  # fmt: skip
    group.add_argument("--hints-repeats", type=int, default=7,
                       help="hints suite: timed edits per latency row")  # fmt: skip
    group.add_argument("--hints-radius", type=int, default=0,
                       help="hints suite: hint patch half-width (0: one pixel's colour; "
                       "Zhang et al.: up to 4)")  # fmt: skip
    group.add_argument("--hints-threads", type=int, default=1,
                       help="hints suite: torch CPU threads (1: fastest on a loaded, "
                       "shared CPU)")  # fmt: skip
    group.add_argument("--no-hints-quality", action="store_true",
                       help="hints suite: skip the punks:test scores")  # fmt: skip
    group.add_argument("--no-widget", action="store_true",
                       help="hints suite: skip the napari widget latency")  # fmt: skip
    group.add_argument("--no-siggraph", action="store_true",
                       help="hints suite: skip the SIGGRAPH17 latency row")  # fmt: skip


def main(args) -> int:
    """Run the suite (``args.quick``: its smoke test), print it and write its docs section."""
    quick = getattr(args, "quick", False)
    args = argparse.Namespace(
        model=args.hints_model, baseline=args.hints_baseline, radius=args.hints_radius,
        repeats=QUICK_REPEATS if quick else args.hints_repeats, threads=args.hints_threads,
        no_quality=args.no_hints_quality, no_widget=args.no_widget or quick,
        no_siggraph=args.no_siggraph or quick, write=args.write, command=args.command,
        counts=QUICK_COUNTS if quick else HINT_COUNTS,
        focus={k: FOCUS[k] for k in QUICK_FOCUS} if quick else FOCUS, paste=not quick,
    )  # fmt: skip
    import torch

    from napari_colorize.checkpoint import read_metadata
    from napari_colorize.registry import build_model, resolve_weights

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(args.threads, report.usable_cpus())))
    start_load = report.load()
    results = {}
    if not args.no_quality:
        results["quality"] = quality(
            args.model, args.baseline, radius=args.radius, counts=args.counts,
            focus=args.focus, paste=args.paste,
        )  # fmt: skip

    path = (
        resolve_weights(args.model) if not str(args.model).endswith(".safetensors") else args.model
    )
    own = (read_metadata(path).extra or {}).get("chroma_size")
    rows = [{"model": args.model, "size": f"{own} px (its own)", "chroma": "auto"},
            {"model": args.model, "size": "256 px", "chroma": 256}]  # fmt: skip
    for row in rows:
        row["library"] = library_latency(args.model, row["chroma"], args.repeats)
        print(f"library {row['model']} @ {row['size']}: {_stats(row['library'])}")
    if not args.no_widget:
        rows[0]["widget"] = widget_latency(args.model, args.repeats)
        print(f"widget {rows[0]['model']} @ {rows[0]['size']}: {_stats(rows[0]['widget'])}")
    if not args.no_siggraph:
        torch.manual_seed(0)
        sig = build_model("siggraph17").eval()
        row = {"model": "siggraph17 (architecture, random weights)", "size": "256 px"}
        row["library"] = library_latency(sig, 256, max(3, args.repeats // 2))
        print(f"library siggraph17 @ 256: {_stats(row['library'])}")
        rows.append(row)
    results["latency"] = rows
    torch.set_num_threads(threads)
    text = section(results, args, (start_load, report.load()))
    print(text)
    if args.write:
        report.update_section("hints", text, "Colour hints")
    return 0


if __name__ == "__main__":
    from .run import run_suite

    sys.exit(run_suite("hints"))
