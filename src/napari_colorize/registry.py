"""Model names -> architectures, configs and weights.

The table of **named models** (:class:`PretrainedModel`, defined in
:mod:`napari_colorize.model_entries`), each entry one line: a bundled file under
``weights/``, a URL with its sha256 fetched by pooch into the user cache
(:mod:`napari_colorize.downloads`), or a local path registered by the user
(:func:`register_model`, optionally persisted by :mod:`napari_colorize.user_models`).
The architecture table lives below this module and
:mod:`napari_colorize.checkpoint`, in :mod:`napari_colorize.models.architectures`;
its functions (:func:`build_model`, :func:`architectures`, ...) are re-exported here.

``load_model(name_or_path)`` turns either a name or a checkpoint path into a
ready model in eval mode.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import cache_files as _cache
from . import cards as _cards
from . import checkpoint as _ckpt
from .downloads import convert_state, resolve_entry
from .errors import CheckpointError, UnknownModelError
from .model_entries import WEIGHTS_DIR, PretrainedModel, cache_dir, local_file
from .model_size import check_model_size
from .models.architectures import (
    architecture_entry,
    architectures,
    build_model,
    describe_architectures,
    matching_architectures,
    register_architecture,
)
from .user_models import (
    read_user_file,
    reload_user_models,
    user_entries,
    user_models_file,
    write_user_file,
)

__all__ = [
    "WEIGHTS_DIR",
    "DownloadProgress",
    "PretrainedModel",
    "architectures",
    "build_model",
    "cache_dir",
    "describe_architectures",
    "fetch_weights",
    "get_model",
    "list_models",
    "load_model",
    "matching_architectures",
    "model_card",
    "model_names",
    "needs_download",
    "register_architecture",
    "register_model",
    "register_pretrained",
    "reload_user_models",
    "resolve_weights",
    "unregister_model",
    "user_models_file",
]

_M = "napari_colorize.models"

# ----------------------------------------------------------------- named models


#: Bundled checkpoints under ``weights/<name>.safetensors``: name -> (arch, description).
#: An entry whose file is not there yet is not listed.
_BUNDLED = {
    "beta-punks": ("beta", "beta trained on CryptoPunks"),
    "full-punks": ("full", "beta encoder + Inception class embedding, trained on CryptoPunks"),
    "gan-punks": ("gan", "U-Net GAN generator trained on CryptoPunks"),
    "inception-punks": ("inception", "Inception v3 classifier of CryptoPunk attributes"),
    "beta-punks-hints": ("beta", "hint-aware beta trained on CryptoPunks with random hints"),
}
_PUNKS_ONLY = f"CryptoPunks {_cards.PUNKS_SIZE}x{_cards.PUNKS_SIZE} pixel art only"
#: Card facts of the bundled models that their files do not hold.
_BUNDLED_CARDS = {
    "beta-punks": {"purpose": _PUNKS_ONLY},
    "full-punks": {"purpose": _PUNKS_ONLY},
    "gan-punks": {"purpose": _PUNKS_ONLY},
    "beta-punks-hints": {"purpose": f"{_PUNKS_ONLY}, with colour hints"},
    "inception-punks": {
        "purpose": f"classifies {_PUNKS_ONLY} (type, accessories)",
        # L of the 9,000 training punks: range of the per-image mean, standard deviation
        # and distinct whole-number levels (at most 15), widened (all test punks inside)
        "lightness": {"mean": [32, 66], "std": [10, 31], "levels": [1, 24]},
    },
}
_PHOTOS = "natural photographs"

_ZHANG_URL = "https://colorizers.s3.us-east-2.amazonaws.com"
_ZHANG_DATA = "ImageNet (Zhang et al., published weights)"
_ECCV16 = PretrainedModel(
    "eccv16", "eccv16", "Zhang et al. ECCV 2016 colorizer for natural photos",
    source="url", filename="colorization_release_v2-9b330a0b.pth",
    url=f"{_ZHANG_URL}/colorization_release_v2-9b330a0b.pth",
    sha256="9b330a0bae53f4ded77b1e23defbf78beaa09c10ebc4c4999e8e4f4a160b93f9",
    size=128_976_165, convert=f"{_M}.zhang:convert_state_dict", data=_ZHANG_DATA,
    config={"decoding": "expectation"},
    card={"purpose": f"{_PHOTOS}; muted colours", "image_size": 256,
          "input": "any size (trained on 256x256 ImageNet photos)"},
)  # fmt: skip
#: Published weights fetched on first use.
_DOWNLOADS = [
    _ECCV16,
    # the same file, decoded as the paper does: annealed mean of the 313 bins
    dataclasses.replace(
        _ECCV16, name="eccv16-annealed",
        description="ECCV16 decoded as the paper does (annealed mean, T = 0.38): more vivid",
        config={"decoding": "annealed_mean", "temperature": 0.38},
        card={**_ECCV16.card, "purpose": f"{_PHOTOS}; vivid colours"},
    ),
    PretrainedModel(
        "siggraph17", "siggraph17", "Zhang et al. SIGGRAPH 2017 user-guided colorizer (hints)",
        source="url", filename="siggraph17-df00044c.pth",
        url=f"{_ZHANG_URL}/siggraph17-df00044c.pth",
        sha256="df00044c0a4d7c3edcecf6f75437ce346a66e7a42612d9b968e1a7e17dbc6f66",
        size=136_787_426, convert=f"{_M}.zhang:convert_state_dict", data=_ZHANG_DATA,
        extra={"hints": True},
        card={**_ECCV16.card, "purpose": f"{_PHOTOS}; takes colour hints", "hints": True},
    ),
    PretrainedModel(
        "inception-imagenet", "inception",
        "Inception v3 ImageNet classifier (torchvision's weights), 1000 classes, for gray photos",
        source="url", filename="inception_v3_google-0cc3c7bd.pth",
        url="https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
        sha256_prefix="0cc3c7bd",
        convert=f"{_M}.inception:convert_torchvision_state_dict",
        config={"transform_input": True, "grayscale": True, "input_size": 299},
        data="ImageNet (torchvision's published weights)", extra={"class_names": "imagenet"},
        card={"purpose": "classifies natural photographs (1,000 ImageNet classes)",
              "image_size": 299, "input": "photos (resized to 299x299)",
              "any_larger_size": True, "download_size_approx": 104_000_000},
    ),
]  # fmt: skip

_PRETRAINED: dict[str, PretrainedModel] = {
    **{
        name: PretrainedModel(
            name, arch, desc, "bundled", f"{name}.safetensors", card=_BUNDLED_CARDS.get(name, {})
        )
        for name, (arch, desc) in _BUNDLED.items()
    },
    **{m.name: m for m in _DOWNLOADS},
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def register_pretrained(entry: PretrainedModel, *, replace: bool = False) -> None:
    """Add a named model with a bundled or URL source (for plugins and tests)."""
    if entry.source not in ("bundled", "url", "path"):
        raise ValueError(f"source must be 'bundled', 'url' or 'path', not {entry.source!r}")
    if entry.source == "url" and not (entry.url and (entry.sha256 or entry.sha256_prefix)):
        raise ValueError(f"model {entry.name!r} has source 'url' but no url and sha256")
    if entry.name in _PRETRAINED and not replace:
        raise ValueError(f"a model named {entry.name!r} is already registered")
    _PRETRAINED[entry.name] = entry


def _entries() -> dict[str, PretrainedModel]:
    return {**_PRETRAINED, **user_entries()}


def register_model(name: str, path, *, description: str = "", persist: bool = False) -> None:
    """Give a checkpoint file a name usable everywhere a model name is.

    Parameters
    ----------
    name : str
        Letters, digits and ``. _ + -``; not the name of a built-in model.
        Registering a name again replaces the earlier user model.
    path : str or path-like
        A napari-colorize ``.safetensors`` checkpoint.
    description : str
    persist : bool
        Also store it in :func:`user_models_file`, so that it is registered in
        every later session.

    Raises
    ------
    FileNotFoundError, CheckpointError
        The file is missing or not a napari-colorize checkpoint.
    ValueError
        A bad name, or the name of a built-in model.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"invalid model name {name!r}: use letters, digits and '.', '_', '+', '-', "
            "starting with a letter or digit"
        )
    if name in _PRETRAINED:
        raise ValueError(f"{name!r} is the name of a built-in model; choose another name")
    path = Path(path).expanduser().resolve()
    meta = _ckpt.read_metadata(path)
    if meta.arch is None:
        raise CheckpointError(
            f"{str(path)!r} is a plain PyTorch state dict with no architecture; save it as "
            "a checkpoint first (napari_colorize.checkpoint.save_checkpoint(..., arch=...))"
        )
    user_entries()[name] = PretrainedModel(name, meta.arch, description, "path", str(path))
    if persist:
        models = read_user_file()
        models[name] = {"path": str(path), "description": description}
        write_user_file(models)


def unregister_model(name: str, *, persist: bool = True) -> None:
    """Forget a user model (and, with ``persist``, remove it from the user models file)."""
    user_entries().pop(name, None)
    if persist:
        models = read_user_file()
        if models.pop(name, None) is not None:
            write_user_file(models)


def model_names() -> list[str]:
    """Names of all registered models (listed or not)."""
    return list(_entries())


def get_model(name: str) -> PretrainedModel:
    """The registry entry of a named model.

    Raises
    ------
    UnknownModelError
        Listing the registered names, and saying a checkpoint path works too.
    """
    try:
        return _entries()[name]
    except (KeyError, TypeError):
        names = [n for n in _entries() if _available_or_fetchable(_entries()[n])]
        raise UnknownModelError(
            f"unknown model {name!r}; registered models: {', '.join(names) or 'none'}. "
            "A checkpoint file path (.safetensors, or a .pt/.pth state dict) works too"
        ) from None


def _available_or_fetchable(entry: PretrainedModel) -> bool:
    return entry.source == "url" or local_file(entry) is not None


def list_models() -> list[dict]:
    """Describe the named models, reading only checkpoint headers.

    Bundled entries whose file is not shipped are left out.

    Returns
    -------
    list of dict
        Keys: ``name``, ``arch``, ``source``, ``size`` (bytes of the weights file;
        the download size for URL models), ``data``, ``metrics``, ``available``
        (the file is on this machine), ``description``, ``path`` (the local file
        or None), ``url`` (or None), ``card`` (:func:`model_card`), and ``error``
        when a local file is unreadable.
    """
    rows = []
    for entry in _entries().values():
        local = local_file(entry)
        if entry.source == "bundled" and local is None:
            continue
        extra = entry.extra
        row = {
            "name": entry.name,
            "arch": entry.arch,
            "source": entry.source,
            "size": entry.size,
            "data": entry.data,
            "metrics": {},
            "available": local is not None,
            "description": entry.description,
            "path": str(local) if local is not None else None,
            "url": entry.url,
        }
        if entry.source == "path" and local is None:
            row["path"] = entry.filename
            row["error"] = "file missing"
        if local is not None:
            if entry.source != "url":
                row["size"] = local.stat().st_size
            try:
                meta = _ckpt.read_metadata(local)
            except (CheckpointError, OSError) as exc:
                row["available"] = False
                row["error"] = str(exc)
            else:
                if meta.arch:
                    row["arch"] = meta.arch
                row["data"] = meta.data if meta.data is not None else entry.data
                row["metrics"] = meta.metrics
                extra = meta.extra
                if not row["description"]:
                    row["description"] = str(meta.extra.get("description", ""))
        row["card"] = _cards.build_card(
            entry.name, arch=row["arch"], source=entry.source, data=row["data"], extra=extra,
            metrics=row["metrics"], description=row["description"], size=row["size"],
            available=row["available"], facts=entry.card,
        )  # fmt: skip
        rows.append(row)
    return rows


def model_card(name: str) -> dict:
    """The card of a named model or training-free method, reading only checkpoint headers.

    Parameters
    ----------
    name : str
        A registered model name, or a method registered with
        :func:`napari_colorize.cards.register_method_card`.

    Returns
    -------
    dict
        See :func:`napari_colorize.cards.build_card`: ``purpose``, ``trained_on``,
        ``image_size``, ``input``, ``working_size``, ``download_size``, ``figures``,
        ``summary``, ...

    Raises
    ------
    UnknownModelError
        Neither a model nor a method of that name (the message lists the names).
    """
    methods = _cards.method_cards()
    if name in methods:
        return methods[name]
    entry = get_model(name)  # raises for unknown names
    for row in list_models():
        if row["name"] == name:
            return row["card"]
    # a bundled entry whose file is not installed
    return _cards.build_card(
        name, arch=entry.arch, source=entry.source, data=entry.data, extra=entry.extra,
        description=entry.description, size=entry.size, available=False, facts=entry.card,
    )  # fmt: skip


def resolve_weights(name: str, *, progress=None, progressbar: bool = True) -> Path:
    """The local checkpoint file of a named model, downloading it if needed.

    Parameters
    ----------
    name : str
        A registered model name.
    progress : callable, optional
        ``progress(done_bytes, total_bytes_or_None)`` during a download (e.g. to
        drive a napari progress bar).
    progressbar : bool
        Also show a tqdm bar on stderr during a download.

    Returns
    -------
    pathlib.Path
        A ``.safetensors`` checkpoint (a downloaded ``.pth`` is converted once and
        the converted file reused afterwards).

    Raises
    ------
    UnknownModelError
        No such name.
    DownloadError
        Offline, server error, or a file whose sha256 differs (nothing is kept).
    FileNotFoundError
        A bundled or user file that is missing.
    """
    return resolve_entry(get_model(name), progress=progress, progressbar=progressbar)


def needs_download(name_or_path) -> bool:
    """Whether loading ``name_or_path`` would download weights first (no network use).

    False for files, bundled models and downloads already in the cache; also
    False for unknown names (loading them fails with its own message).
    """
    name = str(name_or_path)
    if name not in model_names():
        return False
    entry = get_model(name)
    return entry.source == "url" and local_file(entry) is None


@dataclass(frozen=True)
class DownloadProgress:
    """A progress event of :func:`fetch_weights`: ``done`` and ``total`` kilobytes."""

    done: int
    total: int
    message: str


def fetch_weights(name: str, *, poll: float = 0.2):
    """Generator: download a named model's weights, yielding :class:`DownloadProgress`.

    The download runs in a helper thread so that a caller driving this
    generator (a napari ``thread_worker``, a notebook loop) sees progress
    every ``poll`` seconds. Its return value (``path = yield from
    fetch_weights(name)``) is the local checkpoint, as :func:`resolve_weights`
    gives; its errors (:class:`~napari_colorize.errors.DownloadError` offline
    or on a hash mismatch, with advice) are raised here.
    """
    import threading

    state: dict = {"done": 0, "total": None, "path": None, "error": None}

    def progress(done, total):
        state["done"], state["total"] = done, total

    def run():
        try:
            state["path"] = resolve_weights(name, progress=progress, progressbar=False)
        except BaseException as exc:  # re-raised in the caller's thread
            state["error"] = exc

    thread = threading.Thread(target=run, name=f"download {name}", daemon=True)
    thread.start()
    size = get_model(name).size if name in model_names() else None
    while thread.is_alive():
        total = state["total"] or size or 0
        done = state["done"]
        what = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        yield DownloadProgress(done // 1000, total // 1000, f"downloading {name}: {what}")
        thread.join(poll)
    if state["error"] is not None:
        raise state["error"]
    return state["path"]


def _published_entry_for(path: Path) -> PretrainedModel | None:
    """The URL entry a foreign file is a copy of (by name, else by size and sha256)."""
    downloads = [
        e for e in _entries().values() if e.source == "url" and (e.sha256 or e.sha256_prefix)
    ]
    for entry in downloads:
        if path.name == entry.filename:
            return entry
    size = path.stat().st_size
    candidates = [e for e in downloads if e.size == size]
    if candidates:
        import pooch

        digest = pooch.file_hash(str(path))
        for entry in candidates:
            if entry.sha256 == digest:
                return entry
    return None


def load_model(
    name_or_path, device="cpu", *, progress=None, progressbar: bool = True, arch=None, config=None
):
    """Load a named model or a checkpoint file, ready for inference.

    Parameters
    ----------
    name_or_path : str or path-like
        A registered model name (:func:`list_models`) or a checkpoint path. A
        ``.pt``/``.pth`` state dict is accepted when it is a copy of a published
        file (recognised by name or sha256) or when ``arch`` is given. A
        bioimage.io package (``.zip``, ``rdf.yaml`` or its folder) with a gray
        input and an RGB output is loaded by :mod:`napari_colorize.bioimageio`.
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"mps"`` or ``"auto"``.
    progress, progressbar
        Download progress, see :func:`resolve_weights`.
    arch, config : optional
        Architecture and config of a plain state dict without metadata.

    Returns
    -------
    model : torch.nn.Module
        In eval mode, on ``device``.
    meta : CheckpointMeta
    """
    from .bioimageio import is_package
    from .devices import resolve_device

    named = isinstance(name_or_path, str) and name_or_path in _entries()
    if is_package(name_or_path) and arch is None and not named:
        from .bioimageio.loading import load_package

        return load_package(name_or_path, device=device)
    key = os.fspath(name_or_path) if isinstance(name_or_path, os.PathLike) else name_or_path
    entry = None
    if isinstance(key, str) and key in _entries() and not isinstance(name_or_path, os.PathLike):
        path = resolve_weights(key, progress=progress, progressbar=progressbar)
        entry = get_model(key)
    else:
        path = Path(key).expanduser()
        if not path.exists():
            looks_like_path = isinstance(name_or_path, os.PathLike) or any(
                s in str(key) for s in ("/", "\\", ".safetensors", ".pt")
            )
            if looks_like_path:
                _ckpt.read_metadata(path)  # raises the FileNotFoundError with advice
            get_model(str(key))  # raises UnknownModelError listing the names
    if entry is not None and entry.source == "url":  # a corrupt cached file is fetched again
        refetch = functools.partial(
            resolve_weights, key, progress=progress, progressbar=progressbar
        )
        ckpt = _cache.load_or_refetch(path, _ckpt.load_checkpoint, refetch)
    else:
        ckpt = _ckpt.load_checkpoint(path)
    meta = ckpt.meta
    state = ckpt.model_state
    if meta.arch is None:
        entry = _published_entry_for(path) if arch is None else None
        if entry is not None:
            state = convert_state(entry, state)
            meta = dataclasses.replace(
                meta, arch=entry.arch, config=dict(entry.config), data=entry.data,
                extra=dict(entry.extra),
            )  # fmt: skip
        elif arch is not None:
            meta = dataclasses.replace(meta, arch=arch, config=_ckpt.config_to_dict(config))
        else:
            raise CheckpointError(
                f"{str(path)!r} is a plain PyTorch state dict without an architecture; pass "
                f"arch=... (one of {', '.join(architectures())}) and its config, or save it "
                "as a checkpoint with napari_colorize.checkpoint.save_checkpoint"
            )
    elif entry is not None and entry.source == "url" and entry.config and meta.arch == entry.arch:
        # entries sharing one download differ in their config (e.g. ECCV16's decoding)
        meta = dataclasses.replace(meta, config={**meta.config, **entry.config})
    elif arch is not None and arch != meta.arch:
        raise CheckpointError(
            f"{str(path)!r} holds architecture {meta.arch!r}, not {arch!r}; "
            "leave arch out to use the file's own"
        )
    spec = architecture_entry(meta.arch)
    check_model_size(
        functools.partial(build_model, meta.arch), meta.config, state=state, source=path,
        cache_key=(meta.arch, spec),
    )  # fmt: skip
    try:
        model = build_model(meta.arch, meta.config)
    except ValueError as exc:
        raise CheckpointError(
            f"cannot build the model saved in {str(path)!r}: {exc}. "
            + _ckpt.fit_advice(state, meta.arch)
        ) from exc
    _ckpt.load_state_into(model, state, source=path, arch=meta.arch, config=meta.config)
    model.eval()
    return model.to(resolve_device(device)), meta
