"""Each model's card: what it is for, what it was trained on, its input size, its working
size, its download size and its measured figures.
"""

from __future__ import annotations

import json
import sys

from .common import finite

HELP = "list the registered models with their cards"


def add_arguments(p) -> None:
    """Declare the ``models`` subcommand's arguments on its parser ``p``."""
    p.add_argument("names", nargs="*", metavar="NAME", help="only these models (or methods)")
    p.add_argument("--json", action="store_true", help="print the list as JSON")


def _models_rows(names) -> list[dict]:
    """The registry's rows, then the training-free methods, limited to ``names``."""
    from ..cards import method_cards
    from ..registry import list_models, model_card

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


def run(args) -> int:
    """Run ``models``; the exit status."""
    from ..cards import card_lines

    models = _models_rows(args.names)
    if args.json:
        print(json.dumps(finite(models), indent=2, default=str))
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
