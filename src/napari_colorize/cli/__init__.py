"""The ``napari-colorize`` command: colorize, train, evaluate, models, export, demo.

Each subcommand only parses its arguments, calls the library and prints; the
work itself lives in the library modules. Each subcommand has a module here:
its docstring is the subcommand's description (``napari-colorize NAME --help``),
``HELP`` its line in ``napari-colorize --help``, ``add_arguments(parser)``
declares its arguments and ``run(args)`` runs it and returns the exit status.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from . import colorize, demo, evaluate, export, models, train
from .common import fail

__all__ = ["build_parser", "main"]

_COMMANDS = {
    "models": models,
    "evaluate": evaluate,
    "train": train,
    "colorize": colorize,
    "export": export,
    "demo": demo,
}


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``napari-colorize`` command."""
    parser = argparse.ArgumentParser(
        prog="napari-colorize",
        description="Colorize grayscale images with neural networks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in _COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.HELP, description=command.__doc__))
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    from ..errors import ColorizeError

    restore = _stop_on_sigterm()
    try:
        return _COMMANDS[args.command].run(args)
    except (ColorizeError, ValueError, FileNotFoundError) as exc:
        return fail(str(exc))
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
