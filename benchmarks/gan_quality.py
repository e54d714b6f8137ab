"""Quality of ``gan-punks`` next to ``beta-punks`` (and ``full-punks``) on punks:test.

Every model is scored by :func:`napari_colorize.evaluation.evaluate` on the
1,000 test punks, which no preset trains or validates on (the punks presets
fit ids 0-8499 of the train split and validate on 8500-8999). The targets of
the ``gan`` model (issue 9): its colorfulness closer to the truth's than
``beta-punks``'s, with ``ciede2000_fg`` at most 10% worse than ``beta-punks``'s.

Run: ``python -m benchmarks.gan_quality [--gan-models gan-punks beta-punks ...]
[--device D] [--no-write]`` (``python -m benchmarks.run --suite gan-quality``);
writes the ``gan-quality`` section of ``docs/benchmarks.md``. ``--quick``
scores the first two models only.
"""

from __future__ import annotations

from . import report

DEFAULT_MODELS = ("gan-punks", "beta-punks", "full-punks")
KEYS = ("ciede2000", "ciede2000_fg", "psnr", "ssim", "colorfulness", "auc")


def scores(models, data: str = "punks:test", device: str = "cpu") -> dict[str, dict]:
    """``{model: report}`` for the models that can be loaded (others are skipped)."""
    from napari_colorize.errors import ColorizeError
    from napari_colorize.evaluation import evaluate

    out = {}
    for name in models:
        try:
            out[name] = evaluate(name, data=data, device=device)
        except (ColorizeError, FileNotFoundError, ValueError) as exc:
            print(f"skipping {name}: {exc}")
    return out


def verdict(results: dict[str, dict], gan="gan-punks", beta="beta-punks") -> list[str]:
    """The two targets, checked; empty when either model is missing."""
    if gan not in results or beta not in results:
        return []
    g, b = results[gan], results[beta]
    truth = g["colorfulness_true"]
    gap_g, gap_b = abs(g["colorfulness"] - truth), abs(b["colorfulness"] - truth)
    ratio = g["ciede2000_fg"] / b["ciede2000_fg"]
    return [
        f"- colorfulness: {gan} {g['colorfulness']:.2f}, {beta} {b['colorfulness']:.2f}, "
        f"truth {truth:.2f}; distance to the truth {gap_g:.2f} vs {gap_b:.2f}: "
        + ("**met**" if gap_g < gap_b else "**not met**"),
        f"- ciede2000_fg: {gan} {g['ciede2000_fg']:.3f} = {ratio:.3f} x {beta}'s "
        f"{b['ciede2000_fg']:.3f} (at most 1.10): "
        + ("**met**" if ratio <= 1.10 else "**not met**"),
    ]


def table(results: dict[str, dict], command: str) -> str:
    truth = next(iter(results.values()))["colorfulness_true"]
    lines = [
        f"punks:test (1,000 images), {report.today()}. Command: `{command}`.",
        "",
        "| model | " + " | ".join(KEYS) + " | colorfulness - truth |",
        "| --- |" + " ---: |" * (len(KEYS) + 1),
    ]
    for name, r in results.items():
        cells = [f"{r[k]:.4g}" for k in KEYS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r['colorfulness'] - truth:+.2f} |")
    lines += ["", f"Truth's colorfulness: {truth:.2f}.", ""]
    lines += verdict(results)
    return "\n".join(lines)


def main(args) -> int:
    models = args.gan_models[:2] if getattr(args, "quick", False) else args.gan_models
    results = scores(models, device=args.device)
    if not results:
        print("no model could be evaluated")
        return 1
    body = table(results, args.command)
    print(body)
    if args.write:
        path = report.update_section("gan-quality", body, "GAN quality on punks:test")
        print(f"updated {path}")
    return 0


def add_arguments(parser) -> None:
    group = parser.add_argument_group("gan quality")
    group.add_argument("--gan-models", nargs="+", default=list(DEFAULT_MODELS), metavar="NAME",
                       help=f"models scored by the gan-quality suite (default "
                       f"{' '.join(DEFAULT_MODELS)})")  # fmt: skip


if __name__ == "__main__":
    import sys

    from .run import run_suite

    sys.exit(run_suite("gan-quality"))
