"""Do weight averages steady the ``gan-punks`` recipe? One run, its averages, scored on validation.

``python -m benchmarks.experiments.gan_averages MODE --seed N [--threads T] [--out DIR]``
trains one ``gan-punks`` run and keeps, beside it, averages of the
generator's weights; each average gets the run's precise-BN recalibration (50
batches) and is scored, with the run's own result, on the validation punks
(train ids 8500-8999).

- ``preset``: the whole preset. Exponential moving averages over the
  adversarial phase (decays 0.995, 0.998, 0.999, starting at the pretrained
  generator), snapshots every 250 adversarial steps and the end of
  pretraining. ``final`` is what the preset writes.
- ``pretrain``: the generator pretraining only (10,600 steps). EMAs from step
  5,300 (decays 0.999, 0.9995) and uniform averages of the last 50 % and 25 %
  of the steps. ``final`` is the last weights (BN recalibrated, as the preset does).

It measures the earlier recipe, whose generator BatchNorm kept training in
the adversarial phase (``generator_bn="train"``), as the figures were taken.

``--tiny`` shrinks the schedule to a few steps (to check the script). What it
found, and how long it took, is in docs/benchmarks.md (GAN quality).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from ..common import validation_scores


def _averages(mode: str, g: int, adv0: int) -> dict[str, tuple[int, float | None]]:
    """name -> (the step it starts at, EMA decay or None for a uniform average).

    ``g`` is the number of pretraining steps, ``adv0`` the first adversarial step.
    """
    if mode == "pretrain":
        return {
            "ema0.999": (g // 2, 0.999),
            "ema0.9995": (g // 2, 0.9995),
            "uniform50": (g // 2, None),
            "uniform25": (g - g // 4, None),
        }
    return {f"ema{d}": (adv0, d) for d in (0.995, 0.998, 0.999)}


def run(mode: str, seed: int, out: Path, tiny: bool = False) -> dict[str, Path]:
    """Train, write ``out/NAME.safetensors`` for the run and each average; returns them."""
    import torch

    from napari_colorize.training.events import StepEvent
    from napari_colorize.training.presets import GAN_PUNKS_STEPS, get_preset, preset_run
    from napari_colorize.training.trainer import Trainer

    steps = dict(GAN_PUNKS_STEPS)
    if tiny:
        steps = {"pretrain_g_steps": 8, "pretrain_d_steps": 2, "adversarial": 6}
    if mode == "pretrain":
        steps = {**steps, "pretrain_d_steps": 0, "adversarial": 0}
    base = get_preset("gan-punks").config()
    task = {
        **base.task_config,
        "pretrain_g_steps": steps["pretrain_g_steps"],
        "pretrain_d_steps": steps["pretrain_d_steps"],
        "generator_bn": "train",  # the recipe these averages were measured on
    }
    out.mkdir(parents=True, exist_ok=True)
    config = dataclasses.replace(
        base, seed=seed, max_steps=sum(steps.values()), epochs=None, task_config=task,
        out=str(out / "final.safetensors"), preview_every=0,
    )  # fmt: skip
    config, train, val = preset_run("gan-punks", config=config)
    trainer = Trainer(config, train, val)
    g = steps["pretrain_g_steps"]
    adv0 = g + steps["pretrain_d_steps"]
    plan = _averages(mode, g, adv0)
    averages: dict[str, dict] = {}
    counts: dict[str, int] = {}

    def params():
        return dict(trainer.model.named_parameters())

    for event in trainer.run():
        if not isinstance(event, StepEvent):
            continue
        s = event.step
        if mode == "preset" and s == g:
            trainer.save(out / "pretrained.safetensors")
        if mode == "preset" and s > adv0 and (s - adv0) % 250 == 0 and s < trainer.total_steps:
            trainer.save(out / f"adversarial{s - adv0:04d}.safetensors")
        with torch.no_grad():
            for name, (start, decay) in plan.items():
                if s == start:
                    averages[name] = {k: p.detach().clone() for k, p in params().items()}
                    counts[name] = 1
                elif s > start:
                    counts[name] += 1
                    weight = 1.0 - decay if decay is not None else 1.0 / counts[name]
                    for k, p in params().items():
                        averages[name][k].lerp_(p.detach(), weight)
    paths = {"final": out / "final.safetensors"}
    for name, average in averages.items():
        with torch.no_grad():
            for k, p in params().items():
                p.copy_(average[k])
        trainer.recalibrate_batchnorm(base.bn_recalibrate)
        paths[name] = trainer.save(out / f"{name}.safetensors")
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.experiments.gan_averages", description=__doc__
    )
    parser.add_argument("mode", choices=("preset", "pretrain"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="folder of the run (default runs/gan-averages/MODE-seedN)")
    parser.add_argument("--tiny", action="store_true", help="a few steps, to check the script")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out or f"runs/gan-averages/{args.mode}-seed{args.seed}")
    start = time.perf_counter()
    paths = run(args.mode, args.seed, out, tiny=args.tiny)
    print(f"{args.mode}, seed {args.seed}: {(time.perf_counter() - start) / 60:.1f} min")
    for path in sorted(out.glob("*.safetensors")):
        s = validation_scores(path)
        mark = " (the run's result)" if path == paths["final"] else ""
        print(
            f"{path.stem}: validation ciede2000_fg {s['ciede2000_fg']:.3f}, "
            f"colorfulness {s['colorfulness']:.2f}{mark}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
