"""Colorization quality on punks:test: the two baselines, ``beta-original`` and ``beta-punks``.

Every row is :func:`napari_colorize.evaluation.evaluate` on the 1,000 test
punks, which no preset trains or validates on. ``gray`` predicts ab = 0,
``mean`` the train split's per-pixel mean ab; ``beta-original`` is the
originating project's beta network trained by ``napari-colorize train
--preset beta-original`` (the same data, 40 epochs and batch 32 as
``beta-punks``), which is not bundled: pass its checkpoint with
``--beta-original PATH``. The target (issue 4): ``beta-punks`` clearly beats
``beta-original`` on ``ciede2000_fg``.

Run: ``python -m benchmarks.quality --beta-original runs/beta-original.safetensors
[--quality-models NAME_OR_PATH ...] [--device D] [--no-write]`` (that is,
``python -m benchmarks.run --suite quality ...``); writes the ``quality``
section of ``docs/benchmarks.md``. ``--quick`` scores the gray baseline and
the first model only.
"""

from __future__ import annotations

from pathlib import Path

from . import report

KEYS = ("ciede2000", "ciede2000_fg", "psnr", "ssim", "colorfulness", "colorfulness_true", "auc")
TYPES = ("alien", "ape", "zombie", "female", "male")


def scores(rows: dict[str, str], data: str = "punks:test", device: str = "cpu") -> dict:
    """``{label: report}``; a row spec is ``baseline:gray``, ``baseline:mean`` or a model."""
    from napari_colorize.evaluation import evaluate

    out = {}
    for label, spec in rows.items():
        if spec.startswith("baseline:"):
            out[label] = evaluate(baseline=spec.split(":", 1)[1], data=data, device=device)
        else:
            out[label] = evaluate(spec, data=data, device=device)
    return out


def verdict(results: dict, ours="beta-punks", theirs="beta-original") -> list[str]:
    """The issue's target, checked; empty when either row is missing."""
    if ours not in results or theirs not in results:
        return []
    a, b = results[ours]["ciede2000_fg"], results[theirs]["ciede2000_fg"]
    return [
        f"- `ciede2000_fg`: {ours} {a:.3f} vs {theirs} {b:.3f}, {b / a:.1f}x lower: "
        + ("**met**" if a < 0.8 * b else "**not met**")
    ]


def table(results: dict, commands: dict[str, str], command: str) -> str:
    lines = [
        f"punks:test (1,000 punks), {report.today()}. Command: `{command}`.",
        "Lower is better for `ciede2000` (all pixels) and `ciede2000_fg` (the punk's own",
        "pixels); higher for PSNR, SSIM and AuC; `colorfulness` is best near the truth's.",
        "",
        "| row | " + " | ".join(f"`{k}`" for k in KEYS) + " |",
        "| --- |" + " ---: |" * len(KEYS),
    ]
    for name, r in results.items():
        cells = [f"{r[k]:.4g}" for k in KEYS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "`ciede2000_fg` by punk type (the test split's counts):", ""]
    counts = next(iter(results.values())).get("by_type", {})
    present = [t for t in TYPES if t in counts]
    lines.append("| row | " + " | ".join(f"{t} ({counts[t]['n_images']})" for t in present) + " |")
    lines.append("| --- |" + " ---: |" * len(present))
    for name, r in results.items():
        by = r.get("by_type", {})
        cells = [f"{by[t]['ciede2000_fg']:.3f}" if t in by else "-" for t in present]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "How each row was made:", ""]
    lines += [f"- {name}: `{cmd}`" for name, cmd in commands.items()]
    lines += ["", *verdict(results)]
    return "\n".join(lines)


def rows_and_commands(args) -> tuple[dict[str, str], dict[str, str]]:
    quick = getattr(args, "quick", False)
    rows = {"gray (ab = 0)": "baseline:gray", "mean (train mean ab)": "baseline:mean"}
    commands = {
        "gray (ab = 0)": "napari-colorize evaluate --baseline gray --data punks:test",
        "mean (train mean ab)": "napari-colorize evaluate --baseline mean --data punks:test",
    }
    if quick:
        del rows["mean (train mean ab)"], commands["mean (train mean ab)"]
    if args.beta_original and not quick:
        rows["beta-original"] = str(args.beta_original)
        commands["beta-original"] = (
            "napari-colorize train --preset beta-original, then "
            f"napari-colorize evaluate --model {args.beta_original} --data punks:test"
        )
    for name in args.quality_models[:1] if quick else args.quality_models:
        rows[name] = name
        commands[name] = (
            f"napari-colorize train --preset {name} (bundled as {name}), then "
            f"napari-colorize evaluate --model {name} --data punks:test"
            if not Path(name).suffix
            else f"napari-colorize evaluate --model {name} --data punks:test"
        )
    return rows, commands


def main(args) -> int:
    rows, commands = rows_and_commands(args)
    results = scores(rows, device=args.device)
    body = table(results, commands, args.command)
    print(body)
    if args.write:
        path = report.update_section("quality", body, "Colorization quality on punks:test")
        print(f"updated {path}")
    return 0


def add_arguments(parser) -> None:
    group = parser.add_argument_group("quality")
    group.add_argument("--beta-original", metavar="PATH", help="beta-original checkpoint")
    group.add_argument("--quality-models", nargs="+", default=["beta-punks"], metavar="NAME",
                       help="models scored by the quality suite (default beta-punks)")  # fmt: skip


if __name__ == "__main__":
    import sys

    from .run import run_suite

    sys.exit(run_suite("quality"))
