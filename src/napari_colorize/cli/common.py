"""What the subcommands share: the error line, strict JSON and its atomic writing."""

from __future__ import annotations

import json
import sys


def fail(message: str) -> int:
    print(f"napari-colorize: error: {message}", file=sys.stderr)
    return 2


def finite(value):
    """NaN/inf metrics become null, so that ``--json`` prints strict JSON."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def write_json_atomic(path, data) -> None:
    from ..atomic import atomic_write

    text = json.dumps(finite(data), indent=2) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
