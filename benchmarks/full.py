"""``full`` vs ``beta``: does class knowledge help? ``python -m benchmarks.full``.

Scores the bundled ``beta-punks`` and ``full-punks`` (or the files given) on
``punks:test`` with :mod:`napari_colorize.metrics`, overall and by punk type
(alien, ape, zombie, human = female or male), and writes the table between
``<!-- bench:full:start -->`` and ``<!-- bench:full:end -->`` in
docs/benchmarks.md. ``--split val`` scores the validation hold-out (train ids
8500-8999) instead, which is what may be looked at while developing.

Run: ``python -m benchmarks.full [--split val] [--control OUT] [--no-write]``
(``python -m benchmarks.run --suite full``); ``--quick`` scores 64 punks.

``full-punks`` is ``beta-punks`` fine-tuned for 10 more epochs with the class
vector fused in. To tell what the class vector adds from what the extra
epochs add, ``--train-control OUT`` fine-tunes ``beta-punks`` in exactly the
same way without it (same epochs, learning rate, schedule, data and seed;
about 5 minutes on one CPU thread), and ``--control OUT`` adds that model to
the table.
"""

from __future__ import annotations

import json
import sys

from .common import GROUPS, punks_truth, score_punks
from .report import load, machine, today, update_section

KEYS = ("ciede2000_fg", "ciede2000", "psnr", "ssim", "auc")


#: Punks scored by ``--quick`` (the smoke test).
QUICK_PUNKS = 64


def add_arguments(parser) -> None:
    group = parser.add_argument_group("full vs beta")
    group.add_argument("--beta", default="beta-punks", help="full suite: beta model name or file")
    group.add_argument("--full", default="full-punks", help="full suite: full model name or file")
    group.add_argument("--split", choices=["test", "val"], default="test",
                       help="full suite: the punks scored (val: train ids 8500-8999)")  # fmt: skip
    group.add_argument("--control", help="beta-punks fine-tuned as full-punks, without classes")
    group.add_argument("--train-control", metavar="OUT", help="train that control model first")


def train_control(out: str) -> str:
    """Fine-tune ``beta-punks`` exactly as the ``full-punks`` preset does, without the classes."""
    import dataclasses

    from napari_colorize.registry import resolve_weights
    from napari_colorize.training.presets import preset_run
    from napari_colorize.training.trainer import Trainer

    full, train, val = preset_run("full-punks")
    beta, _, _ = preset_run("beta-punks")
    same = ("epochs", "max_steps", "lr", "batch_size", "optimizer", "scheduler", "loss", "seed")
    config = dataclasses.replace(beta, out=out, **{k: getattr(full, k) for k in same})
    Trainer(config, train, val, init_checkpoint=resolve_weights("beta-punks")).fit()
    return out


def _fmt(v, key):
    if v is None or v != v:
        return "–"
    return f"{v:.2f}" if key == "psnr" else f"{v:.3f}"


def table(results: dict, names: dict) -> str:
    beta, full = results["beta"], results["full"]
    control = results.get("control")
    extra = " control ciede2000_fg |" if control else ""
    lines = [
        "| punks | n | beta-punks ciede2000_fg | full-punks ciede2000_fg | change |" + extra,
        "| --- | ---: | ---: | ---: | ---: |" + (" ---: |" if control else ""),
    ]
    for g in ("all", *GROUPS):
        if g not in beta:
            lines.append(f"| {g} | 0 | – | – | – |" + (" – |" if control else ""))
            continue
        b, f = beta[g]["ciede2000_fg"], full[g]["ciede2000_fg"]
        change = f"{100 * (f - b) / b:+.1f} %" if b else "–"
        c = f" {control[g]['ciede2000_fg']:.3f} |" if control else ""
        lines.append(
            f"| {'**all**' if g == 'all' else g} | {beta[g]['n_images']} | {b:.3f} | "
            f"{f:.3f} | {change} |" + c
        )
    lines += [
        "",
        "| model | " + " | ".join(KEYS) + " | ms/image (CPU) |",
        "| --- | " + " | ".join("---:" for _ in KEYS) + " | ---: |",
    ]
    for key, label in names.items():
        row = results[key]["all"]
        ms = results[key]["ms_per_image"]
        lines.append(
            f"| {label} | " + " | ".join(_fmt(row[k], k) for k in KEYS) + f" | {ms:.2f} |"
        )
    return "\n".join(lines)


def verdict(results: dict) -> str:
    """One sentence: does full beat beta on ciede2000_fg (overall), and by how much."""
    b, f = results["beta"]["all"]["ciede2000_fg"], results["full"]["all"]["ciede2000_fg"]
    change = 100 * (f - b) / b
    if f < b:
        return f"**full-punks beats beta-punks** on `ciede2000_fg` by {-change:.1f} %."
    return (
        f"**full-punks does not beat beta-punks** on `ciede2000_fg` ({change:+.1f} %); "
        "see [full.md](full.md#does-class-knowledge-help-the-punks) for why, and what was tried."
    )


def main(args) -> int:
    import torch

    torch.set_num_threads(1)
    rgb, alpha, groups, label = punks_truth(args.split)
    if getattr(args, "quick", False):
        rgb, alpha, groups = rgb[:QUICK_PUNKS], alpha[:QUICK_PUNKS], groups[:QUICK_PUNKS]
    names = {"beta": args.beta, "full": args.full}
    if getattr(args, "train_control", None):
        args.control = train_control(args.train_control)
    if getattr(args, "control", None):
        names["control"] = args.control
    results = {k: score_punks(v, rgb, alpha, groups) for k, v in names.items()}
    text = table(results, names)
    print(text)
    print(json.dumps(results, indent=1, default=float))
    if getattr(args, "write", True) and args.split == "test":
        body = (
            f"`{args.command}` ({today()}): "
            f"`{names['beta']}` and "
            f"`{names['full']}` on {label} ({len(rgb)} punks), ab predicted from L alone and "
            "recombined with the true L; `ciede2000_fg` is the mean CIEDE2000 colour "
            "difference over the punks' own pixels (alpha > 0; lower is better), by punk "
            "type (*human* = female or male; the test split has no alien).\n\n"
            f"{text}\n\n"
            f"{verdict(results)}\n\n"
            "`beta-punks` was trained by `napari-colorize train --preset beta-punks` (8,500 "
            "punks, flips, batch 32, 40 epochs, one-cycle AdamW, ΔE loss); `full-punks` by "
            "`--preset full-punks`: the bundled beta-punks fine-tuned 10 more epochs (same "
            "data, batch, loss and schedule, a third of the learning rate) with the "
            "`inception-punks` probabilities fused in residually. The *control* column is "
            "beta-punks fine-tuned in exactly the same way without the class vector "
            "(`--train-control`): the extra epochs alone do not help, the class vector does. "
            "All were validated on train ids 8500-8999, never on the test split, and exported "
            "with `python -m napari_colorize.training.export RUN WEIGHTS --half --evaluate "
            "punks:test`; see [full.md](full.md).\n\n"
            f"Machine: {machine()}. Load average: {load()}."
        )
        update_section("full", body, "full vs beta")
    return 0


if __name__ == "__main__":
    from .run import run_suite

    sys.exit(run_suite("full"))
