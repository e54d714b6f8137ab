"""Colour on any image, offline: a colour reference, hints and trained models on real images.

Images: scikit-image's astronaut, coffee, chelsea and rocket (photos),
immunohistochemistry (a stained section) and retina (a fundus photo, halved in
size first). Every figure is the mean CIEDE2000 (:func:`napari_colorize.metrics.ciede2000`)
between the truth and what the user gets: the RGB uint8 that
:func:`napari_colorize.colorize` returns for the gray image
(:func:`napari_colorize.sample_data.rgb_to_gray`), converted to Lab.

Held-out halves
    reference = the left half (RGB), target = the gray right half, truth =
    the right half. Rows: gray (ab = 0), the lookup table of the reference's
    mean ab per lightness bin (:class:`~napari_colorize.models.lightness_table.LightnessTable`,
    colorized at full resolution), the reference method
    (:class:`~napari_colorize.guided.ReferenceColorizer`, as
    ``colorize(gray, reference=left)`` runs it) and its time.
Time per megapixel
    The reference method on the full-size retina: left half (1411 x 705) as
    the reference, the right half (about 1 megapixel) as the target.
Reference lacks the target's colours
    Cross pairs: the left half of one image as the reference for the right
    half of another (photo -> tissue or fundus and back); the error as a
    multiple of gray's.
Hints
    1-pixel hints of the true colour at uniformly random positions (seeds 0,
    1, ...) on the whole photos, given to ``propagate`` (no network), to
    ``beta-punks`` (the network predicts, the hints correct it locally) and to
    ``beta-punks-hints`` (its learned hint branch), next to the mean colour
    of the hints painted everywhere.
Live mode
    Median time of ``colorize(gray, model="propagate", hints=PointHints(...))``
    on a 1024 x 1024 image (20 hints, each run with one hint recoloured),
    after a warm-up.
Trained models
    ``beta`` with the lightness lookup table, trained as the Training widget
    trains from a layer (:func:`benchmarks.common.train_beta`) on the top
    80 % of the left half, validated on its bottom 20 %, and colorized at full
    resolution on the right half.

Run: ``python -m benchmarks.run --suite any-image [--quick] [--no-write]``, or
``python -m benchmarks.any_image [--quick]``; writes the ``any-image`` section of
docs/benchmarks.md (not with ``--quick``).
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time

import numpy as np

from . import report
from .any_image_report import format_report

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
OTHERS = ("immunohistochemistry", "retina")
#: (reference image, target image): the reference lacks (some of) the target's colours.
CROSS_PAIRS = (
    ("immunohistochemistry", "astronaut"),
    ("retina", "chelsea"),
    ("coffee", "immunohistochemistry"),
    ("astronaut", "immunohistochemistry"),
    ("chelsea", "rocket"),
    ("immunohistochemistry", "retina"),
)
HINT_COUNTS = (5, 20, 100)
HINT_METHODS = ("propagate", "mean of hints", "beta-punks + hints", "beta-punks-hints")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What one run measures: the full suite or its quick smoke test."""

    images: tuple[str, ...] = PHOTOS + OTHERS
    cross_pairs: tuple[tuple[str, str], ...] = CROSS_PAIRS
    hint_photos: tuple[str, ...] = PHOTOS
    hint_counts: tuple[int, ...] = HINT_COUNTS
    trials: int = 3
    #: Centre crop (rows, columns) of every image; None keeps the whole image.
    crop: tuple[int, int] | None = None
    #: Optimizer steps of the reference method; None: its default.
    reference_steps: int | None = None
    megapixel: bool = True
    live_size: int = 1024
    live_runs: int = 7
    train_images: tuple[str, ...] = OTHERS
    train_steps: int = 600


FULL = Settings()
QUICK = Settings(
    images=("astronaut", "immunohistochemistry"),
    cross_pairs=(("immunohistochemistry", "astronaut"),),
    hint_photos=("astronaut",),
    hint_counts=(5, 20),
    trials=1,
    crop=(96, 192),
    reference_steps=20,
    megapixel=False,
    live_size=128,
    live_runs=2,
    train_images=("immunohistochemistry",),
    train_steps=2,
)


def add_arguments(parser) -> None:
    parser.add_argument(
        "--any-image-train-steps",
        type=int,
        default=None,
        metavar="N",
        help="any-image suite: training steps of the trained-model rows (0: leave them out; "
        f"default {FULL.train_steps}, {QUICK.train_steps} with --quick)",
    )


# ------------------------------------------------------------------ images


def load_image(name: str, crop: tuple[int, int] | None = None) -> np.ndarray:
    """``skimage.data.<name>()`` as RGB uint8, the retina at half size, optionally cropped.

    Parameters
    ----------
    name : str
        A colour sample of ``skimage.data``.
    crop : (int, int), optional
        Rows and columns of a centre crop.
    """
    import skimage.data

    rgb = getattr(skimage.data, name)()[..., :3]
    if name == "retina":
        h, w = (n // 2 * 2 for n in rgb.shape[:2])
        rgb = rgb[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
        rgb = np.round(rgb).astype(np.uint8)
    if crop is not None:
        rows, cols = (min(c, n) for c, n in zip(crop, rgb.shape[:2]))
        r0, c0 = (rgb.shape[0] - rows) // 2, (rgb.shape[1] - cols) // 2
        rgb = rgb[r0 : r0 + rows, c0 : c0 + cols]
    return np.ascontiguousarray(rgb)


def halves(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left and right half of an RGB image."""
    w = rgb.shape[1] // 2
    return np.ascontiguousarray(rgb[:, :w]), np.ascontiguousarray(rgb[:, w:])


def gray_of(rgb: np.ndarray) -> np.ndarray:
    """The gray image a user would colorize: each pixel's neutral gray of its CIE lightness."""
    from napari_colorize.sample_data import rgb_to_gray

    return rgb_to_gray(rgb)


def score(rgb_pred: np.ndarray, rgb_true: np.ndarray) -> float:
    """Mean CIEDE2000 between two images.

    Parameters
    ----------
    rgb_pred, rgb_true : numpy.ndarray
        RGB uint8 ``(H, W, 3)``: what the user gets, and the truth.

    Returns
    -------
    float
        The mean over pixels, in CIEDE2000 units (0: the same colours).
    """
    from napari_colorize.color import rgb_to_lab
    from napari_colorize.metrics import ciede2000

    return float(ciede2000(rgb_to_lab(rgb_pred)[None], rgb_to_lab(rgb_true)[None]))


def gray_rgb(gray: np.ndarray) -> np.ndarray:
    """The gray image as RGB: what a user has without colour."""
    return np.repeat(gray[..., None], 3, axis=-1)


def with_ab(gray: np.ndarray, ab) -> np.ndarray:
    """RGB uint8 of the gray image's L with ``ab`` (``(2,)`` or ``(H, W, 2)``)."""
    from napari_colorize.color import gray_to_l, lab_to_rgb

    lab = np.empty((*gray.shape, 3), np.float32)
    lab[..., 0] = gray_to_l(gray / 255.0)
    lab[..., 1:] = ab
    return np.round(lab_to_rgb(lab) * 255.0).astype(np.uint8)


# ------------------------------------------------------------------ methods


def lookup_table(reference):
    """The lightness lookup table of ``reference`` (RGB ``(..., H, W, 3)`` or a list of them).

    A torch module: the mean ab of the reference's pixels per unit of L.
    """
    from napari_colorize.color import ab_to_net, l_to_net, rgb_to_lab
    from napari_colorize.models.lightness_table import LightnessTable, LightnessTableFit

    fit = LightnessTableFit()
    for rgb in reference if isinstance(reference, (list, tuple)) else [reference]:
        lab = np.moveaxis(rgb_to_lab(rgb), -1, -3)  # (..., 3, H, W)
        fit.add(l_to_net(lab[..., :1, :, :]), ab_to_net(lab[..., 1:, :, :]))
    return LightnessTable().set_table(fit.table()).eval()


def colorize_module(gray: np.ndarray, module, **options) -> np.ndarray:
    """``colorize(gray, model=module)`` at full resolution (a table or a trained network)."""
    import napari_colorize

    return napari_colorize.colorize(gray, model=module, device="cpu", chroma_size=None, **options)


def reference_method(reference: np.ndarray, steps: int | None = None):
    """The reference method as ``colorize(gray, reference=...)`` builds it (``steps``: fewer)."""
    from napari_colorize.guided import ReferenceColorizer

    return ReferenceColorizer(reference, **({} if steps is None else {"steps": steps}))


def timed_colorize(gray: np.ndarray, model, **options) -> tuple[np.ndarray, float]:
    """``(rgb, seconds)`` of one ``colorize`` call."""
    import napari_colorize

    start = time.perf_counter()
    rgb = napari_colorize.colorize(gray, model=model, **options)
    return rgb, time.perf_counter() - start


def random_hints(rgb: np.ndarray, n: int, seed: int):
    """1-pixel hints of the true colours at uniformly random pixels.

    Parameters
    ----------
    rgb : numpy.ndarray
        The truth, RGB uint8 ``(H, W, 3)``.
    n : int
        Number of hints (distinct pixels).
    seed : int
        Seed of the positions: the same seed gives the same hints.

    Returns
    -------
    napari_colorize.hints.PointHints
        What ``colorize(..., hints=)`` takes, as a user's points would be.
    """
    from napari_colorize.hints import PointHints

    h, w = rgb.shape[:2]
    flat = np.random.default_rng(seed).choice(h * w, size=n, replace=False)
    points = np.stack(np.unravel_index(flat, (h, w)), axis=1).astype(float)
    colors = rgb.reshape(-1, 3)[flat] / 255.0
    return PointHints(points, colors, 1.0, (h, w))


def mean_of_hints(gray: np.ndarray, hints) -> np.ndarray:
    """The hints' mean ab painted everywhere (RGB uint8)."""
    from napari_colorize.color import AB_SCALE

    maps = hints.plane(())
    mask = maps[..., 2] > 0
    return with_ab(gray, maps[mask, :2].mean(axis=0) * AB_SCALE)


# ------------------------------------------------------------------ measurements


def held_out(name: str, settings: Settings) -> dict:
    """Gray, lookup table and reference method on one image's right half."""
    left, right = halves(load_image(name, settings.crop))
    gray = gray_of(right)
    method = reference_method(left, settings.reference_steps)
    rgb, seconds = timed_colorize(gray, method)
    return {
        "image": name,
        "shape": gray.shape,
        "gray": score(gray_rgb(gray), right),
        "table": score(colorize_module(gray, lookup_table(left)), right),
        "reference": score(rgb, right),
        "coverage": method.last_coverage,
        "seconds": seconds,
        "megapixels": gray.size / 1e6,
    }


def megapixel_case(settings: Settings) -> dict:
    """The reference method's time on the full-size retina's right half (about 1 megapixel)."""
    import skimage.data

    left, right = halves(skimage.data.retina()[..., :3])
    gray = gray_of(right)
    method = reference_method(left, settings.reference_steps)
    rgb, seconds = timed_colorize(gray, method)
    return {"shape": gray.shape, "reference_shape": left.shape[:2], "seconds": seconds,
            "megapixels": gray.size / 1e6, "error": score(rgb, right),
            "gray": score(gray_rgb(gray), right),
            "load": report.load()}  # fmt: skip


def cross_pair(ref_name: str, target_name: str, settings: Settings) -> dict:
    """The reference method with another image's left half as the reference."""
    left = halves(load_image(ref_name, settings.crop))[0]
    right = halves(load_image(target_name, settings.crop))[1]
    gray = gray_of(right)
    method = reference_method(left, settings.reference_steps)
    rgb, _ = timed_colorize(gray, method)
    error, gray_error = score(rgb, right), score(gray_rgb(gray), right)
    return {"reference": ref_name, "target": target_name, "error": error, "gray": gray_error,
            "ratio": error / gray_error, "coverage": method.last_coverage}  # fmt: skip


def hint_scores(settings: Settings) -> dict:
    """``{(method, n): [score per photo and trial]}``, and gray's under ``("gray", 0)``."""
    out: dict[tuple[str, int], list[float]] = {("gray", 0): []}
    for name in settings.hint_photos:
        rgb = load_image(name, settings.crop)
        gray = gray_of(rgb)
        out["gray", 0].append(score(gray_rgb(gray), rgb))
        for n in settings.hint_counts:
            for seed in range(settings.trials):
                hints = random_hints(rgb, n, seed)
                results = {
                    "propagate": timed_colorize(gray, "propagate", hints=hints)[0],
                    "mean of hints": mean_of_hints(gray, hints),
                    "beta-punks + hints": timed_colorize(gray, "beta-punks", hints=hints)[0],
                    "beta-punks-hints": timed_colorize(gray, "beta-punks-hints", hints=hints)[0],
                }
                for method, result in results.items():
                    out.setdefault((method, n), []).append(score(result, rgb))
    return out


def live_latency(settings: Settings) -> dict:
    """Median seconds of ``colorize(model="propagate", hints=...)`` at ``live_size``², 20 hints."""
    from napari_colorize.hints import PointHints

    size = settings.live_size
    rgb = load_image("astronaut")
    if rgb.shape[0] != size:
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        rgb = x[0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy()
    gray = gray_of(rgb)
    base = random_hints(rgb, 20, seed=0)
    points = np.array([d.center for d in base.discs])
    colors = np.array([rgb[int(r), int(c)] / 255.0 for r, c in points])
    times = []
    for i in range(settings.live_runs + 1):  # the first run warms up: not counted
        colors[0] = 0.5 + 0.4 * np.cos(2 * np.pi * (i * 0.37 + np.arange(3) / 3))
        hints = PointHints(points, colors, 1.0, gray.shape)
        _, seconds = timed_colorize(gray, "propagate", hints=hints)
        if i:
            times.append(seconds)
    return {"size": size, "median": statistics.median(times), "min": min(times),
            "max": max(times), "runs": len(times), "load": report.load()}  # fmt: skip


def trained(name: str, steps: int, settings: Settings) -> dict:
    """beta + lookup table trained on the top of the left half, scored on the right half."""
    from .common import train_beta

    left, right = halves(load_image(name, settings.crop))
    cut = round(left.shape[0] * 0.8)
    model, result, seconds = train_beta(left[:cut], left[cut:], table=True, steps=steps, seed=0)
    gray = gray_of(right)
    return {
        "image": name,
        "gray": score(gray_rgb(gray), right),
        "beta + table": score(colorize_module(gray, model), right),
        "its table": score(colorize_module(gray, _table_of(model)), right),
        "train_s": seconds,
        "steps": result.step,
        "residual_scale": float(model.lightness_table.residual_scale),
    }


def _table_of(model):
    from napari_colorize.models.lightness_table import LightnessTable

    return LightnessTable().set_table(model.lightness_table.table.cpu().numpy()).eval()


# ------------------------------------------------------------------ the suite


def warm_up() -> None:
    """Import and run every method once on a tiny image, so that no timing includes imports."""
    rgb = load_image("astronaut", (32, 64))
    left, right = halves(rgb)
    gray = gray_of(right)
    timed_colorize(gray, reference_method(left, steps=2))
    timed_colorize(gray, "propagate", hints=random_hints(right, 3, seed=0))


def measure(settings: Settings, train_steps: int | None = None, log=print) -> dict:
    """Every measurement of the suite.

    Parameters
    ----------
    settings : Settings
        :data:`FULL` or :data:`QUICK` (or a variant of them).
    train_steps : int, optional
        Steps of the trained-model rows (0: none); default ``settings.train_steps``.
    log : callable
        Gets one line per measurement as it finishes.

    Returns
    -------
    dict
        ``held_out``, ``megapixel``, ``cross``, ``hints``, ``live`` and ``trained``,
        as :func:`benchmarks.any_image_report.format_report` reads them.
    """
    steps = settings.train_steps if train_steps is None else train_steps
    warm_up()
    results: dict = {"held_out": [], "cross": [], "trained": []}
    for name in settings.images:
        row = held_out(name, settings)
        results["held_out"].append(row)
        log(f"{name:22s} gray {row['gray']:6.2f}  table {row['table']:6.2f}  reference "
            f"{row['reference']:6.2f}  colour kept {row['coverage']:.2f}  "
            f"{row['seconds']:.1f} s")  # fmt: skip
    results["megapixel"] = megapixel_case(settings) if settings.megapixel else None
    if results["megapixel"]:
        r = results["megapixel"]
        log(f"reference on {r['megapixels']:.2f} MP: {r['seconds']:.1f} s")
    for ref_name, target_name in settings.cross_pairs:
        row = cross_pair(ref_name, target_name, settings)
        results["cross"].append(row)
        log(f"{ref_name} -> {target_name}: {row['error']:.2f} = {row['ratio']:.2f} x gray")
    results["hints"] = hint_scores(settings)
    for (method, n), values in results["hints"].items():
        log(f"{method:20s} {n:3d} hints: {np.mean(values):.2f}")
    results["live"] = live_latency(settings)
    log(f"live mode at {results['live']['size']}²: {results['live']['median']:.3f} s")
    for name in settings.train_images if steps > 0 else ():
        row = trained(name, steps, settings)
        results["trained"].append(row)
        log(f"{name}: beta + table {row['beta + table']:.2f} ({row['train_s']:.0f} s)")
    return results


def main(args) -> int:
    """Run the suite (``args.quick``: its smoke test), print it, and write its section.

    The section of docs/benchmarks.md is written only with ``args.write``.
    """
    settings = QUICK if getattr(args, "quick", False) else FULL
    steps = getattr(args, "any_image_train_steps", None)
    print(f"machine: {report.machine()}")
    start = time.perf_counter()
    results = measure(settings, steps)
    minutes = (time.perf_counter() - start) / 60
    text = format_report(results, settings, getattr(args, "command", ""), minutes)
    print()
    print(text)
    if getattr(args, "write", False):
        path = report.update_section("any-image", text, "Colour on any image")
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    from .run import main as run_main

    sys.exit(run_main(["--suite", "any-image", *sys.argv[1:]]))
