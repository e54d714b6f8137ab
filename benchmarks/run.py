"""The one entry point of the benchmarks: ``python -m benchmarks.run [--quick] [--suite NAME]``.

Runs every suite in :data:`SUITES` (or those named with ``--suite``); each
prints its results and updates its section of ``docs/benchmarks.md``
(``--quick``: every suite's smoke test, nothing written). A suite is a module
with ``main(args) -> int``, ``args`` being this parser's namespace, and
optionally ``add_arguments(parser)`` for options of its own (named after the
suite, since all suites share one parser); ``python -m benchmarks.NAME ARGS``
is ``python -m benchmarks.run --suite NAME ARGS``. One-off experiments are in
:mod:`benchmarks.experiments`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: Suite name -> module with ``add_arguments(parser)`` (optional) and ``main(args) -> int``.
SUITES = {
    "quality": "benchmarks.quality",
    "training": "benchmarks.training",
    "speed": "benchmarks.speed",
    "gan-memory": "benchmarks.gan_memory",
    "full": "benchmarks.full",
    "hints": "benchmarks.hints",
    "gan-quality": "benchmarks.gan_quality",
    "any-image": "benchmarks.any_image",
    "temporal": "benchmarks.temporal",
    "native": "benchmarks.native",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description="Run the napari-colorize benchmarks."
    )
    parser.add_argument("--quick", action="store_true", help="small sizes only, a smoke test")
    parser.add_argument("--model", default="beta-punks", help="model name or checkpoint file")
    parser.add_argument("--device", default="cpu",
                        help="device of the suites that score models (default cpu)")  # fmt: skip
    parser.add_argument(
        "--suite", action="append", choices=sorted(SUITES), help="run only this suite (repeatable)"
    )
    write = parser.add_mutually_exclusive_group()
    write.add_argument("--write", dest="write", action="store_true", default=None,
                       help="update docs/benchmarks.md (default unless --quick)")  # fmt: skip
    write.add_argument("--no-write", dest="write", action="store_false")
    for module in SUITES.values():
        add = getattr(importlib.import_module(module), "add_arguments", None)
        if add is not None:
            add(parser)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.write is None:
        args.write = not args.quick
    args.command = "python -m benchmarks.run " + " ".join(
        sys.argv[1:] if argv is None else list(argv)
    )
    status = 0
    for name in args.suite or list(SUITES):
        print(f"== {name}", flush=True)
        status |= importlib.import_module(SUITES[name]).main(args)
    return status


def run_suite(name: str, argv=None) -> int:
    """``python -m benchmarks.NAME ARGS``: :func:`main` with ``--suite NAME ARGS``."""
    return main(["--suite", name, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
