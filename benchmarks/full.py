"""``full`` vs ``beta``: does class knowledge help? ``python -m benchmarks.full``.

Scores the bundled ``beta-punks`` and ``full-punks`` (or the files given) on
``punks:test`` with :mod:`napari_colorize.metrics`, overall and by punk type
(alien, ape, zombie, human = female or male), and writes the table between
``<!-- bench:full:start -->`` and ``<!-- bench:full:end -->`` in
docs/benchmarks.md. ``--split val`` scores the validation hold-out (train ids
8500-8999) instead, which is what may be looked at while developing.

``full-punks`` is ``beta-punks`` fine-tuned for 10 more epochs with the class
vector fused in. To tell what the class vector adds from what the extra
epochs add, ``--train-control OUT`` fine-tunes ``beta-punks`` in exactly the
same way without it (same epochs, learning rate, schedule, data and seed;
about 5 minutes on one CPU thread), and ``--control OUT`` adds that model to
the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from .report import load, machine, today, update_section

GROUPS = ("alien", "ape", "zombie", "human")
KEYS = ("ciede2000_fg", "ciede2000", "psnr", "ssim", "auc")


def add_arguments(parser) -> None:
    parser.add_argument("--beta", default="beta-punks", help="beta model name or file")
    parser.add_argument("--full", default="full-punks", help="full model name or file")
    parser.add_argument("--split", choices=["test", "val"], default="test")
    parser.add_argument("--control", help="beta-punks fine-tuned as full-punks, without classes")
    parser.add_argument("--train-control", metavar="OUT", help="train that control model first")


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


def _data(split: str):
    from napari_colorize.data.punks import PUNK_TYPES, load_punks
    from napari_colorize.training.presets import PUNKS_HOLDOUT

    punks = load_punks("test" if split == "test" else "train")
    rows = slice(None) if split == "test" else slice(len(punks) - PUNKS_HOLDOUT, None)
    rgb, alpha, labels = punks.rgb[rows], punks.alpha[rows], punks.labels[rows]
    names = [n.lower() for n in punks.label_names]
    types = labels[:, [names.index(t) for t in PUNK_TYPES]].astype(bool)
    groups = np.stack([types[:, 0], types[:, 1], types[:, 2], types[:, 3] | types[:, 4]], 1)
    label = "punks:test" if split == "test" else "punks:train ids 8500-8999 (validation)"
    return rgb, alpha, groups, label


def colorize(model, rgb, batch_size: int = 250):
    """``(predicted RGB, seconds)``: ab from the true L of ``rgb``, recombined with that L."""
    import torch

    from napari_colorize.color import l_to_net, lab_to_rgb, net_to_ab, rgb_to_lab

    lightness = rgb_to_lab(rgb)[..., 0]
    x = torch.from_numpy(l_to_net(lightness)[:, None].astype(np.float32))
    start = time.perf_counter()
    with torch.inference_mode():
        ab = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    seconds = time.perf_counter() - start
    ab = net_to_ab(ab.float()).permute(0, 2, 3, 1).numpy()
    return lab_to_rgb(np.concatenate([lightness[..., None], ab], axis=-1)), seconds


def score(model_name, rgb, alpha, groups) -> dict:
    """Overall and per-group metrics of one model (ab from L, recombined with the true L)."""
    from napari_colorize import metrics
    from napari_colorize.registry import load_model

    model, _ = load_model(model_name)
    pred, seconds = colorize(model, rgb)
    scores = metrics.score_images(pred, rgb, alpha)
    out = {"all": {**scores.summary(), "n_images": len(scores)}}
    out.update(metrics.breakdown(scores, groups, list(GROUPS)))
    out["ms_per_image"] = 1000 * seconds / len(rgb)
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
    rgb, alpha, groups, label = _data(args.split)
    names = {"beta": args.beta, "full": args.full}
    if getattr(args, "train_control", None):
        args.control = train_control(args.train_control)
    if getattr(args, "control", None):
        names["control"] = args.control
    results = {k: score(v, rgb, alpha, groups) for k, v in names.items()}
    text = table(results, names)
    print(text)
    print(json.dumps(results, indent=1, default=float))
    if getattr(args, "write", True) and args.split == "test":
        body = (
            f"`{' '.join(['python -m benchmarks.full', *sys.argv[1:]])}` ({today()}): "
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
    parser = argparse.ArgumentParser(prog="python -m benchmarks.full", description=__doc__)
    add_arguments(parser)
    parser.add_argument("--no-write", dest="write", action="store_false")
    sys.exit(main(parser.parse_args()))
