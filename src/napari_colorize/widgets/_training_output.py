"""Where a Training widget run writes its model, and what a run that trained nothing leaves.

Plain path logic (no Qt): a fresh default file name per run, so that a second
run never replaces the first one's checkpoint unasked; the line that asks
before a file the user chose is overwritten; and the test for a run that
ended before its first training step (such a model is neither kept nor
registered).
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "next_free_output",
    "nothing_trained_line",
    "output_path",
    "overwrite_warning",
    "trained_nothing",
]

SUFFIX = ".safetensors"
_NUMBERED = re.compile(r"^(?P<stem>.*?)-(?P<n>\d+)$")


def output_path(value) -> Path:
    """The checkpoint file of the output field's ``value`` (``.safetensors`` added).

    Raises
    ------
    ValueError
        The field is empty.
    """
    out = str(value).strip()
    if not out or out == ".":
        raise ValueError("choose an output file for the trained model (.safetensors)")
    path = Path(out).expanduser()
    if path.suffix != SUFFIX:
        path = path.with_name(path.name + SUFFIX)
    return path


def next_free_output(path) -> Path:
    """``path`` if no file is there, else the first free ``stem-2``, ``stem-3``... beside it.

    A name that already ends in ``-N`` counts on from N: ``run-2`` -> ``run-3``.
    """
    path = output_path(path)
    if not path.exists():
        return path
    stem = path.name[: -len(SUFFIX)]
    match = _NUMBERED.match(stem)
    base, n = (match["stem"], int(match["n"])) if match else (stem, 1)
    while True:
        n += 1
        candidate = path.with_name(f"{base}-{n}{SUFFIX}")
        if not candidate.exists():
            return candidate


def overwrite_warning(path) -> str:
    """The line that asks before a run replaces the existing file ``path``."""
    return (
        f"{Path(path).name} exists (a model trained before?): press Overwrite to replace it, "
        "Resume to continue training it, or choose another output file"
    )


def trained_nothing(result, first_step: int | None) -> bool:
    """Whether the run ``result`` (a ``TrainResult``) ended without a single training step.

    ``first_step`` is the step the run started from (its ``StartEvent.step``;
    more than 0 when resuming), None when no ``StartEvent`` came: the trainer
    then took no step.
    """
    return first_step is None or int(result.step) <= int(first_step)


def nothing_trained_line(result) -> str:
    """The status of a run that ended without a training step: why, and that nothing is kept."""
    if result.stopped or result.step < result.total_steps:
        why = "stopped before the first step"
    else:
        why = f"the run had already done {result.step} of {result.total_steps} steps"
        why += "; raise 'train for' to train on"
    return f"nothing was trained ({why}): no model was registered"
