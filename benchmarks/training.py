"""Training throughput of ``beta``: images per second at 24² and 128² patches.

Each case runs the real :class:`~napari_colorize.training.Trainer` loop (data
crops and Lab conversion, forward, loss, backward, AdamW step) on synthetic
smooth RGB images, skips a few warm-up steps and times the next ones; the
median of ``--repeats`` runs is reported. Mixed precision is used only on CUDA
(both with and without it there); the CPU runs in float32.

Run alone: ``python -m benchmarks.training [--quick] [--no-write]``; it writes
its section of ``docs/benchmarks.md`` (between ``<!-- bench:training:start -->``
and ``<!-- bench:training:end -->``). It follows the suite interface of
:mod:`benchmarks.run` (``add_arguments`` / ``main``) so it can be listed there.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from . import report

#: (patch, batch size, warm-up steps, timed steps)
CASES = [(24, 32, 3, 20), (128, 16, 2, 6)]
QUICK_CASES = [(24, 32, 2, 5), (128, 8, 1, 2)]


def add_arguments(parser) -> None:
    group = parser.add_argument_group("training throughput")
    group.add_argument("--train-repeats", type=int, default=3, metavar="N",
                       help="runs per case; the median is reported (default 3)")  # fmt: skip
    group.add_argument("--train-device", default=None, metavar="D",
                       help="device (default: cuda if present, and the CPU)")  # fmt: skip


def _images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth colour images: cheap to make, and a realistic load for the Lab conversion."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        f = rng.uniform(1, 4, 3)
        p = rng.uniform(0, 6.3, 3)
        out[i] = (127.5 + 120 * np.sin(f * (x + y)[..., None] * 3 + p)).astype(np.uint8)
    return out


def measure(patch: int, batch: int, warmup: int, steps: int, *, device: str, amp: bool) -> dict:
    """One timed run: images/s and seconds per step over the steps after the warm-up."""
    from napari_colorize.training import StepEvent, TrainConfig, Trainer

    # twice the patch, so that crops vary as in real training
    data = _images(max(2 * batch, 64), 2 * patch)
    config = TrainConfig(
        arch="beta", max_steps=warmup + steps, batch_size=batch, patch_size=patch,
        device=device, amp=amp, lr=1e-3, scheduler="constant", seed=0,
    )  # fmt: skip
    stamps = {}
    for event in Trainer(config, data).run():
        if isinstance(event, StepEvent) and event.step in (warmup, warmup + steps):
            if device.startswith("cuda"):
                import torch

                torch.cuda.synchronize()
            stamps[event.step] = time.perf_counter()
    seconds = stamps[warmup + steps] - stamps[warmup]
    return {"images_per_s": steps * batch / seconds, "s_per_step": seconds / steps}


def _devices(choice: str | None) -> list[tuple[str, bool, int]]:
    """``(device, amp, threads)``: CUDA with and without AMP; the CPU with 1 and all threads."""
    import torch

    threads = torch.get_num_threads()
    cpu = [("cpu", False, n) for n in sorted({1, threads})]
    if choice is not None:
        if choice.startswith("cuda"):
            return [(choice, True, threads), (choice, False, threads)]
        return cpu
    found = []
    if torch.cuda.is_available():
        found += [("cuda", True, threads), ("cuda", False, threads)]
    return found + cpu


def main(args) -> int:
    import torch

    from napari_colorize.registry import build_model

    cases = QUICK_CASES if getattr(args, "quick", False) else CASES
    repeats = 1 if getattr(args, "quick", False) else max(1, args.train_repeats)
    n_params = sum(p.numel() for p in build_model("beta").parameters())
    load_before = report.load()
    rows = []
    default_threads = torch.get_num_threads()
    for device, amp, threads in _devices(getattr(args, "train_device", None)):
        torch.set_num_threads(threads)
        for patch, batch, warmup, steps in cases:
            runs = [
                measure(patch, batch, warmup, steps, device=device, amp=amp)
                for _ in range(repeats)
            ]
            ips = statistics.median(r["images_per_s"] for r in runs)
            sps = statistics.median(r["s_per_step"] for r in runs)
            spread = f"{min(r['images_per_s'] for r in runs):.0f}–" if repeats > 1 else ""
            name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "CPU"
            rows.append(
                f"| {name} | {threads} | {'bf16/fp16' if amp else 'fp32'} | {patch}² | {batch} | "
                f"{ips:,.0f} | {spread}{max(r['images_per_s'] for r in runs):,.0f} | "
                f"{sps * 1000:,.0f} |"
            )
            print(rows[-1], flush=True)
    torch.set_num_threads(default_threads)
    load_after = report.load()
    gpu_note = (
        ""
        if torch.cuda.is_available()
        else "\nNo GPU was available on this machine, so there are no GPU rows (with or "
        "without mixed precision); run `python -m benchmarks.training` on one to add them.\n"
    )
    text = f"""
`python -m benchmarks.training` ({report.today()}): the `beta` architecture (default
config, {n_params / 1e6:.2f} M parameters, BatchNorm U-Net) trained by the real
`Trainer` loop — random crops of synthetic 2×-patch-sized RGB images, Lab
conversion, forward, L1 loss, backward, AdamW — timed over {cases[0][3]} (24²) and
{cases[1][3]} (128²) steps after {cases[0][2]}/{cases[1][2]} warm-up steps; median
(and range) of {repeats} run(s).

Machine: {report.machine()}.
Load average (1, 5, 15 min) before: {load_before}; after: {load_after}. The CPU is
shared with other jobs, so the figures are lower bounds of what an idle machine does;
with the cores already busy, more torch threads than free cores make every step
wait for the slowest thread (compare the 1-thread rows), so on a shared machine
train with `--threads 1` (CLI) or `torch.set_num_threads(1)`.

| device | threads | precision | patch | batch | images/s (median) | images/s (range) | ms/step |
| --- | ---: | --- | --- | --- | ---: | ---: | ---: |
{chr(10).join(rows)}
{gpu_note}
Data-parallel training (`torchrun`, DDP) divides the global batch over the
processes; it was not measured here: on this 2-core machine two CPU processes
would only share the same cores.
"""
    print(text)
    if getattr(args, "write", True):
        path = report.update_section("training", text, "Training throughput")
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    from .run import run_suite

    sys.exit(run_suite("training"))
