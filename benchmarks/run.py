"""The one entry point of the benchmarks: ``python -m benchmarks.run [--quick] [--model NAME]``.

Runs every suite in :data:`SUITES` (or those named with ``--suite``); each
prints its results and updates its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: Suite name -> module with ``add_arguments(parser)`` (optional) and ``main(args) -> int``.
SUITES = {
    "speed": "benchmarks.speed",
    "any-image": "benchmarks.any_image",
    "temporal": "benchmarks.temporal",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description="Run the napari-colorize benchmarks."
    )
    parser.add_argument("--quick", action="store_true", help="small sizes only, a smoke test")
    parser.add_argument("--model", default="beta-punks", help="model name or checkpoint file")
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
        status |= importlib.import_module(SUITES[name]).main(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
