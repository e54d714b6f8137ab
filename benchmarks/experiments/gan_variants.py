"""How the ``gan-punks`` generator was chosen: train a variant, score it on the validation punks.

``python -m benchmarks.experiments.gan_variants VARIANT [--out DIR] [--threads N]`` trains
one variant of the ``gan-punks`` preset (:data:`VARIANTS`; ``--list`` shows
them) and prints its ``ciede2000_fg`` and colourfulness on the validation punks
(train ids 8500-8999, which the preset never fits), next to the truth's.
``pretrain-*`` variants run the generator pretraining only (10,600 steps);
``adversarial-*`` variants resume such a run (``--from FILE``, the output of
``pretrain-wide-lr3e-3`` by default) into the discriminator pretraining and
the adversarial phase. The test split is scored only by
:mod:`benchmarks.gan_quality`, for the bundled model. The variants' scores and
run times are in docs/benchmarks.md (GAN quality).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

from ..common import validation_scores

PRETRAIN = {"max_steps": 10600}
NARROW = {"widths": [32, 64, 128], "stem": 16}
WIDE = {"widths": [48, 96, 192], "stem": 24}

#: name -> (TrainConfig fields, generator (UNetConfig) fields, GANConfig fields)
VARIANTS: dict[str, tuple[dict, dict, dict]] = {
    "pretrain-narrow-lr1e-3": ({**PRETRAIN, "lr": 1e-3}, NARROW, {}),
    "pretrain-narrow-lr2e-3": ({**PRETRAIN, "lr": 2e-3}, NARROW, {}),
    "pretrain-narrow-lr3e-3": ({**PRETRAIN, "lr": 3e-3}, NARROW, {}),
    "pretrain-wide-lr2e-3": ({**PRETRAIN, "lr": 2e-3}, WIDE, {}),
    "pretrain-wide-lr3e-3": ({**PRETRAIN, "lr": 3e-3}, WIDE, {}),
    "adversarial-default": ({}, {}, {"generator_bn": "train"}),
    "adversarial-lr3e-5": ({}, {}, {"adv_lr_g": 3e-5, "generator_bn": "train"}),
    "adversarial-frozen-bn": ({}, {}, {"generator_bn": "frozen"}),
}


def train_variant(name: str, out_dir: Path, source: str | None = None) -> Path:
    """Train variant ``name`` into ``out_dir/NAME.safetensors``; returns the path."""
    from napari_colorize.checkpoint import load_checkpoint
    from napari_colorize.training.presets import GAN_PUNKS_STEPS, get_preset, preset_run
    from napari_colorize.training.trainer import Trainer

    fields, generator, gan = VARIANTS[name]
    out = out_dir / f"{name}.safetensors"
    out_dir.mkdir(parents=True, exist_ok=True)
    if name.startswith("pretrain-"):
        base = get_preset("gan-punks").config()
        config = dataclasses.replace(
            base,
            model_config={**base.model_config, **generator},
            task_config={**base.task_config, "pretrain_d_steps": 0, **gan},
            out=str(out),
            epochs=None,
            **fields,
        )
        config, train, val = preset_run("gan-punks", config=config)
        return Trainer(config, train, val).fit().path
    if source is None:
        source = str(out_dir / "pretrain-wide-lr3e-3.safetensors")
    shutil.copyfile(source, out)
    meta = load_checkpoint(out).training_meta
    task = {
        **meta["train_config"]["task_config"],
        "pretrain_g_steps": meta["step"],
        "pretrain_d_steps": GAN_PUNKS_STEPS["pretrain_d_steps"],
        **gan,
    }
    total = meta["step"] + task["pretrain_d_steps"] + GAN_PUNKS_STEPS["adversarial"]
    _, train, val = preset_run("gan-punks")
    trainer = Trainer.resume(out, train, val, max_steps=total, task_config=task, out=str(out))
    return trainer.fit().path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.experiments.gan_variants", description=__doc__
    )
    parser.add_argument("variant", nargs="?", choices=sorted(VARIANTS))
    parser.add_argument("--list", action="store_true", help="list the variants and exit")
    parser.add_argument("--out", default="runs/gan-variants", help="folder of the runs")
    parser.add_argument("--from", dest="source", help="the pretrained run to resume")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.list or not args.variant:
        for name, (fields, generator, gan) in VARIANTS.items():
            print(f"{name}: TrainConfig {fields}, generator {generator}, GANConfig {gan}")
        return 0
    import torch

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    path = train_variant(args.variant, Path(args.out), args.source)
    minutes = (time.perf_counter() - start) / 60
    s = validation_scores(path)
    print(
        f"{args.variant}: {minutes:.1f} min; validation ciede2000_fg {s['ciede2000_fg']:.3f}, "
        f"colorfulness {s['colorfulness']:.2f} (truth {s['colorfulness_true']:.2f}); {path}"
    )
    print(json.dumps({k: v for k, v in s.items() if isinstance(v, (int, float))}, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
