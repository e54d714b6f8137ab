"""The ``napari-colorize`` command: colorize, train, evaluate, models, demo.

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
    p = sub.add_parser("models", help="list the registered models")
    p.add_argument("--json", action="store_true", help="print the list as JSON")


def _format_size(n_bytes) -> str:
    if n_bytes is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000
    return "-"


def _finite(value):
    """NaN/inf metrics become null, so that ``--json`` prints strict JSON."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _run_models(args) -> int:
    from .registry import list_models

    models = list_models()
    if args.json:
        print(json.dumps(_finite(models), indent=2, default=str))
        return 0
    rows = [("name", "arch", "source", "size", "local", "trained on", "metrics")]
    for m in models:
        metrics = ", ".join(
            f"{k}={v:.3g}"
            for k, v in (m.get("metrics") or {}).items()
            if isinstance(v, (int, float))
        )
        data = m.get("data")
        if isinstance(data, (dict, list)):
            data = json.dumps(data)
        rows.append(
            (
                m["name"],
                m["arch"],
                m["source"],
                _format_size(m.get("size")),
                "yes" if m.get("available") else "no",
                str(data or "-"),
                metrics or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    for m in models:
        if m.get("error"):
            print(f"{m['name']}: {m['error']}", file=sys.stderr)
    if any(m["source"] == "url" and not m.get("available") for m in models):
        print("(models with local=no are downloaded on first use)", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- commands

_COMMANDS = ["models"]


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

    try:
        return globals()[f"_run_{args.command}"](args)
    except (ColorizeError, ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
