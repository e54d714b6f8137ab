"""The ``napari-colorize`` command: colorize, train, evaluate, models, export, demo.

Each subcommand only parses its arguments, calls the library and prints; the
work itself lives in the library modules. Each section below belongs to one
subcommand: ``_add_<name>(subparsers)`` declares it, ``_run_<name>(args)`` runs it
and returns the exit status.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__


def _fail(message: str) -> int:
    print(f"napari-colorize: error: {message}", file=sys.stderr)
    return 2


# ------------------------------------------------------------------ models


def _add_models(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list the registered models with their cards",
        description="Each model's card: what it is for, what it was trained on, its input "
        "size, its working size, its download size and its measured figures.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="only these models (or methods)")
    p.add_argument("--json", action="store_true", help="print the list as JSON")


def _finite(value):
    """NaN/inf metrics become null, so that ``--json`` prints strict JSON."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _models_rows(names) -> list[dict]:
    """The registry's rows, then the training-free methods, limited to ``names``."""
    from .cards import method_cards
    from .registry import list_models, model_card

    rows = list_models()
    rows += [
        {"name": name, "arch": None, "source": "method", "size": None, "available": True,
         "description": card.get("description", ""), "card": card}
        for name, card in method_cards().items()
    ]  # fmt: skip
    if not names:
        return rows
    by_name = {row["name"]: row for row in rows}
    for name in names:
        if name not in by_name:
            model_card(name)  # raises UnknownModelError listing the names
            raise ValueError(
                f"model {name!r} is registered but its file is not installed; "
                "upgrade or reinstall napari-colorize"
            )
    return [by_name[name] for name in names]


def _run_models(args) -> int:
    from .cards import card_lines

    models = _models_rows(args.names)
    if args.json:
        print(json.dumps(_finite(models), indent=2, default=str))
        return 0
    import shutil
    import textwrap

    width = max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))
    for i, m in enumerate(models):
        card = m.get("card") or {}
        if m["source"] == "method":
            where = "training-free method"
        elif m.get("available"):
            where = "on this machine"
        elif m["source"] == "url":
            where = "downloaded on first use"
        else:
            where = "missing"
        head = [m.get("arch"), m["source"] if m["source"] != "method" else None]
        head = [h for h in head if h] + [where]
        print(("\n" if i else "") + f"{m['name']}  ({', '.join(head)})")
        for line in card_lines(card):
            label, _, text = line.partition(": ")
            line = f"  {label + ':':<14}{text}" if text else f"  {line}"
            print(textwrap.fill(line, width, subsequent_indent=" " * 16))
    for m in models:
        if m.get("error"):
            print(f"{m['name']}: {m['error']}", file=sys.stderr)
    if any(m["source"] == "url" and not m.get("available") for m in models):
        print("(models marked 'downloaded on first use' need the network once)", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- evaluate


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model (or a baseline) on punks:test or a folder of images",
        description="Predict ab from the L of each true image, recombine with the true L and "
        "report CIEDE2000, PSNR, SSIM, colorfulness and the ab-error AuC.",
    )
    p.add_argument("--model", metavar="NAME_OR_PATH", help="registered model name or checkpoint")
    p.add_argument(
        "--data",
        default="punks:test",
        metavar="SPEC",
        help="punks:test (default), punks:train or a folder of images",
    )
    p.add_argument(
        "--baseline", choices=["gray", "mean"], help="score a baseline instead of a model"
    )
    p.add_argument("--json", metavar="OUT", help="also write the report to this JSON file")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--batch-size", type=int, default=256, metavar="N", help="images per batch")


def _write_json_atomic(path, data) -> None:
    from .checkpoint import atomic_write

    text = json.dumps(_finite(data), indent=2) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _run_evaluate(args) -> int:
    import time

    from tqdm import tqdm

    from .evaluation import EvaluationDone, format_report, run_evaluation

    if (args.model is None) == (args.baseline is None):
        return _fail(
            "give either --model NAME_OR_PATH or --baseline gray|mean"
            + (" (not both)" if args.model is not None else "")
        )
    what = args.model if args.model is not None else f"baseline {args.baseline}"
    start = time.perf_counter()
    report = None
    events = run_evaluation(
        model=args.model,
        data=args.data,
        baseline=args.baseline,
        batch_size=args.batch_size,
        device=args.device,
    )
    with tqdm(desc=f"evaluate {what}", unit="img", leave=False) as bar:
        for event in events:
            if isinstance(event, EvaluationDone):
                report = event.report
            else:
                bar.total = event.total
                bar.update(event.done - bar.n)
    seconds = time.perf_counter() - start
    print(f"{what} on {report['data']}")
    print(format_report(report))
    by_type = report.get("by_type") or {}
    if by_type:
        print(
            "by type:  "
            + ", ".join(
                f"{name} {r['ciede2000_fg']:.2f} (n={r['n_images']})"
                for name, r in by_type.items()
            )
            + "  [ciede2000_fg]"
        )
    print(f"{report['n_images']} images in {seconds:.1f} s")
    if args.json:
        _write_json_atomic(args.json, report)
        print(f"wrote {args.json}")
    return 0


# ------------------------------------------------------------------- train


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a preset (alpha, beta-original, beta-punks)",
        description="Train a colorizer with a named preset; the checkpoint it writes can be "
        "used at once (napari-colorize colorize --model PATH) and resumed (--resume PATH).",
    )
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
    p.add_argument(
        "--distributed", action="store_true",
        help="data-parallel (DDP) over --nproc-per-node processes, started with torchrun; "
        "automatic under torchrun. --batch-size is then the global batch",
    )  # fmt: skip
    p.add_argument(
        "--nproc-per-node", type=int, metavar="N",
        help="processes for --distributed (default: one per GPU, else 2 on the CPU)",
    )  # fmt: skip


def _run_train(args) -> int:
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

    from .training.events import StepEvent, TrainResult, ValidationEvent
    from .training.presets import list_presets, preset_run

    if args.list:
        for p in list_presets():
            print(f"{p['name']:<15} {p['description']}" + (f" [{p['data']}]" if p["data"] else ""))
        return 0
    if args.preset is None:
        names = ", ".join(p["name"] for p in list_presets())
        return _fail(f"give --preset NAME (one of {names}), or --list to see them")
    if args.patch_size is not None and args.patch_size < 1:
        return _fail(
            f"--patch-size must be a positive number of pixels, got {args.patch_size}; "
            "leave it out for the preset's default"
        )
    import torch

    from .training.trainer import TrainConfig, Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    from .training import distributed as ddp

    if args.distributed and not ddp.under_torchrun():
        return ddp.relaunch_train(args.nproc_per_node)
    world = ddp.join_if_distributed(args.distributed, args.device)
    quiet = world is not None and not world.is_main  # only rank 0 prints
    device = world.device if world is not None else args.device
    overrides = {
        "epochs": args.epochs, "max_steps": args.steps, "out": args.out, "device": device,
        "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
        "patch_size": args.patch_size,
        "num_workers": args.num_workers,
    }  # fmt: skip
    base = None
    if args.resume:
        from .checkpoint import load_checkpoint

        saved = (load_checkpoint(args.resume).training_meta or {}).get("train_config")
        if saved is None:
            return _fail(f"{args.resume} holds no training state to resume from")
        base = TrainConfig.from_dict(saved)
        overrides["out"] = overrides["out"] or saved.get("out") or args.resume
    elif overrides["out"] is None:
        overrides["out"] = f"runs/{args.preset}.safetensors"
    config, train, val = preset_run(
        args.preset, data=args.data, image=args.image, config=base, **overrides
    )
    trainer_class = ddp.DistributedTrainer if world is not None else Trainer
    trainer = trainer_class(config, train, val, resume=args.resume)

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


# ---------------------------------------------------------------- colorize


def _add_colorize(sub) -> None:
    p = sub.add_parser(
        "colorize",
        help="colorize image files or folders (png, jpg, tif incl. 16-bit and stacks)",
        description="Colorize images, keeping their size; a multi-page tif becomes an RGB tif "
        "stack. OUT is the result file for one input, else a folder (results keep their "
        "input's name). Inputs and existing outputs are never overwritten without --overwrite.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output file (.png, .jpg, .jpeg, .tif or .tiff; stacks: .tif) or folder",
    )
    p.add_argument(
        "--model",
        default=None,
        help="model name, checkpoint file, bioimage.io package (.zip, gray in, RGB out), or "
        "propagate (spread --hints); default: chosen per "
        "image (a reference when given, the punks models for punks-sized images, a "
        "downloaded photo model, propagate with hints)",
    )
    p.add_argument(
        "--reference",
        nargs="+",
        metavar="REF",
        help="colour image(s) or folder(s) of the same kind of scene or tissue: colours are "
        "learned from them in seconds (no download, no training)",
    )
    p.add_argument(
        "--hints",
        metavar="CSV",
        help="colour hints: a CSV with a header row,col,r,g,b (0-255), optional size and "
        "leading plane columns; spread along lightness (propagate) or correcting a model",
    )
    p.add_argument(
        "--temporal",
        action="store_true",
        help="stacks (time-lapses, z-stacks): consistent colours along the last axis before "
        "the image's; hints on any plane carry to the other planes along the motion",
    )
    p.add_argument(
        "--chroma-size",
        type=int,
        default=None,
        metavar="N",
        help="longest side at which colours are predicted (default: the model's; 0: full size)",
    )
    p.add_argument("--tile", type=int, default=None, metavar="N", help="largest network input")
    p.add_argument("--batch-size", type=int, default=None, metavar="N", help="inputs per pass")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument(
        "--level",
        type=int,
        default=0,
        metavar="N",
        help="OME-Zarr inputs: the pyramid level to colorize (default 0, full resolution); "
        "an OUT named *.ome.zarr is written as an OME-Zarr pyramid (pip install "
        "'napari-colorize[ome-zarr]')",
    )
    p.add_argument(
        "--scheduler", metavar="ADDRESS",
        help="zarr input: compute on this dask.distributed scheduler (tcp://host:8786 or a "
        "scheduler file); the workers read the input and write OUT (a .zarr) themselves",
    )  # fmt: skip
    p.add_argument(
        "--workers", type=int, metavar="N",
        help="zarr input: compute on a local dask cluster of N worker processes",
    )  # fmt: skip


def _run_colorize(args) -> int:
    from .cluster import is_zarr
    from .ome_zarr import is_ome_zarr

    plain_zarr = any(is_zarr(p) and not is_ome_zarr(p) for p in args.inputs)
    if args.scheduler is not None or args.workers is not None or plain_zarr:
        return _run_colorize_zarr(args)
    from tqdm import tqdm

    from .files import colorize_file, find_images, plan_jobs, remove_stale_temporaries

    def report(path, message) -> None:
        line = " ".join(str(message).split())
        tqdm.write(f"napari-colorize: error: {path}: {line}", file=sys.stderr)

    files, problems = find_images(args.inputs)
    jobs, refused = plan_jobs(files, args.output, overwrite=args.overwrite)
    failed = 0
    for path, message in problems + refused:
        report(path, message)
        failed += 1
    if not jobs:
        return 1
    options = {"device": args.device, "tile": args.tile, "batch_size": args.batch_size}
    if args.temporal:
        options["temporal"] = True
    if args.chroma_size is not None:
        options["chroma_size"] = args.chroma_size or None
    colorizer = _colorizer_factory(args, options)
    for folder in {job.target.parent for job in jobs}:
        for path in remove_stale_temporaries(folder):
            tqdm.write(f"napari-colorize: removed {path}, left by an interrupted run")
    written = 0
    with tqdm(total=len(jobs), unit="file", desc="colorize", dynamic_ncols=True) as bar:
        for i, job in enumerate(jobs):
            bar.set_postfix_str(job.source.name)

            def progress(event, bar=bar, i=i):
                bar.n = round(i + event.fraction, 3)  # planes and tiles within the file
                bar.refresh()

            try:
                colorize_file(
                    colorizer, job, progress=progress, overwrite=args.overwrite,
                    level=args.level, about=_about_run(args),
                )  # fmt: skip
                written += 1
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one bad file must not stop the others
                report(job.source, exc)
                failed += 1
            bar.n = i + 1
            bar.refresh()
    total = len(jobs) + len(problems) + len(refused)
    print(f"colorized {written} of {total} file(s) into {args.output}")
    return 1 if failed else 0


def _run_colorize_zarr(args) -> int:
    """A zarr array colorized into a zarr array by dask (a cluster with --scheduler/--workers)."""
    import time

    from .cluster import check_paths, colorize_zarr, connect, is_zarr

    if len(args.inputs) != 1 or not is_zarr(args.inputs[0]):
        return _fail(
            "--scheduler and --workers colorize one zarr array (a folder IN.zarr); got "
            + ", ".join(args.inputs)
        )
    options = {"device": args.device, "tile": args.tile, "batch_size": args.batch_size}
    options = {k: v for k, v in options.items() if v is not None}
    if args.temporal:
        options["temporal"] = True
    if args.chroma_size is not None:
        options["chroma_size"] = args.chroma_size or None
    model = args.model
    if args.reference:
        if model not in (None, "reference"):
            return _fail(f"--reference cannot be combined with --model {model}")
        options["reference"] = _read_references(args.reference)
    if args.hints is not None:
        from .hints import read_hints_csv

        def hints(layout, path=args.hints):
            return read_hints_csv(path, layout.leading_shape + layout.spatial_shape)

        options["hints"] = hints
    elif model == "propagate":
        return _fail("--model propagate spreads colour hints: give --hints hints.csv")
    start = time.perf_counter()
    try:
        import dask.array  # noqa: F401

        if args.scheduler is not None or args.workers is not None:
            import distributed  # noqa: F401
    except ImportError:
        return _fail(
            "zarr inputs, --scheduler and --workers need dask.distributed: "
            "pip install 'napari-colorize[distributed]'"
        )
    check_paths(args.inputs[0], args.output, overwrite=args.overwrite)  # before any cluster
    with connect(args.scheduler, args.workers) as client:
        where = "local threads" if client is None else f"scheduler {client.scheduler.address}"
        print(f"colorizing {args.inputs[0]} on {where}", file=sys.stderr)
        colorize_zarr(
            args.inputs[0], args.output, model=model, overwrite=args.overwrite,
            progress=sys.stderr.isatty(), **options,
        )  # fmt: skip
    print(f"colorized {args.inputs[0]} into {args.output} in {time.perf_counter() - start:.1f} s")
    return 0


def _about_run(args) -> dict:
    """What the command line asked for, recorded in OME-Zarr results."""
    about = {"model": args.model or "chosen per image"}
    if args.reference:
        about["reference"] = [str(path) for path in args.reference]
    if args.hints:
        about["hints"] = str(args.hints)
    return about


def _read_references(paths):
    """The colour images of ``--reference`` (files and folders), as arrays."""
    from .files import find_images, read_image

    files, problems = find_images(paths)
    if problems:
        path, message = problems[0]
        raise ValueError(f"--reference {path}: {message}")
    return [read_image(path) for path in files]


def _colorizer_factory(args, options):
    """``layout -> Colorizer`` for each input file: its method, reference and hints."""
    from .choice import default_method
    from .guided import ReferenceColorizer
    from .hints import read_hints_csv
    from .inference import Colorizer

    reference = None
    if args.reference:
        reference = ReferenceColorizer(_read_references(args.reference))  # fitted once
        if args.model not in (None, "reference"):
            raise ValueError(f"--reference cannot be combined with --model {args.model}")
    shared = {}
    if reference is None and args.model not in (None, "propagate") and args.hints is None:
        # a named model is loaded once, before any file, so a wrong name stops at once
        shared[args.model] = Colorizer(args.model, **options)

    def make(layout):
        model = args.model
        if reference is not None:
            model = reference
        elif model is None:
            model = default_method(layout.spatial_shape, hints=args.hints is not None)
        hints = None
        if args.hints is not None:
            shape = layout.leading_shape + layout.spatial_shape
            hints = read_hints_csv(args.hints, shape)
        elif model == "propagate":
            raise ValueError("--model propagate spreads colour hints: give --hints hints.csv")
        if hints is None and isinstance(model, str):
            if model not in shared:  # one loaded model for every file
                shared[model] = Colorizer(model, **options)
            return shared[model]
        return Colorizer(model, hints=hints, **options)

    return make


# -------------------------------------------------------------------- demo


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="open napari with a grayscale sample and colorize it with the bundled model",
        description="Open napari with grayscale CryptoPunks, dock the Colorize widget and "
        "colorize them with the bundled model. Without a display, write the colorized "
        "sample and a side-by-side PNG (gray | colorized | truth) into --out instead.",
    )
    p.add_argument("--model", default="beta-punks", help="model name or checkpoint file")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument(
        "--screenshot",
        metavar="PATH",
        default=None,
        help="save a screenshot of the viewer once the colorization has finished, then exit",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default="napari-colorize-demo",
        help="folder for the files written without a display (default: %(default)s)",
    )
    p.add_argument(
        "--no-viewer", action="store_true", help="write the files even where napari could open"
    )


def _run_demo(args) -> int:
    from .demo import display_problem, run_headless

    problem = "--no-viewer was given" if args.no_viewer else display_problem()
    if problem is None:
        from .widgets.demo import run_viewer_demo

        return run_viewer_demo(model=args.model, device=args.device, screenshot=args.screenshot)
    print(f"napari-colorize demo: {problem}; writing the colorized sample to {args.out} instead")
    if args.screenshot:
        print(f"(no screenshot: {args.screenshot} needs a display)")
    paths = run_headless(args.out, model=args.model, device=args.device)
    print(f"side-by-side picture (gray | colorized | truth): {paths[-1]}")
    return 0


# ------------------------------------------------------------------ export


def _add_export(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a model as a bioimage.io model package",
        description="Write MODEL as a bioimage.io model package: a zip with a TorchScript "
        "graph (gray in, RGB out, the input's lightness kept), test tensors, a cover and the "
        "model's metrics, which bioimage.io tools (bioimageio.core, deepImageJ, ilastik) run "
        "without napari-colorize. Needs pip install 'napari-colorize[bioimageio]'.",
    )
    p.add_argument("model", metavar="MODEL", help="registered model name or checkpoint file")
    p.add_argument("--bioimageio", required=True, metavar="OUT.zip", help="package to write")
    p.add_argument("--name", help="the package's name (default: from the model)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT.zip")


def _run_export(args) -> int:
    from .export import export_bioimageio

    path = export_bioimageio(args.model, args.bioimageio, name=args.name, overwrite=args.overwrite)
    print(f"wrote {path}; use it with --model {path} (bioimageio.core: bioimageio test {path})")
    return 0


# ---------------------------------------------------------------- commands

_COMMANDS = ["models", "evaluate", "train", "colorize", "export", "demo"]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``napari-colorize`` command."""
    parser = argparse.ArgumentParser(
        prog="napari-colorize",
        description="Colorize grayscale images with neural networks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        globals()[f"_add_{name}"](sub)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    from .errors import ColorizeError

    restore = _stop_on_sigterm()
    try:
        return globals()[f"_run_{args.command}"](args)
    except (ColorizeError, ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        restore()


def _stop_on_sigterm():
    """Make SIGTERM (``kill``, a batch scheduler) stop like Ctrl+C: temporary files removed.

    Returns the function that puts the previous handler back.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    return lambda: signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
