"""Training throughput of ``beta``: images per second at 24² and 128² patches, lever by lever.

Each case runs the real :class:`~napari_colorize.training.Trainer` loop (data
crops and Lab conversion, forward, loss, backward, AdamW step) on synthetic
smooth RGB images, skips a few warm-up steps and times the next ones. The speed
levers of :mod:`napari_colorize.training.speed` are measured against a float32
baseline without any of them (the loop before they existed): channels-last,
the fused AdamW, both (the default on CUDA and the CPU), bf16 autocast on top
(``amp="bf16"``; ``amp=True`` on CUDA) and ``torch.compile`` on top. The
variants of a case run in turn, ``--train-repeats`` rounds of all of them, so
that a change in the machine's load hits every variant alike; the median is
reported.

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
CASES = [(24, 32, 3, 15), (128, 16, 2, 4)]
QUICK_CASES = [(24, 32, 2, 5), (128, 8, 1, 2)]

#: (label, TrainConfig overrides); ``amp="low"`` is bf16 on the CPU, the automatic
#: bf16/fp16 on CUDA. The first is the baseline the others are compared with.
VARIANTS = [
    ("fp32, no levers (baseline)", {"channels_last": False, "fused_optimizer": False}),
    ("channels-last", {"channels_last": True, "fused_optimizer": False}),
    ("fused AdamW", {"channels_last": False, "fused_optimizer": True}),
    ("channels-last + fused (default)", {}),
    ("default + bf16 autocast", {"amp": "low"}),
    ("default + torch.compile", {"compile": True}),
]
#: The table's head.
HEADER = (
    "| device | threads | patch | batch | levers | images/s (median) | images/s (range) "
    "| ms/step | × baseline |\n| --- | ---: | --- | --- | --- | ---: | ---: | ---: | ---: |"
)


def add_arguments(parser) -> None:
    group = parser.add_argument_group("training throughput")
    group.add_argument("--train-repeats", type=int, default=3, metavar="N",
                       help="rounds of all variants per case; the median is reported "
                       "(default 3)")  # fmt: skip
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


def measure(patch: int, batch: int, warmup: int, steps: int, *, device: str, **levers) -> dict:
    """One timed run: images/s and seconds per step over the steps after the warm-up.

    ``levers`` are :class:`~napari_colorize.training.TrainConfig` fields
    (``channels_last``, ``fused_optimizer``, ``amp``, ``compile``); ``amp``
    defaults to float32, ``"low"`` is bf16 on the CPU and the automatic
    precision on CUDA.
    """
    from napari_colorize.training import StepEvent, TrainConfig, Trainer

    amp = levers.pop("amp", False)
    if amp == "low":
        amp = True if device.startswith("cuda") else "bf16"
    # twice the patch, so that crops vary as in real training
    data = _images(max(2 * batch, 64), 2 * patch)
    config = TrainConfig(
        arch="beta", max_steps=warmup + steps, batch_size=batch, patch_size=patch,
        device=device, amp=amp, lr=1e-3, scheduler="constant", seed=0, **levers,
    )  # fmt: skip
    stamps = {0: time.perf_counter()}
    for event in Trainer(config, data).run():
        if isinstance(event, StepEvent) and event.step in (1, warmup, warmup + steps):
            if device.startswith("cuda"):
                import torch

                torch.cuda.synchronize()
            stamps[event.step] = time.perf_counter()
    seconds = stamps[warmup + steps] - stamps[warmup]
    return {
        "images_per_s": steps * batch / seconds,
        "s_per_step": seconds / steps,
        "first_step_s": stamps[1] - stamps[0],  # set-up and the first step (compiling)
    }


def _devices(choice: str | None) -> list[tuple[str, int]]:
    """``(device, threads)``: CUDA if present (or asked for); the CPU with 1 and all threads."""
    import torch

    threads = torch.get_num_threads()
    cpu = [("cpu", n) for n in sorted({1, threads})]
    if choice is not None:
        return [(choice, threads)] if choice.startswith("cuda") else cpu
    return ([("cuda", threads)] if torch.cuda.is_available() else []) + cpu


def _variants(quick: bool, compile_ok: bool):
    return [
        (label, levers)
        for label, levers in VARIANTS
        if not (levers.get("compile") and (quick or not compile_ok))
    ]


def _compile_problem(device: str) -> str | None:
    from napari_colorize.training.speed import check_compile

    try:
        check_compile(device)
    except ValueError as exc:
        return str(exc)
    return None


def _case_rows(device, threads, case, variants, repeats, first_steps) -> list[str]:
    """The table rows of one device, thread count and patch size: rounds of all variants.

    The seconds to the first step of the case's first compiled run are added to
    ``first_steps`` (later runs in the process reuse the compiled code).
    """
    import torch

    patch, batch = case[:2]
    runs = {label: [] for label, _ in variants}
    for round_ in range(repeats):
        # each round starts one variant later, so that a burst of load elsewhere does
        # not always hit the same neighbours
        shift = round_ % len(variants)
        for label, levers in variants[shift:] + variants[:shift]:
            runs[label].append(measure(*case, device=device, **dict(levers)))
            if levers.get("compile") and round_ == 0:
                first_steps.append(runs[label][-1]["first_step_s"])
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "CPU"
    base = statistics.median(r["images_per_s"] for r in runs[variants[0][0]])
    rows = []
    for label, _ in variants:
        ips = [r["images_per_s"] for r in runs[label]]
        median = statistics.median(ips)
        spread = f"{min(ips):,.0f}–{max(ips):,.0f}" if repeats > 1 else f"{median:,.0f}"
        ms = statistics.median(r["s_per_step"] for r in runs[label]) * 1000
        rows.append(
            f"| {name} | {threads} | {patch}² | {batch} | {label} | {median:,.0f} | {spread} "
            f"| {ms:,.0f} | {median / base:.2f}× |"
        )
        print(rows[-1], flush=True)
    return rows


def main(args) -> int:
    import torch

    from napari_colorize.registry import build_model

    quick = getattr(args, "quick", False)
    cases = QUICK_CASES if quick else CASES
    repeats = 1 if quick else max(1, args.train_repeats)
    n_params = sum(p.numel() for p in build_model("beta").parameters())
    load_before = report.load()
    started = time.perf_counter()
    rows = []
    default_threads = torch.get_num_threads()
    skipped = {}
    first_steps: list[float] = []
    for device, threads in _devices(getattr(args, "train_device", None)):
        torch.set_num_threads(threads)
        problem = _compile_problem(device)
        if problem:
            skipped[device] = problem
        variants = _variants(quick, problem is None)
        for case in cases:
            rows += _case_rows(device, threads, case, variants, repeats, first_steps)
    torch.set_num_threads(default_threads)
    minutes = (time.perf_counter() - started) / 60
    load_after = report.load()
    notes = "".join(
        f"\ntorch.compile was not measured on {d}: {why}\n" for d, why in skipped.items()
    )
    if first_steps:
        notes += (
            f"\nThe first compiled run of each row group took {min(first_steps):.0f}–"
            f"{max(first_steps):.0f} s to its first step (compiling; the later runs in the "
            "same process reuse the compiled code, and inductor's caches on disk, when warm "
            "from earlier runs, shorten a new process's compile: with cold caches `beta` at "
            "24² took about a minute on this CPU).\n"
        )
    if not torch.cuda.is_available():
        notes += (
            "\nNo GPU was available on this machine, so there are no GPU rows; run "
            "`python -m benchmarks.training` on one to add them.\n"
        )
    command = getattr(args, "command", "python -m benchmarks.training")
    text = f"""
`{command}` ({report.today()}, {minutes:.0f} min):
the `beta` architecture (default config, {n_params / 1e6:.2f} M parameters, BatchNorm
U-Net) trained by the real `Trainer` loop — random crops of synthetic 2×-patch-sized
RGB images, Lab conversion, forward, L1 loss, backward, AdamW — timed over
{cases[0][3]} (24²) and {cases[1][3]} (128²) steps after {cases[0][2]}/{cases[1][2]}
warm-up steps (a compiled run compiles in its first step, which is not timed).
Each lever is a `TrainConfig` field (see the Speed section of `docs/training.md`):
the baseline is float32 without channels-last or the fused optimizer, as the loop
ran before they existed; "× baseline" is the ratio of the medians. The variants
of a row group ran in turn, {repeats} round(s) of all of them in one process (each
round starting one variant later), so that the load of the machine's other jobs
hits each alike; median and range of the {repeats} run(s).

Machine: {report.machine()}.
Load average (1, 5, 15 min) before: {load_before}; after: {load_after}. The CPU is
shared with other jobs, so the figures are lower bounds of what an idle machine does;
with the cores already busy, more torch threads than free cores make every step
wait for the slowest thread (compare the 1-thread rows), so on a shared machine
train with `--threads 1` (CLI) or `torch.set_num_threads(1)`.

{HEADER}
{chr(10).join(rows)}
{notes}
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
