"""Training colorizers: a trainer that is a generator of events, its tasks, losses and presets.

Importing this package is cheap; torch loads with the first trainer.
"""

from __future__ import annotations

import importlib

__all__ = [
    "PRESETS",
    "CheckpointEvent",
    "ColorizationTask",
    "DoneEvent",
    "PreviewEvent",
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
]

_LAZY = {
    "CheckpointEvent": "events",
    "DoneEvent": "events",
    "PreviewEvent": "events",
    "StartEvent": "events",
    "StepEvent": "events",
    "TrainEvent": "events",
    "TrainResult": "events",
    "ValidationEvent": "events",
    "ColorizationTask": "task",
    "TrainConfig": "trainer",
    "Trainer": "trainer",
    "export_model": "trainer",
    "PRESETS": "presets",
    "get_preset": "presets",
    "list_presets": "presets",
}


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
