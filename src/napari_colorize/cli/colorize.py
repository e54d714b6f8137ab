"""Colorize images, keeping their size; a multi-page tif becomes an RGB tif stack.

OUT is the result file for one input, else a folder (results keep their input's name).
Inputs and existing outputs are never overwritten without --overwrite.
"""

from __future__ import annotations

import sys

from ..devices import PRECISIONS
from .common import fail

HELP = "colorize image files or folders (png, jpg, tif incl. 16-bit and stacks)"


def add_arguments(p) -> None:
    """Declare the ``colorize`` subcommand's arguments on its parser ``p``."""
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
    p.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="the network's precision: auto (bf16/fp16 on CUDA; on a CPU with AMX, bf16 if "
        "the model records that bf16 keeps its colours within 0.1 CIEDE2000 of float32 on its "
        "quality set, or for a model without that record if a check on the image does; else "
        "float32; NAPARI_COLORIZE_PRECISION sets it), or force one",
    )
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


def _colorizer_options(args) -> dict:
    """The Colorizer options the command line sets (None: the Colorizer's default)."""
    options = {"device": args.device, "tile": args.tile, "batch_size": args.batch_size}
    options = {k: v for k, v in options.items() if v is not None}
    if args.temporal:
        options["temporal"] = True
    if args.precision != "auto":
        options["precision"] = args.precision
    if args.chroma_size is not None:
        options["chroma_size"] = args.chroma_size or None  # 0: full resolution
    return options


def run(args) -> int:
    """Run ``colorize``; the exit status."""
    from ..cluster import is_zarr
    from ..ome_zarr import is_ome_zarr

    plain_zarr = any(is_zarr(p) and not is_ome_zarr(p) for p in args.inputs)
    if args.scheduler is not None or args.workers is not None or plain_zarr:
        return _run_colorize_zarr(args)
    from tqdm import tqdm

    from ..files import colorize_file, find_images, plan_jobs, remove_stale_temporaries

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
    colorizer = _colorizer_factory(args, _colorizer_options(args))
    for folder in {job.target.parent for job in jobs}:
        for path in remove_stale_temporaries(folder):
            tqdm.write(f"napari-colorize: removed {path}, left by an interrupted run")
    written = 0
    said = set()  # what "auto" precision chose and why, said once
    with tqdm(total=len(jobs), unit="file", desc="colorize", dynamic_ncols=True) as bar:
        for i, job in enumerate(jobs):
            bar.set_postfix_str(job.source.name)

            def progress(event, bar=bar, i=i, name=job.source.name):
                note = _precision_note(event.message)
                if note and note not in said:
                    said.add(note)
                    tqdm.write(f"napari-colorize: {name}: {note}", file=sys.stderr)
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

    from ..cluster import check_paths, colorize_zarr, connect, is_zarr

    if len(args.inputs) != 1 or not is_zarr(args.inputs[0]):
        return fail(
            "--scheduler and --workers colorize one zarr array (a folder IN.zarr); got "
            + ", ".join(args.inputs)
        )
    options = _colorizer_options(args)
    model = args.model
    if args.reference:
        if model not in (None, "reference"):
            return fail(f"--reference cannot be combined with --model {model}")
        options["reference"] = _read_references(args.reference)
    if args.hints is not None:
        from ..hints import read_hints_csv

        def hints(layout, path=args.hints):
            return read_hints_csv(path, layout.leading_shape + layout.spatial_shape)

        options["hints"] = hints
    elif model == "propagate":
        return fail("--model propagate spreads colour hints: give --hints hints.csv")
    start = time.perf_counter()
    try:
        import dask.array  # noqa: F401

        if args.scheduler is not None or args.workers is not None:
            import distributed  # noqa: F401
    except ImportError:
        return fail(
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
    from ..files import find_images
    from ..image_files import read_image

    files, problems = find_images(paths)
    if problems:
        path, message = problems[0]
        raise ValueError(f"--reference {path}: {message}")
    return [read_image(path) for path in files]


def _precision_note(message: str) -> str:
    """The part of a progress message that says which precision "auto" chose and why."""
    if message.startswith("precision "):
        return message
    _, found, note = message.partition("; precision ")
    return f"precision {note}" if found else ""


def _colorizer_factory(args, options):
    """``layout -> Colorizer`` for each input file: its method, reference and hints."""
    from ..choice import default_method
    from ..guided import ReferenceColorizer
    from ..hints import read_hints_csv
    from ..inference import Colorizer

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
