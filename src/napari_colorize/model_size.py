"""How much memory a model needs, known before it is built.

A model file's config decides the size of the module built from it. A config
edited or corrupted to ask for, say, 65536 channels would allocate hundreds of
gigabytes before its weights are even compared with the file's, so
:func:`check_model_size` builds the model on torch's ``meta`` device first (no
memory, no initialisation) and refuses what cannot fit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping

from .errors import CheckpointError

__all__ = ["available_memory", "check_model_size", "estimate_bytes"]

#: Below this a model is never refused for not matching its file's weights.
_SMALL = 256 * 2**20
#: A config asking for this many times the bytes its file holds is not the file's config.
_MISMATCH = 4
#: (cache_key, config as JSON) -> bytes; spectral-norm models take ~0.5 s to build on meta.
_ESTIMATES: dict = {}


def estimate_bytes(build: Callable, config, *, cache_key=None) -> int | None:
    """Bytes of the tensors (parameters and buffers) of the model ``build(config)``.

    Parameters
    ----------
    build : callable
        ``build(config) -> torch.nn.Module``, e.g. a registered architecture's
        :func:`~napari_colorize.registry.build_model`.
    config : dict, config dataclass instance or None
    cache_key : hashable, optional
        What identifies ``build`` (e.g. the architecture's registration); the
        estimate is remembered for it and the config.

    Returns
    -------
    int or None
        None when the model cannot be built on the ``meta`` device (an invalid
        config, or a module that needs real tensors to initialise); building it
        for real then says what is wrong.
    """
    import torch

    if cache_key is not None:
        try:
            key = (cache_key, json.dumps(_config_dict(config), sort_keys=True, default=repr))
            hash(key)
        except (TypeError, ValueError):
            key = None
    else:
        key = None
    if key is not None and key in _ESTIMATES:
        return _ESTIMATES[key]
    try:
        with torch.device("meta"):
            model = build(config)
        tensors = model.state_dict().values()
        size = int(sum(t.numel() * t.element_size() for t in tensors))
    except Exception:
        size = None
    if key is not None:
        _ESTIMATES[key] = size
    return size


def available_memory() -> int | None:
    """Bytes of memory this process can still get, or None if unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _config_dict(config) -> dict:
    from .checkpoint import config_to_dict

    try:
        return config_to_dict(config)
    except TypeError:
        return {}


def _culprits(build: Callable, config: dict, need: int) -> list[str]:
    """The config keys that make the model big: reset to the default, it shrinks to < half."""
    found = []
    for key in config:
        smaller = {k: v for k, v in config.items() if k != key}
        size = estimate_bytes(build, smaller)
        if size is not None and size < need / 2:
            found.append(key)
    return found


def _describe(config: dict, keys: list[str]) -> str:
    def short(value) -> str:
        text = repr(list(value) if isinstance(value, tuple) else value)
        return text if len(text) <= 60 else text[:57] + "..."

    return ", ".join(f"{k}={short(config[k])}" for k in keys)


def check_model_size(
    build: Callable, config, *, state: Mapping | None = None, source=None, cache_key=None
) -> None:
    """Refuse a model too big for this machine, or far bigger than its file's weights.

    Parameters
    ----------
    build : callable
        ``build(config) -> torch.nn.Module``; called on the ``meta`` device only.
    config : dict, config dataclass instance or None
        The config the model would be built with.
    state : dict of tensors, optional
        The weights it will be loaded with (a config asking for many times
        their size does not belong to them).
    source : path-like, optional
        The file the config came from, for the message.
    cache_key : hashable, optional
        See :func:`estimate_bytes`.

    Raises
    ------
    CheckpointError
        Naming the config key(s) that ask for the size, the size, and the
        memory available (or the size of the file's weights).
    """
    need = estimate_bytes(build, config, cache_key=cache_key)
    if need is None:
        return
    have = None
    if state is not None:
        have = int(sum(t.numel() * t.element_size() for t in state.values()))
    free = available_memory()
    too_big = free is not None and need > free
    mismatch = have is not None and need > _SMALL and need > _MISMATCH * max(have, 1)
    if not (too_big or mismatch):
        return
    values = _config_dict(config)
    keys = _culprits(build, values, need) or list(values)
    where = f"the model in {str(source)!r}" if source is not None else "the model"
    asks = f" (its config asks for {_describe(values, keys)})" if keys else ""
    message = f"{where} would need {_gb(need)} of memory for its weights{asks}"
    if mismatch:
        message += (
            f", but the file holds {_gb(have)} of weights: its config is wrong (edited or "
            "corrupted); save the model again with the config it was trained with"
        )
    else:
        message += (
            f", more than the {_gb(free)} of memory available; use a smaller config, or a "
            "machine with more memory"
        )
    raise CheckpointError(message)
