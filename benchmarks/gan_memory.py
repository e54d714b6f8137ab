"""Peak memory per image of one full adversarial training step of the ``gan`` model.

One step is what :class:`~napari_colorize.training.gan.GANTask` does in its
adversarial phase: the generator's forward pass, the multi-scale
discriminator's step (real and generated, backward, Adam), then the
generator's step (discriminator on the generated ab, adversarial +
feature-matching + L1 losses, backward through both networks, Adam). The
networks are the ``gan`` family scaled for photos:
:func:`~napari_colorize.models.gan.photo_config` (5 levels, 64-512 channels,
self-attention at 1/8, spectral norm; 19.7 M parameters) against pix2pixHD's
default discriminators (3 scales, width 64, 3 strided layers; 8.3 M parameters).

Each measurement runs in a fresh subprocess: build the networks and
optimizers, do one warm-up step with one image (so that the optimizer states
and allocator pools exist), then one step with ``B`` images, and record

- on CUDA: ``torch.cuda.max_memory_allocated()`` during that step minus the
  memory allocated before it (live tensor bytes);
- on the CPU: the same quantity, the peak of the live tensor bytes during the
  step above those before it, from the allocation and free events recorded by
  ``torch.profiler`` (``profile_memory=True``: each operator's own net
  allocation, in start-time order, accumulated; its maximum); and, for
  comparison, the growth of the peak resident set size (``VmHWM``, reset
  through ``/proc/self/clear_refs``) over the same step, done once more
  without the profiler. The RSS also counts what glibc's allocator keeps
  fragmented, which a GPU's caching allocator does not, so it comes out
  higher.

The per-image cost is the slope of a least-squares line through the
measurements at several ``B``; its intercept plus the weights and the Adam
states (3 x 4 bytes per parameter) is the fixed cost. ``images per 16 GiB`` =
(16 GiB - fixed) / slope, compared with the originating project's GAN, which
fits 150 images at 128x128 and 25 at 256x256 on a 16 GB GPU (the goal: at
least 4x as many).

Modes: float32; float32 with gradient checkpointing; bf16 autocast (the
trainer's mixed precision: ``torch.autocast`` with bfloat16, on the CPU too
when measured there); bf16 with checkpointing. ``channels_last`` is used on
CUDA only (the trainer uses it on the CPU too, for speed; the CPU figures
here are in NCHW, as they were first measured).

Run: ``python -m benchmarks.gan_memory [--quick] [--no-write] [--gan-device D]``;
writes the ``gan-memory`` section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from . import report

MiB = 2**20
GPU_GIB = 16
#: The originating project's GAN: images that fit a 16 GB GPU at each size.
ORIGINAL_FIT = {128: 150, 256: 25}
MODES = {
    "fp32": {"amp": False, "checkpointing": False},
    "fp32 + checkpointing": {"amp": False, "checkpointing": True},
    "bf16": {"amp": True, "checkpointing": False},
    "bf16 + checkpointing": {"amp": True, "checkpointing": True},
}
BATCHES = {
    "cpu": {128: (1, 2, 4), 256: (1, 2, 3)},
    "cuda": {128: (8, 32, 64), 256: (2, 8, 16)},
}
QUICK_BATCHES = {"cpu": {128: (1, 2)}, "cuda": {128: (2, 4)}}


def add_arguments(parser) -> None:
    group = parser.add_argument_group("gan memory")
    group.add_argument("--gan-device", default=None, metavar="D",
                       help="cuda or cpu (default: cuda when present, else cpu)")  # fmt: skip
    group.add_argument("--gan-threads", type=int, default=1, metavar="N",
                       help="CPU threads of each measurement (default 1)")  # fmt: skip


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")  # pragma: no cover


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def build(device: str, amp: bool, checkpointing: bool, size: int):
    """The task, step context and a batch maker of the photo-scale GAN on ``device``."""
    import torch

    from napari_colorize.models.gan import UNetColorizer, photo_config
    from napari_colorize.training.task import StepContext
    from napari_colorize.training.trainer import TrainConfig, make_task

    torch.manual_seed(0)
    gen_config = photo_config()
    config = TrainConfig(
        arch="gan", model_config=gen_config.to_dict(), lr=2e-4, device=device,
        task_config={"pretrain_g_steps": 0, "pretrain_d_steps": 0,
                     "gradient_checkpointing": checkpointing,
                     "channels_last": torch.device(device).type == "cuda"},
    )  # fmt: skip
    model = UNetColorizer(gen_config).to(device)
    task = make_task(model, config)
    task.discriminator.to(device)
    optims = task.configure_optimizers(config, 1000)
    dtype = torch.bfloat16 if amp else None
    ctx = StepContext(device, dtype, optims)

    def batch(n):
        g = torch.Generator().manual_seed(n)
        l_net = torch.rand(n, 1, size, size, generator=g) * 2 - 1
        ab = (torch.rand(n, 2, size, size, generator=g) - 0.5) * 0.5
        return l_net.to(device), ab.to(device)

    n_params = sum(p.numel() for m in task.modules().values() for p in m.parameters())
    return task, ctx, batch, n_params


def _profiled_peak(step) -> int:
    """Peak live tensor bytes above the start during ``step()``, from torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted(
        (e.time_range.start, e.self_cpu_memory_usage)
        for e in prof.events()
        if e.self_cpu_memory_usage
    )
    live = peak = 0
    for _, change in events:
        live += change
        peak = max(peak, live)
    return int(peak)


def measure_one(device: str, mode: str, size: int, batch_size: int) -> dict:
    """One adversarial step with ``batch_size`` images: the extra bytes it needed at its peak."""
    import torch

    task, ctx, batch, n_params = build(device, **MODES[mode], size=size)
    task.training_step(batch(1), ctx)  # warm-up: optimizer states, allocator pools
    x = batch(batch_size)
    out = {"n_params": int(n_params)}
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        task.training_step(x, ctx)
        torch.cuda.synchronize()
        out["extra"] = int(torch.cuda.max_memory_allocated() - before)
        out["method"] = "CUDA max_memory_allocated"
        return out
    import gc

    gc.collect()
    if not _reset_peak_rss():
        raise RuntimeError("cannot reset the peak RSS (/proc/self/clear_refs)")
    before = _rss_bytes()
    task.training_step(x, ctx)
    out["rss"] = int(_peak_rss_bytes() - before)
    gc.collect()
    out["extra"] = _profiled_peak(lambda: task.training_step(x, ctx))
    out["method"] = "peak live tensor bytes (torch.profiler memory events)"
    return out


def _subprocess(device, mode, size, batch_size, threads) -> dict:
    code = (
        f"import json, torch; torch.set_num_threads({threads:d}); "
        "from benchmarks.gan_memory import measure_one; "
        f"print(json.dumps(measure_one({device!r}, {mode!r}, {size:d}, {batch_size:d})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=report.ROOT,
        check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"measurement failed ({mode}, {size}, {batch_size}):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def fit(batches, extras) -> tuple[float, float]:
    """Least-squares ``extra = intercept + slope * batch``: ``(slope, intercept)`` in bytes."""
    slope, intercept = np.polyfit(np.asarray(batches, float), np.asarray(extras, float), 1)
    return float(slope), float(intercept)


def run(device: str, batches: dict, threads: int = 1, modes=None, log=print) -> list[dict]:
    """Measure every mode and size; one row per (size, mode)."""
    rows = []
    for size, sizes in batches.items():
        for mode in modes or MODES:
            results = [_subprocess(device, mode, size, b, threads) for b in sizes]
            extras = [r["extra"] for r in results]
            slope, intercept = fit(sizes, extras)
            static = 3 * 4 * results[0]["n_params"] + max(intercept, 0.0)
            fits = (GPU_GIB * 2**30 - static) / slope if slope > 0 else float("inf")
            row = {
                "size": size, "mode": mode, "batches": list(sizes),
                "extra_mib": [round(e / MiB, 1) for e in extras],
                "per_image_mib": slope / MiB, "fixed_mib": static / MiB,
                "fit_16gib": fits, "vs_original": fits / ORIGINAL_FIT[size],
                "method": results[0]["method"],
            }  # fmt: skip
            if "rss" in results[0]:
                row["rss_per_image_mib"] = fit(sizes, [r["rss"] for r in results])[0] / MiB
            log(
                f"{size}px {mode:<22} batches {sizes}: +{row['extra_mib']} MiB -> "
                f"{row['per_image_mib']:.1f} MiB/image, fixed {row['fixed_mib']:.0f} MiB, "
                f"{fits:.0f} images per {GPU_GIB} GiB ({row['vs_original']:.1f}x the original)"
            )
            rows.append(row)
    return rows


def table(rows, device_text: str, command: str) -> str:
    rss = "rss_per_image_mib" in rows[0]
    lines = [
        f"Measured on: {device_text}. Method: {rows[0]['method']}, see "
        "`benchmarks/gan_memory.py`. Command: `" + command + "`.",
        "",
        "| size | mode | batches | extra at peak (MiB) | MiB / image | fixed (MiB) "
        f"| images per {GPU_GIB} GiB | vs original |" + (" RSS MiB / image |" if rss else ""),
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |" + (" ---: |" if rss else ""),
    ]
    for r in rows:
        lines.append(
            f"| {r['size']}² | {r['mode']} | {', '.join(map(str, r['batches']))} | "
            f"{', '.join(f'{e:.0f}' for e in r['extra_mib'])} | {r['per_image_mib']:.1f} | "
            f"{r['fixed_mib']:.0f} | {r['fit_16gib']:.0f} | {r['vs_original']:.1f}x |"
            + (f" {r['rss_per_image_mib']:.1f} |" if rss else "")
        )
    return "\n".join(lines)


def main(args) -> int:
    import torch

    device = getattr(args, "gan_device", None) or ("cuda" if torch.cuda.is_available() else "cpu")
    kind = "cuda" if device.startswith("cuda") else "cpu"
    batches = (QUICK_BATCHES if args.quick else BATCHES)[kind]
    threads = getattr(args, "gan_threads", 1)
    print(f"gan memory on {device}: {report.machine()}; load {report.load()}")
    rows = run(device, batches, threads)
    if kind == "cuda":
        device_text = torch.cuda.get_device_name(0)
    else:
        device_text = f"CPU only ({report.machine()}; load {report.load()}; {report.today()})"
    body = table(rows, device_text, getattr(args, "command", "python -m benchmarks.gan_memory"))
    body += (
        "\n\nOriginating project: 150 images at 128² and 25 at 256² on a 16 GB GPU; "
        "the goal is 4x as many (600 and 100). `vs original` = images per 16 GiB / "
        "that number."
    )
    print(body)
    if args.write:
        path = report.update_section("gan-memory", body, "GAN training memory")
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    from .run import run_suite

    sys.exit(run_suite("gan-memory"))
