"""Training colorizers: a trainer that is a generator of events, its tasks, losses and presets.

:func:`plan_run` builds a run from plain choices (a preset, or an architecture
or model to fine-tune; data, length, output, resume, device...); the CLI and
the Training widget both call it. Importing this package is cheap; torch loads
with the first trainer.
"""

from __future__ import annotations

from ..lazy_names import lazy_names
from .presets import PRESETS, get_preset, list_presets
from .run import RunPlan, plan_run

__all__ = [
    "PRESETS",
    "CheckpointEvent",
    "ColorizationTask",
    "PreviewEvent",
    "RunPlan",
    "StartEvent",
    "StepEvent",
    "TrainConfig",
    "TrainEvent",
    "TrainResult",
    "Trainer",
    "ValidationEvent",
    "export_model",
    "get_preset",
    "list_presets",
    "plan_run",
]

_LAZY = {
    "CheckpointEvent": "events",
    "PreviewEvent": "events",
    "StartEvent": "events",
    "StepEvent": "events",
    "TrainEvent": "events",
    "TrainResult": "events",
    "ValidationEvent": "events",
    "ColorizationTask": "task",
    "TrainConfig": "config",
    "Trainer": "trainer",
    "export_model": "trainer",
}

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
