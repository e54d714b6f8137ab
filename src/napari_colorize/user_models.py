"""The user's registered models: a name -> checkpoint path table, persisted as JSON.

:func:`napari_colorize.registry.register_model` adds to it (``persist=True`` also
writes :func:`user_models_file`); :func:`user_entries` reads the file on first
use. A file that is unreadable, or that names a checkpoint that no longer exists,
is skipped with a warning that says how to fix it.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from .atomic import atomic_write
from .model_entries import APP, PretrainedModel

__all__ = ["DATA_ENV", "reload_user_models", "user_entries", "user_models_file"]

DATA_ENV = "NAPARI_COLORIZE_DATA"
_user_models: dict[str, PretrainedModel] | None = None


def _data_dir() -> Path:
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP))


def user_models_file() -> Path:
    """The JSON file holding the models registered with ``persist=True``.

    Under ``platformdirs.user_data_dir("napari-colorize")`` (or ``$NAPARI_COLORIZE_DATA``).
    """
    return _data_dir() / "models.json"


def read_user_file() -> dict:
    """The ``models`` object of :func:`user_models_file` (empty, with a warning, if unreadable)."""
    path = user_models_file()
    if not path.exists():
        return {}
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        models = content["models"]
        if not isinstance(models, dict):
            raise TypeError("'models' is not an object")
        return models
    except (OSError, ValueError, KeyError, TypeError) as exc:
        warnings.warn(
            f"ignoring the registered models in {path}: the file cannot be read ({exc}); "
            "delete or fix it",
            stacklevel=3,
        )
        return {}


def write_user_file(models: dict) -> None:
    """Replace the ``models`` of :func:`user_models_file`, atomically."""
    text = json.dumps({"version": 1, "models": models}, indent=2, sort_keys=True)
    atomic_write(user_models_file(), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def reload_user_models() -> None:
    """Read the persisted user models again (done automatically on first use)."""
    global _user_models
    loaded = {}
    for name, info in read_user_file().items():
        try:
            path = Path(info["path"])
            description = str(info.get("description", ""))
        except (KeyError, TypeError):
            warnings.warn(f"ignoring the malformed registered model {name!r}", stacklevel=2)
            continue
        if not path.is_file():
            warnings.warn(
                f"registered model {name!r} points to {str(path)!r}, which no longer exists; "
                f"skipped. Register it again, or remove it with "
                f"napari_colorize.registry.unregister_model({name!r})",
                stacklevel=2,
            )
            continue
        loaded[name] = PretrainedModel(name, "", description, "path", str(path))
    _user_models = loaded


def user_entries() -> dict[str, PretrainedModel]:
    """The registered user models (the live table), read from the file on first use."""
    if _user_models is None:
        reload_user_models()
    return _user_models  # type: ignore[return-value]
