"""Loaded models kept for reuse: a small LRU cache keyed by name or file and device.

:func:`napari_colorize.inference.colorize` and a :class:`~.colorizer.Colorizer` given a
model name or checkpoint path load through it, so that repeated calls do not
read the weights again; a file changed on disk is loaded anew.
"""

from __future__ import annotations

import collections
import os
import threading

__all__ = ["cached_model", "clear_model_cache", "model_key"]

#: How many loaded models :func:`colorize` keeps.
_MODEL_CACHE_SIZE = 4

_models: collections.OrderedDict = collections.OrderedDict()
_models_lock = threading.Lock()


def model_key(name_or_path, device) -> tuple:
    text = os.fspath(name_or_path)
    stamp = None
    if os.path.isfile(text):
        # a retrained file at the same path must not be served from the cache
        info = os.stat(text)
        text, stamp = os.path.abspath(text), (info.st_mtime_ns, info.st_size)
    return text, str(device), stamp


def cached_model(name_or_path, device):
    """``registry.load_model`` through a small LRU cache of loaded models."""
    key = model_key(name_or_path, device)
    with _models_lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
    from ..models.folding import prepare_for_inference
    from ..registry import load_model

    model, meta = load_model(name_or_path, device=str(device))
    # for inference only: BatchNorm folded, fused calls (the same function, faster)
    model = prepare_for_inference(model, device)
    with _models_lock:
        _models[key] = (model, meta)
        while len(_models) > _MODEL_CACHE_SIZE:
            _models.popitem(last=False)
    return model, meta


def clear_model_cache() -> None:
    """Forget the models :func:`colorize` and named :class:`Colorizer` models keep loaded."""
    with _models_lock:
        _models.clear()
