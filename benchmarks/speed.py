"""Speed and memory of colorizing images and stacks, and the network's achieved GFLOP/s.

Every case runs in a fresh subprocess so that peak resident memory (VmHWM)
belongs to that case alone. Cases: 2D uint8 images of 512^2 to 8192^2 pixels,
and a 1024x1024 uint16 stack as a numpy array (input and output in memory) and
as a dask array read from a zarr store and written to a zarr store (nothing
held whole), with 16 and 64 planes. A last subprocess counts the network's
FLOPs at its working size (torch's FlopCounterMode), times it, and times a
dense float32 matmul in the same process: the machine's practical ceiling.

Run through the entry point: ``python -m benchmarks.run [--quick] [--model NAME]``,
or alone: ``python -m benchmarks.speed [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import report

MB = 2**20
#: (name, kind, shape, dtype)
FULL_CASES = [
    ("512²", "image", (512, 512), "uint8"),
    ("2048²", "image", (2048, 2048), "uint8"),
    ("4096²", "image", (4096, 4096), "uint8"),
    ("8192²", "image", (8192, 8192), "uint8"),
    ("stack 16×1024² numpy", "numpy", (16, 1024, 1024), "uint16"),
    ("stack 64×1024² numpy", "numpy", (64, 1024, 1024), "uint16"),
    ("stack 16×1024² dask→zarr", "dask", (16, 1024, 1024), "uint16"),
    ("stack 64×1024² dask→zarr", "dask", (64, 1024, 1024), "uint16"),
]
QUICK_CASES = [
    ("512²", "image", (512, 512), "uint8"),
    ("2048²", "image", (2048, 2048), "uint8"),
    ("stack 4×512² dask→zarr", "dask", (4, 512, 512), "uint16"),
    ("stack 8×512² dask→zarr", "dask", (8, 512, 512), "uint16"),
]
_TIMEOUT_S = 900


def add_arguments(parser) -> None:
    parser.add_argument(
        "--max-load",
        type=float,
        default=None,
        help="speed suite: before each case wait (up to --max-wait s) for the 1-minute "
        "load average to fall below this",
    )
    parser.add_argument("--max-wait", type=float, default=300.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--chroma-size",
        type=int,
        default=256,
        help="speed suite: working size of the network (default 256, a photo setting; "
        "0: the model's own)",
    )


# ----------------------------------------------------------------- child side


def _rss_mb(field: str) -> float:
    """VmHWM (peak) or VmRSS (now) of this process, in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (MB if sys.platform == "darwin" else 1024)


def synthetic(shape, dtype, seed=0) -> np.ndarray:
    """A smooth pattern with noise, built a strip at a time (no full-size float copy)."""
    dtype = np.dtype(dtype)
    top = np.iinfo(dtype).max
    *lead, height, width = shape
    out = np.empty(shape, dtype)
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None]
    for index in np.ndindex(*lead):
        phase = sum(index) * 0.7
        for r0 in range(0, height, 256):
            r1 = min(height, r0 + 256)
            y = np.linspace(r0 / height, r1 / height, r1 - r0, dtype=np.float32)[:, None]
            values = 0.5 + 0.3 * np.sin(12 * x + 7 * y + phase) * np.cos(9 * y - 3 * x)
            values += 0.08 * rng.standard_normal((r1 - r0, width), dtype=np.float32)
            out[(*index, slice(r0, r1))] = (np.clip(values, 0, 1) * top).astype(dtype)
    return out


def _build_model(spec: str):
    import torch

    if spec == "untrained-beta":
        from napari_colorize.models.beta import BetaColorizer, BetaConfig

        torch.manual_seed(0)
        return BetaColorizer(BetaConfig()).eval()
    return spec  # a name or path, loaded by the Colorizer through the registry


class _NetTimer:
    """Wall time spent inside the model's forward, via hooks."""

    def __init__(self, model):
        self.seconds = 0.0
        self._t = 0.0
        model.register_forward_pre_hook(self._pre)
        model.register_forward_hook(self._post)

    def _pre(self, *_):
        self._t = time.perf_counter()

    def _post(self, *_):
        self.seconds += time.perf_counter() - self._t


def _chroma(case: dict) -> dict:
    """The working size asked for; none given (0) keeps the model's own."""
    size = case.get("chroma_size") or 0
    return {"chroma_size": size} if size else {}


def _child_case(case: dict) -> dict:
    from napari_colorize.inference import Colorizer

    colorizer = Colorizer(_build_model(case["model"]), device="cpu", **_chroma(case))
    timer = _NetTimer(colorizer.model)
    kind, shape = case["kind"], tuple(case["shape"])
    # warm up at the same working size and batch (oneDNN picks its kernels on first use)
    warm_shape = (min(colorizer.batch_size, shape[0]), 256, 256) if kind != "image" else (256, 256)
    colorizer.colorize(synthetic(warm_shape, case["dtype"], seed=1))
    timer.seconds = 0.0
    out = None
    if kind == "image" or kind == "numpy":
        array = synthetic(shape, case["dtype"])
    else:
        import dask.array as da
        import zarr

        array = da.from_zarr(case["store"])[: shape[0]]
        out = zarr.open(case["out"], mode="w", shape=(*shape, 3), dtype="uint8",
                        chunks=(1, *shape[1:], 3))  # fmt: skip
    base = _rss_mb("VmRSS")
    start = time.perf_counter()
    result = colorizer.colorize(array, out=out)
    seconds = time.perf_counter() - start
    peak = _rss_mb("VmHWM")
    check = np.asarray(result[(0,) * (len(shape) - 2)][shape[-2] // 2])
    return {
        "seconds": seconds,
        "network_seconds": timer.seconds,
        "megapixels": float(np.prod(shape)) / 1e6,
        "peak_rss_mb": peak,
        "rss_before_mb": base,
        "working_size": list(colorizer.working_shape(shape[-2:])),
        "chroma_size": colorizer.chroma_size,
        "coloured": bool(check.any()),
    }


def _median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _child_flops(case: dict) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from napari_colorize.inference import Colorizer

    colorizer = Colorizer(_build_model(case["model"]), device="cpu", **_chroma(case))
    model = colorizer.model  # timed as the Colorizer runs it: prepared for inference
    stored = _build_model(case["model"])
    if isinstance(stored, str):  # FLOPs of the network as stored: the counter does not
        from napari_colorize.registry import load_model  # see the prepared one's fused calls

        stored = load_model(stored, device="cpu")[0].eval()
    repeats = 3 if case["quick"] else 7
    rows = []
    work = colorizer.chroma_size or 256
    planes = colorizer.batch_size
    for batch, size, what, layout in [
        (1, work, "one image at the working size", torch.channels_last),
        (planes, work, f"a batch of {planes} stack planes", torch.channels_last),
        (planes, work, "the same in NCHW (channels_last off)", torch.contiguous_format),
        (4, 512, "4 tiles of 512² (full-resolution chroma)", torch.channels_last),
    ]:
        model.to(memory_format=layout)
        x = torch.randn(batch, 1, size, size).contiguous(memory_format=layout)
        with torch.inference_mode():
            with FlopCounterMode(display=False) as counter:
                stored(x)
            flops = counter.get_total_flops()
            seconds = _median_time(lambda x=x: model(x), repeats)
        rows.append({"what": what, "batch": batch, "size": size, "gflop": flops / 1e9,
                     "seconds": seconds, "gflops": flops / seconds / 1e9})  # fmt: skip
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    seconds = _median_time(lambda: a @ b, repeats)
    return {"network": rows, "matmul_gflops": 2 * n**3 / seconds / 1e9, "matmul_n": n,
            "threads": torch.get_num_threads()}  # fmt: skip


def _child(argument: str) -> None:
    case = json.loads(argument)
    result = _child_flops(case) if case["kind"] == "flops" else _child_case(case)
    print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------- parent side


def _wait_for_load(max_load, max_wait) -> None:
    if max_load is None:
        return
    deadline = time.time() + max_wait
    while os.getloadavg()[0] > max_load and time.time() < deadline:
        time.sleep(5)


def _run_child(case: dict) -> dict:
    load = report.load()
    cmd = [sys.executable, "-m", "benchmarks.speed", "--child", json.dumps(case)]
    try:
        proc = subprocess.run(cmd, cwd=report.ROOT, capture_output=True, text=True,
                              timeout=_TIMEOUT_S)  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {_TIMEOUT_S} s", "load": load}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            result["load"] = load
            return result
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {proc.returncode}: {tail}", "load": load}


def _why(result: dict) -> str:
    """What "auto" judged bf16 by: the checkpoint's record on its quality set, or its check."""
    change = result.get("checked")
    if change is None:
        return ""
    if result.get("recorded_on"):
        return f": bf16 moves colours by {change:.3f} CIEDE2000 on {result['recorded_on']}"
    return f": its check measured {change:.3f} CIEDE2000"


def _full_resolution(spec: str, quick: bool) -> list[str]:
    """Lines on the network at full resolution (``chroma_size=None``), float32 and "auto"."""
    from . import native

    shape = [1024, 1024] if quick else [4096, 4096]
    lines = [
        f"At full resolution ({shape[0]}², `chroma_size=None`, tiled; all sizes and precisions "
        "in [Full resolution](#full-resolution), `--suite native`):",
        "",
    ]
    for precision in ("fp32", "auto"):
        r = native.run_case({"model": spec, "shape": shape, "precision": precision,
                             "repeats": 1 if quick else 2})  # fmt: skip
        if "error" in r:
            lines.append(f"- {precision}: failed ({r['error']})")
            continue
        chosen = "" if precision == "fp32" else f" (chose {r['used']}{_why(r)})"
        lines.append(
            f"- {precision}{chosen}: {r['seconds']:.2f} s, {r['gflops']:.0f} GFLOP/s, "
            f"{r['gflops'] / r['matmul_gflops']:.0%} of the same process's matmul rate, "
            f"peak RSS {r['rss_mb'] / 1024:.2f} GB"
        )
    return lines


def _pick_model(name: str) -> tuple[str, str]:
    """(spec for the children, how to describe it)."""
    try:
        from napari_colorize.registry import load_model

        _model, meta = load_model(name, device="cpu")
    except Exception as exc:  # not bundled yet, or no such model
        reason = " ".join(str(exc).split()).split(";")[0]
        return "untrained-beta", (
            f"an untrained `BetaColorizer` with the default `beta` config ({name!r} could not "
            f"be loaded: {reason}); speed and memory do not depend on the weights"
        )
    return name, f"`{name}` (arch {meta.arch}, {meta.config})"


def _write_store(path: Path, shape, dtype) -> None:
    import zarr

    store = zarr.open(str(path), mode="w", shape=shape, chunks=(1, *shape[1:]), dtype=dtype)
    for i in range(shape[0]):
        store[i] = synthetic((1, *shape[1:]), dtype, seed=i)[0]


def _targets(name: str, result: dict, results: dict) -> str:
    if "error" in result:
        return "failed"
    peak = result["peak_rss_mb"]
    if name == "4096²":
        ok = result["seconds"] < 10 and peak < 2048
        return f"<10 s, <2 GB: {'met' if ok else 'NOT met'}"
    if name == "8192²":
        return f"completes, <3 GB: {'met' if peak < 3072 else 'NOT met'}"
    if name.startswith("stack 64") and "dask" in name:
        small = results.get(name.replace("64", "16"), {})
        if "peak_rss_mb" in small:
            grows = peak > small["peak_rss_mb"] * 1.1 + 64
            return f"flat vs 16 planes ({small['peak_rss_mb']:.0f} MB): " + (
                "NOT met" if grows else "met"
            )
    return ""


def _table(cases, results) -> list[str]:
    lines = [
        "| case | time (s) | Mpx/s | in network (s) | peak RSS (MB) | load (1/5/15 min) "
        "| target |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for name, *_ in cases:
        r = results[name]
        if "error" in r:
            lines.append(f"| {name} | - | - | - | - | {r['load']} | {r['error']} |")
            continue
        lines.append(
            f"| {name} | {r['seconds']:.2f} | {r['megapixels'] / r['seconds']:.1f} | "
            f"{r['network_seconds']:.2f} | {r['peak_rss_mb']:.0f} | {r['load']} | "
            f"{_targets(name, r, results)} |"
        )
    return lines


def main(args) -> int:
    quick = args.quick
    cases = QUICK_CASES if quick else FULL_CASES
    spec, described = _pick_model(args.model)
    print(f"model: {described}")
    print(f"machine: {report.machine()}")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp:
        store = Path(tmp) / "stack.zarr"
        biggest = max((c for c in cases if c[1] == "dask"), key=lambda c: c[2][0], default=None)
        if biggest is not None:
            _write_store(store, biggest[2], biggest[3])
        for name, kind, shape, dtype in cases:
            _wait_for_load(args.max_load, args.max_wait)
            out = str(Path(tmp) / f"out-{len(results)}.zarr")
            case = {"model": spec, "kind": kind, "shape": shape, "dtype": dtype,
                    "store": str(store), "out": out,
                    "chroma_size": args.chroma_size}  # fmt: skip
            results[name] = r = _run_child(case)
            if "error" in r:
                print(f"{name:28s} FAILED {r['error']}")
            else:
                print(f"{name:28s} {r['seconds']:7.2f} s  {r['megapixels'] / r['seconds']:6.1f} "
                      f"Mpx/s  network {r['network_seconds']:6.2f} s  peak RSS "
                      f"{r['peak_rss_mb']:6.0f} MB  load {r['load']}")  # fmt: skip
        _wait_for_load(args.max_load, args.max_wait)
        flops = _run_child({"model": spec, "kind": "flops", "quick": quick,
                            "chroma_size": args.chroma_size})  # fmt: skip
    lines = [
        f"Machine: {report.machine()}.  ",
        f"Date: {report.today()}. Command: `{args.command}`.  ",
        f"Model: {described}; working size "
        f"{args.chroma_size or 'the model default'} px (longest side).  ",
        "Each case runs in a fresh process after a warm-up call (so oneDNN has picked its "
        "kernels); time is one `Colorizer.colorize` call, peak RSS is the process's VmHWM "
        "(Python, torch and the model included). The load column is this machine's load "
        "average when the case started: the CPU is shared with other work.",
        "",
        *_table(cases, results),
        "",
    ]
    rest = [
        r["megapixels"] / (r["seconds"] - r["network_seconds"])
        for name, r in results.items()
        if name.endswith("²") and "error" not in r and r["seconds"] > r["network_seconds"]
    ]
    if rest:
        lines += [
            "Where the time goes: the network runs at the working size (256 px longest "
            "side), so its cost per image is fixed and dominates small images and stacks of "
            "1024² planes; the full-resolution work around it (L, bilinear upsampling of ab, "
            "Lab → RGB) runs at up to "
            f"{max(rest):.0f} Mpx/s on the thread pool here.",
            "",
        ]
    if "error" in flops:
        lines.append(f"Network FLOP/s: failed ({flops['error']}).")
    else:
        lines.append(
            f"Network throughput ({flops['threads']} threads, load {flops['load']}) next to "
            f"a dense float32 {flops['matmul_n']}² matmul: "
            f"**{flops['matmul_gflops']:.1f} GFLOP/s** on this machine."
        )
        lines += ["", "| network input | GFLOP | ms | GFLOP/s | of matmul |",
                  "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
        for row in flops["network"]:
            lines.append(
                f"| {row['what']} ({row['batch']}×1×{row['size']}²) | {row['gflop']:.2f} | "
                f"{row['seconds'] * 1e3:.0f} | {row['gflops']:.1f} | "
                f"{row['gflops'] / flops['matmul_gflops']:.0%} |"
            )
    if spec != "untrained-beta":
        lines += ["", *_full_resolution(spec, quick)]
    text = "\n".join(lines)
    print()
    print(text)
    if args.write:
        path = report.update_section("speed", text, "Speed and memory")
        print(f"\nwrote {path}")
    failed = any("error" in r for r in results.values()) or "error" in flops
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(sys.argv[2])
    else:
        from .run import main as run_main

        sys.exit(run_main(["--suite", "speed", *sys.argv[1:]]))
