"""Nested training state (optimizer, RNG, ...) <-> tensors plus JSON.

safetensors holds only tensors: :func:`flatten_state` takes the tensors and numpy
arrays out of a nested structure and encodes the rest as JSON, so that a
checkpoint (:func:`napari_colorize.checkpoint.save_checkpoint`'s
``training_state`` and ``training_meta``) can hold it; :func:`unflatten_state`
rebuilds the exact structure and types.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import CheckpointError

__all__ = ["flatten_state", "unflatten_state"]

_MARKERS = ("__tensor__", "__ndarray__", "__tuple__", "__dict__", "__float__")


def flatten_state(state, prefix: str = "") -> tuple[dict, Any]:
    """Split a nested state (e.g. ``optimizer.state_dict()``) into tensors and JSON.

    safetensors holds only tensors, so tensors (and numpy arrays) are taken out and
    replaced by references; everything else (ints, floats including nan/inf, str,
    bool, None, lists, tuples, dicts with any JSON-able keys) is encoded so that
    :func:`unflatten_state` rebuilds the exact same structure and types.

    Parameters
    ----------
    state : object
        Nested dicts/lists/tuples of tensors, numpy arrays and plain values.
    prefix : str
        Prepended to the tensor names, so several states can share one dict
        (e.g. ``"optimizer/"``, ``"rng/"``).

    Returns
    -------
    tensors : dict[str, torch.Tensor]
        To pass (merged with others) as ``training_state`` to :func:`save_checkpoint`.
    json_meta : JSON-able
        To store in ``training_meta``.
    """
    import numpy as np
    import torch

    tensors: dict = {}

    def name_for(path: str) -> str:
        base = prefix + (path.strip("/") or "value")
        name, i = base, 1
        while name in tensors:
            name, i = f"{base}#{i}", i + 1
        return name

    def enc(obj, path: str):
        if isinstance(obj, torch.Tensor):
            name = name_for(path)
            tensors[name] = obj.detach()
            return {"__tensor__": name}
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                raise TypeError(f"cannot store the object array at {path!r} in a checkpoint")
            name = name_for(path)
            raw = np.ascontiguousarray(obj).reshape(-1).view(np.uint8)
            tensors[name] = torch.from_numpy(raw.copy())
            return {"__ndarray__": name, "dtype": obj.dtype.str, "shape": list(obj.shape)}
        if obj is None or isinstance(obj, (bool, int, str)):
            return obj
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"__float__": repr(obj)}
        if isinstance(obj, np.generic):
            return enc(obj.item(), path)
        if isinstance(obj, tuple):
            return {"__tuple__": [enc(v, f"{path}/{i}") for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [enc(v, f"{path}/{i}") for i, v in enumerate(obj)]
        if isinstance(obj, Mapping):
            plain = all(isinstance(k, str) and k not in _MARKERS for k in obj)
            if plain:
                return {k: enc(v, f"{path}/{k}") for k, v in obj.items()}
            return {
                "__dict__": [
                    [enc(k, f"{path}/key"), enc(v, f"{path}/{k}")] for k, v in obj.items()
                ]
            }
        raise TypeError(
            f"cannot store a {type(obj).__name__} (at {path or 'the top'!r}) in a checkpoint: "
            "only tensors, numpy arrays, numbers, strings, None, lists, tuples and dicts"
        )

    return tensors, enc(state, "")


def unflatten_state(tensors: Mapping, json_meta):
    """Rebuild the structure split by :func:`flatten_state`.

    Parameters
    ----------
    tensors : dict[str, torch.Tensor]
        E.g. ``Checkpoint.training_state``; may hold more tensors than needed.
    json_meta : JSON-able
        The second value returned by :func:`flatten_state`.
    """
    import numpy as np

    def tensor(name):
        try:
            return tensors[name]
        except KeyError:
            raise CheckpointError(
                f"the training state lacks the tensor {name!r}; the checkpoint is incomplete "
                "(resume from another one, or start training afresh)"
            ) from None

    def dec(obj):
        if isinstance(obj, list):
            return [dec(v) for v in obj]
        if not isinstance(obj, dict):
            return obj
        if len(obj) == 1 and "__tensor__" in obj:
            return tensor(obj["__tensor__"])
        if "__ndarray__" in obj and set(obj) == {"__ndarray__", "dtype", "shape"}:
            raw = tensor(obj["__ndarray__"]).numpy().tobytes()
            return np.frombuffer(raw, dtype=np.dtype(obj["dtype"])).reshape(obj["shape"]).copy()
        if len(obj) == 1 and "__tuple__" in obj:
            return tuple(dec(v) for v in obj["__tuple__"])
        if len(obj) == 1 and "__float__" in obj:
            return float(obj["__float__"])
        if len(obj) == 1 and "__dict__" in obj:
            return {dec(k): dec(v) for k, v in obj["__dict__"]}
        return {k: dec(v) for k, v in obj.items()}

    return dec(json_meta)
