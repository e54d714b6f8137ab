"""One self-describing file per model: safetensors tensors plus JSON metadata.

A checkpoint holds the model's tensors as they are, the training state (optimizer,
RNG, ...) under the key prefix ``_train/``, and in the safetensors header
(``__metadata__``, str -> str) JSON for the architecture name, its config, what the
model was trained on, its metrics, extra inference hints (``chroma_size``,
``hints``), the training bookkeeping and the package version. Loading needs only
the file; nothing is unpickled. ``.pt``/``.pth`` files (plain state dicts, e.g.
published weights) are read only with ``torch.load(..., weights_only=True)``.

Every file this package writes goes through :func:`atomic_write` (in
:mod:`napari_colorize.atomic`, re-exported here): a crash mid-save leaves the
previous file intact. Nested training state (optimizer, RNG) is split into tensors
and JSON by :func:`flatten_state` (in :mod:`napari_colorize.nested_state`,
re-exported here).

torch, numpy and safetensors are imported inside the functions, so reading a
header (``napari-colorize models``) stays fast.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write
from .errors import CheckpointError, UnknownModelError, short_list
from .models.architectures import architectures, matching_architectures
from .nested_state import flatten_state, unflatten_state

__all__ = [
    "FORMAT_VERSION",
    "TRAIN_PREFIX",
    "Checkpoint",
    "CheckpointMeta",
    "atomic_write",
    "config_to_dict",
    "fit_advice",
    "flatten_state",
    "load_checkpoint",
    "load_state_into",
    "load_torch_state",
    "read_metadata",
    "save_checkpoint",
    "save_model",
    "unflatten_state",
]

#: Version of the file layout; bumped when old readers could misread a new file.
FORMAT_VERSION = 1
#: Key prefix of the training-state tensors inside a checkpoint.
TRAIN_PREFIX = "_train/"
#: Value of the ``format`` metadata key that marks our files.
FORMAT_NAME = "napari-colorize"
TORCH_SUFFIXES = (".pt", ".pth")
_MAX_HEADER = 100_000_000  # safetensors' own limit
_JSON_FIELDS = ("config", "data", "metrics", "extra", "training_meta")


# ----------------------------------------------------------------- data classes


@dataclass
class CheckpointMeta:
    """What a checkpoint says about itself.

    Attributes
    ----------
    arch : str or None
        Registered architecture name (``None`` for a plain ``.pt``/``.pth`` state dict).
    config : dict
        Keyword arguments of the architecture's config dataclass.
    data : object
        What the model was trained on (JSON: a spec string or a dict).
    metrics : dict
        Evaluation results (see :mod:`napari_colorize.metrics`).
    extra : dict
        Inference hints such as ``chroma_size`` and ``hints``.
    version : str or None
        The napari-colorize version that wrote the file.
    format : int
        File layout version; 0 for a plain PyTorch state dict.
    """

    arch: str | None
    config: dict = field(default_factory=dict)
    data: Any = None
    metrics: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    version: str | None = None
    format: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        """The fields as a JSON-able dict."""
        return dataclasses.asdict(self)


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes
    ----------
    model_state : dict[str, torch.Tensor]
        The model's ``state_dict`` (CPU tensors).
    meta : CheckpointMeta
    training_state : dict[str, torch.Tensor]
        Training tensors with the ``_train/`` prefix removed (empty when none).
    training_meta : dict or None
        JSON bookkeeping of the training run (step, epoch, optimizer hyper-parameters, ...).
    path : pathlib.Path or None
        The file it came from.
    """

    model_state: dict
    meta: CheckpointMeta
    training_state: dict = field(default_factory=dict)
    training_meta: dict | None = None
    path: Path | None = None


# ----------------------------------------------------------------- saving


def _json_default(obj):
    # numpy scalars/arrays and paths turn up in metrics and configs
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _to_json(value, what: str) -> str:
    try:
        return json.dumps(value, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"the checkpoint's {what} cannot be stored as JSON ({exc}); "
            "keep it to numbers, strings, lists and dicts"
        ) from exc


def config_to_dict(config) -> dict:
    """A config dataclass instance, a mapping or None as a plain dict."""
    if config is None:
        return {}
    if hasattr(config, "to_dict") and not isinstance(config, type):
        return dict(config.to_dict())
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if isinstance(config, Mapping):
        return dict(config)
    raise TypeError(f"config must be a dataclass instance or a dict, not {type(config).__name__}")


def _prepare_tensors(state: Mapping, prefix: str, what: str, seen: set, out: dict) -> None:
    import torch

    if not isinstance(state, Mapping):
        raise TypeError(
            f"{what} must be a dict of tensors (e.g. model.state_dict()), "
            f"not {type(state).__name__}"
        )
    for key, tensor in state.items():
        if not isinstance(key, str):
            raise TypeError(f"{what} keys must be strings; got {key!r}")
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(
                f"{what}[{key!r}] is a {type(tensor).__name__}, not a tensor; "
                "non-tensor values go into the metadata (flatten_state splits a nested state)"
            )
        if tensor.device.type == "meta":
            raise ValueError(f"{what}[{key!r}] is on the 'meta' device and holds no data")
        tensor = tensor.detach()
        if tensor.device.type != "cpu":
            tensor = tensor.cpu()
        elif tensor.numel():
            # Tied weights and views share storage, which safetensors refuses.
            ptr = tensor.untyped_storage().data_ptr()
            if ptr in seen:
                tensor = tensor.clone()
            seen.add(tensor.untyped_storage().data_ptr())
        out[prefix + key] = tensor.contiguous()


def save_checkpoint(
    path,
    model_state,
    *,
    arch: str,
    config=None,
    data=None,
    metrics=None,
    extra=None,
    training_state=None,
    training_meta=None,
) -> Path:
    """Save model weights and their description to one safetensors file, atomically.

    Parameters
    ----------
    path : str or path-like
        Destination, conventionally ``*.safetensors``.
    model_state : dict[str, torch.Tensor]
        ``model.state_dict()``; tensors are stored as they are (moved to the CPU,
        made contiguous, tied tensors cloned).
    arch : str
        Registered architecture name (see :func:`napari_colorize.registry.architectures`).
    config : dataclass instance or dict
        The architecture's config.
    data, metrics, extra : JSON-able, optional
        What it was trained on, its evaluation results, and inference hints such as
        ``{"chroma_size": 64, "hints": False}``.
    training_state : dict[str, torch.Tensor], optional
        Tensors needed to resume training (see :func:`flatten_state`), stored under
        the prefix ``_train/``.
    training_meta : JSON-able dict, optional
        Non-tensor training bookkeeping (step, epoch, optimizer hyper-parameters,
        the JSON half of :func:`flatten_state`).

    Returns
    -------
    pathlib.Path
    """
    from safetensors.torch import save_file

    from ._version import __version__

    if not isinstance(arch, str) or not arch:
        raise ValueError("arch must be the name of a registered architecture, e.g. 'beta'")
    tensors: dict = {}
    seen: set = set()
    _prepare_tensors(model_state, "", "model_state", seen, tensors)
    clash = [k for k in tensors if k.startswith(TRAIN_PREFIX)]
    if clash:
        raise ValueError(
            f"model_state keys may not start with {TRAIN_PREFIX!r} (reserved for the "
            f"training state): {clash[:5]}"
        )
    if training_state:
        _prepare_tensors(training_state, TRAIN_PREFIX, "training_state", seen, tensors)
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "napari_colorize_version": __version__,
        "arch": arch,
        "config": _to_json(config_to_dict(config), "config"),
        "data": _to_json(data, "data"),
        "metrics": _to_json(metrics or {}, "metrics"),
        "extra": _to_json(extra or {}, "extra"),
    }
    if training_meta is not None:
        metadata["training_meta"] = _to_json(training_meta, "training_meta")
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def save_model(path, model, *, arch: str, config=None, **kwargs) -> Path:
    """Save ``model.state_dict()`` with :func:`save_checkpoint`.

    ``config`` defaults to ``model.config`` when the model has one. Other keyword
    arguments (``data``, ``metrics``, ``extra``, ...) go to :func:`save_checkpoint`.
    """
    if config is None:
        config = getattr(model, "config", None)
    return save_checkpoint(path, model.state_dict(), arch=arch, config=config, **kwargs)


# ----------------------------------------------------------------- reading


def _check_file(path) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"model file {str(path)!r} does not exist; check the path, or use a "
            "registered model name (list them with `napari-colorize models`)"
        )
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.safetensors"))[:5]
        hint = f" (it holds {', '.join(inside)})" if inside else ""
        raise CheckpointError(
            f"{str(path)!r} is a directory, not a model file{hint}; "
            "give the path of a .safetensors file"
        )
    return path


def _read_header(path: Path) -> tuple[dict, dict | None]:
    """Parse and validate the safetensors header: (tensor entries, __metadata__)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(
                f"{str(path)!r} is empty or truncated ({size} bytes): not a complete "
                "model file; copy or save it again"
            )
        if head.startswith(b"PK\x03\x04"):
            raise CheckpointError(
                f"{str(path)!r} is a PyTorch (torch.save) file, not a safetensors file; "
                "give it a .pt or .pth suffix to load it as a plain state dict"
            )
        n = int.from_bytes(head, "little")
        if n > size - 8:
            if n < _MAX_HEADER and f.read(2) == b'{"':
                raise CheckpointError(
                    f"{str(path)!r} is truncated: its header alone needs {n + 8} bytes but "
                    f"the file has {size} (an interrupted copy or download?); copy, "
                    "download or save it again"
                )
            raise CheckpointError(
                f"{str(path)!r} is not a safetensors model file (corrupted, or some other "
                "kind of file); give the path of a .safetensors file saved by napari-colorize"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        meta = header.pop("__metadata__", None)
        ends = [int(entry["data_offsets"][1]) for entry in header.values()]
    except RecursionError:  # a header nested deeper than any model file is
        raise CheckpointError(
            f"{str(path)!r} has a malformed header (JSON nested too deep to read): it is not "
            "a napari-colorize model file; copy, download or save it again"
        ) from None
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise CheckpointError(
            f"{str(path)!r} is corrupted: its safetensors header cannot be read ({exc}); "
            "copy or save it again"
        ) from exc
    expected = 8 + n + max(ends, default=0)
    if size < expected:
        raise CheckpointError(
            f"{str(path)!r} is truncated: {size} bytes where its header promises "
            f"{expected} (an interrupted copy or download?); copy, download or save it again"
        )
    return header, meta


def _meta_from_header(path: Path, meta: dict | None) -> tuple[CheckpointMeta, dict | None]:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME or "arch" not in meta:
        raise CheckpointError(
            f"{str(path)!r} is a safetensors file but not a napari-colorize checkpoint "
            "(its metadata does not name an architecture); if it holds weights of a "
            "registered architecture, re-save them with "
            "napari_colorize.checkpoint.save_checkpoint(path, state, arch=..., config=...)"
        )
    try:
        fmt = int(meta.get("format_version", "0"))
    except ValueError:
        fmt = -1
    if fmt > FORMAT_VERSION or fmt < 1:
        raise CheckpointError(
            f"{str(path)!r} has checkpoint format {meta.get('format_version')!r}, which this "
            f"napari-colorize (format {FORMAT_VERSION}) cannot read; it was written by "
            f"version {meta.get('napari_colorize_version')}: upgrade napari-colorize"
        )
    parsed = {}
    for key in _JSON_FIELDS:
        if key not in meta:
            continue
        try:
            parsed[key] = json.loads(meta[key])
        except RecursionError:
            raise CheckpointError(
                f"{str(path)!r} has a malformed {key!r} metadata (JSON nested too deep to "
                "read): it is not a napari-colorize model file; save it again"
            ) from None
        except (TypeError, ValueError) as exc:
            raise CheckpointError(
                f"{str(path)!r} is corrupted: its {key!r} metadata is not valid JSON ({exc}); "
                "save it again"
            ) from exc
    info = CheckpointMeta(
        arch=meta["arch"],
        config=parsed.get("config") or {},
        data=parsed.get("data"),
        metrics=parsed.get("metrics") or {},
        extra=parsed.get("extra") or {},
        version=meta.get("napari_colorize_version"),
        format=fmt,
    )
    return info, parsed.get("training_meta")


def read_metadata(path) -> CheckpointMeta:
    """Read a checkpoint's description from its header only (no tensor data).

    A ``.pt``/``.pth`` file carries no description: its meta has ``arch=None`` and
    ``format=0``.

    Raises
    ------
    FileNotFoundError, CheckpointError
        Missing, a directory, truncated, corrupted, or not a napari-colorize file.
    """
    path = _check_file(path)
    if path.suffix.lower() in TORCH_SUFFIXES:
        return CheckpointMeta(arch=None, format=0)
    _header, meta = _read_header(path)
    return _meta_from_header(path, meta)[0]


def load_torch_state(path) -> dict:
    """Read a plain state dict from a ``.pt``/``.pth`` file with ``weights_only=True``.

    A dict holding the state under ``state_dict``, ``model_state_dict`` or ``model``
    is unwrapped. Pickled models and other Python objects are refused.
    """
    import pickle

    import torch

    path = _check_file(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{str(path)!r} holds pickled Python objects, not just tensors; it is refused "
            "because unpickling can run arbitrary code. Save a plain state dict instead "
            "(torch.save(model.state_dict(), path)) or, better, a safetensors checkpoint "
            "(napari_colorize.checkpoint.save_checkpoint)"
        ) from exc
    except Exception as exc:  # torch raises RuntimeError/EOFError/... for broken files
        raise CheckpointError(
            f"{str(path)!r} is not a readable PyTorch file (truncated or corrupted: {exc}); "
            "download or save it again"
        ) from exc
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{str(path)!r} holds a {type(obj).__name__}, not a state dict; "
            "save model.state_dict() instead"
        )
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{str(path)!r} is not a plain state dict: entries {bad[:5]} are not tensors; "
            "save model.state_dict() instead"
        )
    return dict(obj)


def load_checkpoint(path, *, check_arch: bool = True) -> Checkpoint:
    """Load a checkpoint file written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or path-like
        A ``.safetensors`` checkpoint, or a ``.pt``/``.pth`` plain state dict (read
        with ``weights_only=True``; its meta has ``arch=None``).
    check_arch : bool
        Raise :class:`~napari_colorize.errors.UnknownModelError` if the file's
        architecture is not registered.

    Returns
    -------
    Checkpoint

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    CheckpointError
        A directory, a truncated or corrupted file, a safetensors file without our
        metadata, or a pickle.
    UnknownModelError
        The architecture is not registered.
    """
    path = _check_file(path)
    if path.suffix.lower() in TORCH_SUFFIXES:
        state = load_torch_state(path)
        return Checkpoint(state, CheckpointMeta(arch=None, format=0), path=path)
    _header, raw_meta = _read_header(path)
    meta, training_meta = _meta_from_header(path, raw_meta)
    if check_arch:
        _check_architecture(path, meta.arch)
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(
            f"{str(path)!r} is corrupted: its tensors cannot be read ({exc}); "
            "copy or save it again"
        ) from exc
    model_state = {k: v for k, v in tensors.items() if not k.startswith(TRAIN_PREFIX)}
    n = len(TRAIN_PREFIX)
    training_state = {k[n:]: v for k, v in tensors.items() if k.startswith(TRAIN_PREFIX)}
    return Checkpoint(model_state, meta, training_state, training_meta, path=path)


def _check_architecture(path, arch) -> None:
    known = architectures()
    if arch not in known:
        raise UnknownModelError(
            f"{str(path)!r} was saved for architecture {arch!r}, which is not registered "
            f"here (known: {', '.join(known)}); upgrade napari-colorize, or import the "
            "plugin that registers it (napari_colorize.registry.register_architecture)"
        )


# ----------------------------------------------------------------- loading into a model


def _shape(t) -> tuple:
    return tuple(t.shape)


def load_state_into(model, state: Mapping, *, source=None, arch=None, config=None) -> None:
    """Copy ``state`` into ``model`` after checking that every key and shape fits.

    Parameters
    ----------
    model : torch.nn.Module
    state : dict[str, torch.Tensor]
    source, arch, config : optional
        Where the state came from and what it claims to be; only used in the message.

    Raises
    ------
    CheckpointError
        Missing keys, unexpected keys or shape mismatches, each named, with the
        architectures whose default layout the weights do fit.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: file {_shape(state[k])}, model {_shape(expected[k])}"
        for k in expected
        if k in state and _shape(state[k]) != _shape(expected[k])
    ]
    if missing or unexpected or mismatched:
        what = f"the weights in {str(source)!r}" if source is not None else "the weights"
        target = f"architecture {arch!r}" if arch else f"the model {type(model).__name__}"
        found = [
            ("missing key(s)", missing, 5),
            ("unexpected key(s)", unexpected, 5),
            ("shape mismatch(es)", mismatched, 3),  # each names two shapes: fewer shown
        ]
        problems = [
            f"{len(keys)} {kind}: {short_list(keys, n)}" for kind, keys, n in found if keys
        ]
        advice = _fit_advice(state, arch)
        cfg = f" with config {json.dumps(config_to_dict(config))}" if config is not None else ""
        raise CheckpointError(f"{what} do not fit {target}{cfg}: {'; '.join(problems)}. {advice}")
    model.load_state_dict(state, strict=True)


def fit_advice(state: Mapping, arch=None) -> str:
    """A sentence naming the architectures whose default layout ``state`` fits."""
    return _fit_advice(state, arch)


def _fit_advice(state: Mapping, arch) -> str:
    try:
        fits = matching_architectures(state)
    except Exception:  # advice must never hide the real error
        fits = []
    fits = [a for a in fits if a != arch]
    if fits:
        return (
            f"They fit architecture {', '.join(repr(a) for a in fits)} with its default "
            "config: save the checkpoint with that arch."
        )
    return (
        "Use the architecture and config the weights were trained with (save them "
        "with save_checkpoint(..., arch=..., config=<the training config>))."
    )
