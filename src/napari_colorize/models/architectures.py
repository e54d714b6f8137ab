"""The architecture table: name -> model class, config dataclass and description.

Each entry is one line of import strings (``"module:Class"``), resolved only
when a model is built, so listing is cheap and an architecture whose module is
missing fails with a clear message only when it is used. This module sits
below both :mod:`napari_colorize.checkpoint` (which checks a file's ``arch``
against it) and :mod:`napari_colorize.registry` (the named models, which
re-exports these functions); it imports neither, nor torch at import time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import typing
from collections.abc import Mapping
from typing import Any

from ..errors import ColorizeError, UnknownModelError

__all__ = [
    "architecture_entry",
    "architectures",
    "build_model",
    "describe_architectures",
    "import_string",
    "matching_architectures",
    "register_architecture",
]

_M = "napari_colorize.models"
#: name -> (model class, config dataclass, description); import strings, loaded lazily.
_ARCHITECTURES: dict[str, tuple[Any, Any, str]] = {
    "alpha": (f"{_M}.alpha:AlphaColorizer", f"{_M}.alpha:AlphaConfig",
              "small conv encoder-decoder, L -> ab, fit to one image"),
    "beta": (f"{_M}.beta:BetaColorizer", f"{_M}.beta:BetaConfig",
             "the alpha family trained on many images"),
    "full": (f"{_M}.full:FusionColorizer", f"{_M}.full:FusionConfig",
             "beta's encoder fused with an Inception v3 class embedding (Deep Koalarization)"),
    "gan": (f"{_M}.gan:UNetColorizer", f"{_M}.gan:UNetConfig",
            "pix2pix U-Net generator with spectral norm and self-attention (pix2pixHD losses)"),
    "inception": (f"{_M}.inception:InceptionV3", f"{_M}.inception:InceptionConfig",
                  "Inception v3 classifier giving the class probabilities"),
    "eccv16": (f"{_M}.zhang:ECCV16Colorizer", f"{_M}.zhang:ECCV16Config",
               "Zhang et al. 2016, 313 quantised ab bins"),
    "siggraph17": (f"{_M}.zhang:SIGGRAPH17Colorizer", f"{_M}.zhang:SIGGRAPH17Config",
                   "Zhang et al. 2017, user-guided: L + ab hints + hint mask"),
}  # fmt: skip


def architectures() -> list[str]:
    """Names of the registered architectures, in registration order."""
    return list(_ARCHITECTURES)


def describe_architectures() -> list[dict]:
    """The architectures with their description and model/config classes (as strings)."""
    return [
        {"name": n, "model": _qualname(m), "config": _qualname(c), "description": d}
        for n, (m, c, d) in _ARCHITECTURES.items()
    ]


def register_architecture(
    name: str, module_cls, config_cls, description: str = "", *, replace: bool = False
) -> None:
    """Register an architecture (used by tests and plugins).

    Parameters
    ----------
    name : str
        The name stored in checkpoints (``arch``).
    module_cls : type or str
        The ``nn.Module`` class taking a config instance, or ``"module:Class"``.
    config_cls : type or str
        The config dataclass, or ``"module:Class"``.
    description : str
    replace : bool
        Allow replacing an existing registration.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("an architecture name must be a non-empty string")
    if name in _ARCHITECTURES and not replace:
        raise ValueError(
            f"architecture {name!r} is already registered; pick another name or pass replace=True"
        )
    _ARCHITECTURES[name] = (module_cls, config_cls, description)


def _qualname(obj) -> str:
    if isinstance(obj, str):
        return obj
    return f"{obj.__module__}:{obj.__qualname__}"


def import_string(spec, what: str):
    """Resolve ``"package.module:attr"`` (or return a non-string as it is)."""
    if not isinstance(spec, str):
        return spec
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise ColorizeError(
                f"{what} needs the module {module_name}, which this installation of "
                "napari-colorize does not have (not written yet, or an incomplete install); "
                "upgrade or reinstall napari-colorize"
            ) from exc
        raise ColorizeError(
            f"{what} needs the package {exc.name!r}, which is not installed: "
            f"pip install {exc.name}"
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise ColorizeError(
            f"{what} needs {spec}, but {module_name} has no {attr!r}; "
            "upgrade or reinstall napari-colorize"
        ) from exc


def architecture_entry(arch: str) -> tuple:
    """``(model class, config class, description)`` of ``arch`` (classes may be import strings)."""
    try:
        return _ARCHITECTURES[arch]
    except (KeyError, TypeError):
        raise UnknownModelError(
            f"unknown architecture {arch!r}; known architectures: {', '.join(_ARCHITECTURES)}"
        ) from None


def _coerce(value, annotation, default):
    """Undo JSON's lossy bits: lists back to tuples, dicts back to nested dataclasses."""
    if (
        isinstance(annotation, type)
        and dataclasses.is_dataclass(annotation)
        and isinstance(value, Mapping)
    ):
        return _config_from_dict(annotation, value, f"config field of type {annotation}")
    if isinstance(value, list):
        origin = typing.get_origin(annotation)
        if isinstance(default, tuple) or annotation is tuple or origin is tuple:
            return tuple(value)
    return value


def _config_from_dict(config_cls, values: Mapping, arch: str):
    if hasattr(config_cls, "from_dict"):
        return config_cls.from_dict(dict(values))
    if not dataclasses.is_dataclass(config_cls):
        return config_cls(**values)
    fields = {f.name: f for f in dataclasses.fields(config_cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown config field(s) for architecture {arch!r}: {', '.join(unknown)}; "
            f"valid fields: {', '.join(fields)}"
        )
    try:
        hints = typing.get_type_hints(config_cls)
    except Exception:  # unresolvable forward references: no coercion by annotation
        hints = {}
    kwargs = {}
    for key, value in values.items():
        f = fields[key]
        default = f.default if f.default is not dataclasses.MISSING else None
        if default is None and f.default_factory is not dataclasses.MISSING:
            with contextlib.suppress(Exception):
                default = f.default_factory()
        annotation = hints.get(key)
        if annotation is None and default is not None:
            annotation = type(default)
        kwargs[key] = _coerce(value, annotation, default)
    try:
        return config_cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"invalid config for architecture {arch!r}: {exc}") from exc


def build_model(arch: str, config=None):
    """Build an untrained model of a registered architecture.

    Parameters
    ----------
    arch : str
        Architecture name (see :func:`architectures`).
    config : dict, config dataclass instance or None
        Config fields; missing ones take the dataclass defaults. JSON lists are
        turned back into tuples where the field is a tuple.

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    UnknownModelError
        ``arch`` is not registered.
    ValueError
        ``config`` has fields the config dataclass does not know (the message lists
        the valid ones).
    ColorizeError
        The architecture's module is not available in this installation.
    """
    module_spec, config_spec, _ = architecture_entry(arch)
    what = f"architecture {arch!r}"
    config_cls = import_string(config_spec, what)
    module_cls = import_string(module_spec, what)
    if config is None:
        config = config_cls()
    elif isinstance(config, Mapping):
        config = _config_from_dict(config_cls, config, arch)
    elif not isinstance(config, config_cls):
        raise TypeError(
            f"config for architecture {arch!r} must be a dict or a {config_cls.__name__}, "
            f"not {type(config).__name__}"
        )
    return module_cls(config)


def matching_architectures(state: Mapping) -> list[str]:
    """Architectures whose default-config model has exactly the keys and shapes of ``state``.

    The candidates are built on torch's ``meta`` device (no memory, no init cost);
    those whose module is unavailable or fails to build are skipped.
    """
    import torch

    shapes = {k: tuple(v.shape) for k, v in state.items()}
    found = []
    for arch in _ARCHITECTURES:
        try:
            with torch.device("meta"):
                model = build_model(arch)
            theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        except Exception:
            continue
        if theirs == shapes:
            found.append(arch)
    return found
