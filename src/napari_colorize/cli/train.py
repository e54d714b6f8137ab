"""Train a colorizer with a named preset; the checkpoint it writes can be used at once
(napari-colorize colorize --model PATH) and resumed (--resume PATH).
"""

from __future__ import annotations

import argparse
import sys

from .common import fail

HELP = "train a model from a preset (alpha, beta-original, beta-punks)"


def add_arguments(p) -> None:
    """Declare the ``train`` subcommand's arguments on its parser ``p``."""
    p.add_argument("--preset", metavar="NAME", help="a preset name (see --list)")
    p.add_argument("--list", action="store_true", help="list the presets and exit")
    p.add_argument("--data", metavar="SPEC", help="punks:train, folder:PATH or an image path")
    p.add_argument(
        "--image", metavar="PATH_OR_SAMPLE",
        help="the photo the alpha preset fits: a file, or astronaut (default), coffee, "
        "chelsea, rocket, immunohistochemistry (scikit-image's samples)",
    )  # fmt: skip
    p.add_argument("--epochs", type=int, metavar="N", help="train N epochs")
    p.add_argument("--steps", type=int, metavar="N", help="train N optimizer steps")
    p.add_argument("--out", metavar="PATH", help="checkpoint (default runs/PRESET.safetensors)")
    p.add_argument("--resume", metavar="PATH", help="continue the run saved in this checkpoint")
    p.add_argument("--device", metavar="D", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--batch-size", type=int, metavar="N", help="images per step")
    p.add_argument("--lr", type=float, metavar="X", help="peak learning rate")
    p.add_argument("--patch-size", type=int, metavar="N", help="random crop size (with --data)")
    p.add_argument("--seed", type=int, metavar="N", help="seed of weights, data order and crops")
    p.add_argument("--num-workers", type=int, metavar="N", help="data loading processes")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads torch may use")
    fast = p.add_argument_group(
        "speed", "see the Speed section of docs/training.md for what each gains"
    )
    fast.add_argument(
        "--precision", choices=("auto", "fp32", "bf16", "fp16"),
        help="auto (default): bf16/fp16 autocast on CUDA, float32 elsewhere; bf16 on the CPU "
        "is faster with AMX or AVX512-BF16, in other rounding",
    )  # fmt: skip
    fast.add_argument(
        "--compile", action=argparse.BooleanOptionalAction, default=None,
        help="torch.compile the networks: faster steps after a first one of about a minute "
        "(needs a C++ compiler on the CPU, Triton on CUDA); --no-compile turns off a resumed "
        "run's",
    )  # fmt: skip
    ddp = p.add_argument_group(
        "data-parallel training (DDP)",
        "--batch-size is then the global batch. --distributed starts the processes with "
        "torchrun; under torchrun it is automatic.",
    )
    ddp.add_argument(
        "--distributed", action="store_true", help="train on --nproc-per-node processes"
    )
    ddp.add_argument(
        "--nproc-per-node",
        type=int,
        metavar="N",
        help="processes for --distributed (default: one per GPU, else 2 on the CPU)",
    )


#: ``--precision`` -> ``TrainConfig.amp`` (None: the preset's or the resumed run's).
_AMP = {None: None, "auto": True, "fp32": False}


def run(args) -> int:
    """Run ``train`` with a progress bar (a signal stops it cleanly); the exit status."""
    with _one_line_warnings():
        return _train(args)


def _one_line_warnings():
    """Show warnings as ``napari-colorize: warning: ...`` lines, above any progress bar."""
    import contextlib
    import warnings

    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())

    def show(message, category, filename, lineno, file=None, line=None):
        from tqdm import tqdm

        text = " ".join(str(message).split())
        tqdm.write(f"napari-colorize: warning: {text}", file=sys.stderr)

    warnings.showwarning = show
    return stack


def _train(args) -> int:
    import signal
    import time

    from tqdm import tqdm

    from ..training.events import StepEvent, TrainResult, ValidationEvent
    from ..training.presets import list_presets
    from ..training.run import plan_run

    if args.list:
        for p in list_presets():
            print(f"{p['name']:<15} {p['description']}" + (f" [{p['data']}]" if p["data"] else ""))
        return 0
    if args.preset is None:
        names = ", ".join(p["name"] for p in list_presets())
        return fail(f"give --preset NAME (one of {names}), or --list to see them")
    if args.patch_size is not None and args.patch_size < 1:
        return fail(
            f"--patch-size must be a positive number of pixels, got {args.patch_size}; "
            "leave it out for the preset's default"
        )
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from ..training import distributed as ddp

    if args.distributed and not ddp.under_torchrun():
        return ddp.relaunch_train(args.nproc_per_node)
    world = ddp.join_if_distributed(args.distributed, args.device)
    quiet = world is not None and not world.is_main  # only rank 0 prints
    plan = plan_run(
        args.preset, data=args.data, image=args.image, steps=args.steps, epochs=args.epochs,
        out=args.out, resume=args.resume, batch_size=args.batch_size, lr=args.lr,
        device=world.device if world is not None else args.device, seed=args.seed,
        patch_size=args.patch_size, num_workers=args.num_workers,
        amp=_AMP.get(args.precision, args.precision), compile=args.compile,
    )  # fmt: skip
    trainer = plan.trainer(distributed=world is not None)

    stopped_by = []

    def on_signal(signum, frame):  # first Ctrl+C or SIGTERM: stop cleanly after this step
        trainer.request_stop()
        stopped_by.append(signum)
        for sig, handler in previous.items():  # a second one interrupts at once
            signal.signal(sig, handler)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    start = time.perf_counter()
    result = None
    try:
        bar = tqdm(desc=f"train {args.preset}", unit="step", dynamic_ncols=True, disable=quiet)
        with bar:
            for event in trainer.run():
                if isinstance(event, StepEvent):
                    bar.total = event.total_steps
                    bar.update(event.step - bar.n)
                    bar.set_postfix(
                        loss=f"{event.loss:.4f}", lr=f"{event.lr:.2e}",
                        img_s=f"{event.images_per_s:.0f}", refresh=False,
                    )  # fmt: skip
                elif isinstance(event, ValidationEvent) and not quiet:
                    shown = ", ".join(f"{k}={v:.4g}" for k, v in event.metrics.items())
                    bar.write(f"step {event.step}: {shown}")
                elif isinstance(event, TrainResult):
                    result = event
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if world is not None:
            ddp.cleanup_distributed()
    # stopped by a signal: the checkpoint is saved, the exit status says which signal
    status = 128 + int(stopped_by[0]) if stopped_by else 0
    if quiet:
        return status
    if result.trained == 0 and args.resume and not result.stopped:
        print(
            f"{args.preset}: nothing trained: {args.resume} already holds {result.step} steps, "
            f"the run asks for {result.total_steps}; pass --steps N (or --epochs N) beyond "
            f"{result.step} to train longer ({args.resume} is left as it was)"
        )
        return 0
    minutes, seconds = divmod(time.perf_counter() - start, 60)
    shown = ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items()) or "no validation"
    state = "stopped at" if result.stopped else "done:"
    print(
        f"{args.preset} {state} {result.step}/{result.total_steps} steps in "
        f"{int(minutes)}m{seconds:04.1f}s; {shown}; saved {result.path}"
    )
    if stopped_by:
        print(f"interrupted; resume with --resume {result.path}", file=sys.stderr)
    return status
