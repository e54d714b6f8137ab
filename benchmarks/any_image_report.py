"""The any-image suite's floors (issue 16) and its section of docs/benchmarks.md."""

from __future__ import annotations

import numpy as np

from . import report

#: The reference method's error at most this multiple of the lookup table's, per image.
REFERENCE_VS_TABLE = 0.85
#: At most this many seconds for a megapixel image.
SECONDS_PER_MP = 15.0
#: With a reference that lacks the target's colours, at most this multiple of gray's error.
CROSS_VS_GRAY = 1.15
#: ``propagate`` with this many hints: at most this mean error on the photos.
PROPAGATE_FLOORS = {20: 6.5, 100: 4.5}
#: Live mode at 1024²: a re-colorization within this many seconds.
LIVE_SECONDS = 0.5


def verdict(ok: bool) -> str:
    """``"met"``, or a bold ``"NOT met"``."""
    return "met" if ok else "**NOT met**"


def _held_out(rows) -> list[str]:
    lines = [
        "| image (target size) | gray | lookup table | reference | reference vs table "
        "| colour kept | time (s) | s/MP |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        ratio = r["reference"] / r["table"]
        h, w = r["shape"]
        lines.append(
            f"| {r['image']} ({h}×{w}) | {r['gray']:.2f} | {r['table']:.2f} | "
            f"{r['reference']:.2f} | {_percent(ratio)} | "
            f"{r['coverage']:.2f} | {r['seconds']:.1f} | {r['seconds'] / r['megapixels']:.0f} |"
        )
    for label, group in [
        *_groups(rows),
        ("all (floor: " + _percent(REFERENCE_VS_TABLE) + ")", rows),
    ]:
        mean = {k: float(np.mean([r[k] for r in group])) for k in ("gray", "table", "reference")}
        ratio = mean["reference"] / mean["table"]
        lines.append(
            f"| *mean, {label}* | {mean['gray']:.2f} | {mean['table']:.2f} | "
            f"{mean['reference']:.2f} | {_percent(ratio)}: {verdict(ratio <= REFERENCE_VS_TABLE)} "
            "| | | |"
        )
    return lines


def _percent(ratio: float) -> str:
    """A ratio as a signed percent difference, e.g. 0.85 -> ``"-15.0 %"``."""
    return f"{(ratio - 1.0) * 100:+.1f} %".replace("-", "−")


def _groups(rows):
    from .any_image import PHOTOS

    photos = [r for r in rows if r["image"] in PHOTOS]
    others = [r for r in rows if r["image"] not in PHOTOS]
    return [(label, g) for label, g in (("photos", photos), ("tissue + fundus", others)) if g]


def _cross(rows) -> list[str]:
    lines = [
        f"| reference → target | reference | gray | ratio to gray (≤ {CROSS_VS_GRAY}) "
        "| colour kept |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['reference']} → {r['target']} | {r['error']:.2f} | {r['gray']:.2f} | "
            f"{r['ratio']:.2f}: {verdict(r['ratio'] <= CROSS_VS_GRAY)} | {r['coverage']:.2f} |"
        )
    return lines


def _hints(scores, counts, floors) -> list[str]:
    from .any_image import HINT_METHODS

    head = " | ".join(f"{n} hints" for n in counts)
    lines = [f"| method | {head} |", "| --- |" + " ---: |" * len(counts)]
    gray = float(np.mean(scores["gray", 0]))
    lines.append("| gray (no hints) | " + " | ".join(f"{gray:.2f}" for _ in counts) + " |")
    for method in HINT_METHODS:
        cells = []
        for n in counts:
            values = scores[method, n]
            cell = f"{np.mean(values):.2f} ({min(values):.2f}–{max(values):.2f})"
            if method == "propagate" and n in floors:
                cell += f", ≤ {floors[n]}: {verdict(np.mean(values) <= floors[n])}"
            cells.append(cell)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _trained(rows, held) -> list[str]:
    by_image = {r["image"]: r for r in held}
    lines = [
        "| image | gray | lookup table of the left half | beta + table | its own table "
        "| steps | training (s) | residual kept |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        base = by_image.get(r["image"])
        table = f"{base['table']:.2f}" if base else "-"
        lines.append(
            f"| {r['image']} | {r['gray']:.2f} | {table} | {r['beta + table']:.2f} | "
            f"{r['its table']:.2f} | {r['steps']} | {r['train_s']:.0f} | "
            f"{r['residual_scale']:.2f} |"
        )
    return lines


def _best(row) -> float:
    return row["reference"] if "reference" in row else row["beta + table"]


def floor_lines(results, settings) -> list[str]:
    """One line per floor of issue 16: the figure and whether it is met."""
    held = results["held_out"]
    worst = max(held, key=lambda r: r["reference"] / r["table"]) if held else None
    lines = []
    if worst:
        ratio = np.mean([r["reference"] for r in held]) / np.mean([r["table"] for r in held])
        lines.append(
            f"- reference's mean CIEDE2000 on the held-out halves at least 15 % below the "
            f"lookup table's: {verdict(ratio <= REFERENCE_VS_TABLE)} ({_percent(ratio)}; per "
            f"image the worst is {worst['image']}, "
            f"{_percent(worst['reference'] / worst['table'])} against its table)"
        )
    losing = [r for r in held if r["reference"] > r["gray"]] + [
        r for r in results["trained"] if r["beta + table"] > r["gray"]
    ]
    if held:
        names = ", ".join(f"{r['image']} {_best(r):.2f} vs {r['gray']:.2f}" for r in losing)
        lines.append(
            "- no method worse than gray on the held-out halves (DESIGN.md): "
            f"{verdict(not losing)}" + (f" ({names})" if names else "")
        )
    if results["trained"]:
        tables = {r["image"]: r["table"] for r in held}
        worse = [r for r in results["trained"] if r["beta + table"] > tables.get(r["image"], 1e9)]
        lines.append(
            "- trained beta + table no worse than the reference's lookup table: "
            f"{verdict(not worse)}" + "".join(f" ({r['image']})" for r in worse)
        )
    mp = results.get("megapixel")
    if mp:
        per_mp = mp["seconds"] / mp["megapixels"]
        lines.append(
            f"- reference at most {SECONDS_PER_MP:.0f} s per megapixel: "
            f"{verdict(per_mp <= SECONDS_PER_MP)} ({per_mp:.1f} s/MP)"
        )
    if results["cross"]:
        worst = max(results["cross"], key=lambda r: r["ratio"])
        lines.append(
            f"- reference lacking the target's colours at most {CROSS_VS_GRAY}x gray: "
            f"{verdict(worst['ratio'] <= CROSS_VS_GRAY)} (worst: {worst['reference']} → "
            f"{worst['target']}, {worst['ratio']:.2f}x)"
        )
    for n, floor in PROPAGATE_FLOORS.items():
        values = results["hints"].get(("propagate", n))
        if values:
            mean = float(np.mean(values))
            lines.append(
                f"- propagate, {n} hints, at most {floor}: {verdict(mean <= floor)} ({mean:.2f})"
            )
    live = results["live"]
    if live["size"] >= 1024:
        lines.append(
            f"- live mode at {live['size']}² within {LIVE_SECONDS} s: "
            f"{verdict(live['median'] <= LIVE_SECONDS)} ({live['median']:.3f} s)"
        )
    return lines


def format_report(results: dict, settings, command: str, minutes: float) -> str:
    """The suite's section of docs/benchmarks.md.

    Parameters
    ----------
    results : dict
        From :func:`benchmarks.any_image.measure`.
    settings : benchmarks.any_image.Settings
        What was measured (hint counts, photos, seeds).
    command : str
        The command that ran the suite, quoted in the text.
    minutes : float
        How long it ran.

    Returns
    -------
    str
        Markdown: the tables, and the floors with whether they are met.
    """
    counts = settings.hint_counts
    lines = [
        f"Machine: {report.machine()}.  ",
        f"Date: {report.today()}. Command: `{command}` ({minutes:.0f} min; load average at "
        f"the end {report.load()}: the CPU is shared with other work, so times are noisy).",
        "",
        "Mean CIEDE2000 against the truth of the RGB that `napari_colorize.colorize` returns "
        "for the gray image (each pixel's neutral gray of its CIE lightness); lower is better. "
        "Retina: the fundus photo at half size (705×705).",
        "",
        "**Held-out halves.** Reference = the left half in colour, target = the gray right "
        "half. Lookup table: the reference's mean ab per unit of L. Colour kept: "
        "`ReferenceColorizer.last_coverage`, the share of the predicted colour kept (1: the "
        "reference covers the target).",
        "",
        *_held_out(results["held_out"]),
        "",
    ]
    mp = results.get("megapixel")
    if mp:
        (rh, rw), (h, w) = mp["reference_shape"], mp["shape"]
        lines += [
            f"**Time per megapixel.** The reference method on the full-size retina (reference: "
            f"its left half, {rh}×{rw}; target: its right half, {h}×{w}, "
            f"{mp['megapixels']:.2f} MP; working size 1024 px): {mp['seconds']:.1f} s, "
            f"{mp['seconds'] / mp['megapixels']:.1f} s/MP (floor {SECONDS_PER_MP:.0f} s/MP; "
            f"load {mp['load']}); error {mp['error']:.2f} (gray {mp['gray']:.2f}).",
            "",
        ]
    if results["cross"]:
        lines += [
            "**Reference lacks the target's colours.** The left half of one image as the "
            "reference for the gray right half of another.",
            "",
            *_cross(results["cross"]),
            "",
        ]
    lines += [
        f"**Hints.** 1-pixel hints of the true colour at uniformly random pixels of the whole "
        f"photos ({', '.join(settings.hint_photos)}), seeds 0–{settings.trials - 1}: mean "
        '(min–max) over photos and seeds. *propagate*: `colorize(gray, model="propagate", '
        "hints=...)`, no network; *mean of hints*: the hints' mean ab painted everywhere; "
        "*beta-punks + hints*: the punks network predicts, the hints correct it locally; "
        "*beta-punks-hints*: its learned hint branch.",
        "",
        *_hints(results["hints"], counts, PROPAGATE_FLOORS),
        "",
    ]
    live = results["live"]
    lines += [
        f'**Live mode.** `colorize(gray, model="propagate", hints=PointHints(...))` on a '
        f"{live['size']}×{live['size']} image with 20 hints, one recoloured per run: median "
        f"{live['median'] * 1e3:.0f} ms ({live['min'] * 1e3:.0f}–{live['max'] * 1e3:.0f} ms, "
        f"{live['runs']} runs after a warm-up; load {live['load']}); floor "
        f"{LIVE_SECONDS * 1e3:.0f} ms at 1024².",
        "",
    ]
    if results["trained"]:
        lines += [
            "**Trained on the reference.** `beta` with the lightness lookup table "
            "(`benchmarks.common.train_beta`: the Training widget's defaults from an RGB "
            "layer), trained on the top 80 % of the left half, validated on its bottom 20 %, "
            "colorized at full resolution on the right half. *Its own table*: the table the "
            "model started from (fitted to its training patches).",
            "",
            *_trained(results["trained"], results["held_out"]),
            "",
        ]
    floors = floor_lines(results, settings)
    if floors:
        lines += ["Floors (issue 16):", "", *floors]
    return "\n".join(lines)
