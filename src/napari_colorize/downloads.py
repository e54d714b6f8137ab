"""Fetching published weights into the user cache, and converting them once.

A URL entry (:class:`~napari_colorize.model_entries.PretrainedModel`) is
downloaded by pooch with its sha256 checked (or, for files published with only a
hash prefix, to a temporary name kept only if its hash fits); a foreign ``.pth``
is converted once to a safetensors checkpoint next to it. Offline, read-only
caches and hash mismatches end in a :class:`~napari_colorize.errors.DownloadError`
that says how to get the file by hand. :func:`resolve_entry` is the one entry
point (:func:`napari_colorize.registry.resolve_weights` looks the name up).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from . import cache_files as _cache
from . import checkpoint as _ckpt
from .errors import DownloadError
from .model_entries import (
    WEIGHTS_DIR,
    PretrainedModel,
    cache_dir,
    converted_path,
    needs_conversion,
)
from .models.architectures import import_string

__all__ = ["convert_state", "resolve_entry"]


class _Progress:
    """The progress-bar object pooch drives (``total``, ``update``, ``reset``, ``close``).

    Forwards to the ``progress`` callback and, when ``bar`` is true, to a tqdm bar
    that is only created once the download has started (so a failed connection
    prints no empty bar).
    """

    def __init__(self, callback, bar: bool):
        self.callback = callback
        self.want_bar = bar
        self.bar = None
        self.done = 0
        self._total = None

    @property
    def total(self):
        return self._total

    @total.setter
    def total(self, value):
        self._total = value
        if self.want_bar and self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=value, unit="B", unit_scale=True, leave=True, file=sys.stderr)

    def update(self, n: int) -> None:
        # pooch counts whole chunks, so the last one overshoots
        self.done = min(self.done + n, self._total) if self._total else self.done + n
        if self.bar is not None:
            self.bar.n = self.done
            self.bar.refresh()
        if self.callback is not None:
            self.callback(self.done, self._total or None)

    def reset(self) -> None:
        self.done = 0

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _offline_advice(entry: PretrainedModel, target: Path) -> str:
    digest = entry.sha256 or f"starting with {entry.sha256_prefix}"
    by_path = (
        "load it by path: `napari-colorize colorize --model PATH ...` / "
        "napari_colorize.registry.load_model(PATH)"
    )
    if not _cache.writable(target.parent):  # copying it there is no advice then
        return (
            f"{_cache.read_only_advice(target.parent)}, or fetch {entry.url} "
            f"(sha256 {digest}) into any folder and {by_path}"
        )
    return (
        f"If this computer is offline, fetch {entry.url} on another one "
        f"(sha256 {digest}), then either copy it to {str(target)!r} or {by_path}"
    )


def _download_failed(entry: PretrainedModel, target: Path, exc: Exception) -> DownloadError:
    what = f"could not download the weights of model {entry.name!r} from {entry.url}"
    if not _cache.writable(target.parent):  # the reason, in the first sentence
        return DownloadError(f"{what}: {_offline_advice(entry, target)}")
    return DownloadError(f"{what} ({type(exc).__name__}: {exc}). {_offline_advice(entry, target)}")


def download(entry: PretrainedModel, progress, progressbar: bool) -> Path:
    """Fetch a URL entry's file into :func:`cache_dir`, its sha256 checked."""
    import pooch
    import requests

    if entry.sha256 is None and entry.sha256_prefix:
        return _download_prefix(entry, progress, progressbar)

    folder = cache_dir()
    target = folder / entry.filename
    use_bar = progressbar and not (target.is_file() and target.stat().st_size == entry.size)
    bar = _Progress(progress, use_bar) if (progress is not None or use_bar) else False
    downloader = None
    if entry.url.startswith(("http://", "https://")):
        downloader = pooch.HTTPDownloader(progressbar=bar, chunk_size=1 << 20, timeout=60)
    try:
        got = pooch.retrieve(
            entry.url,
            known_hash=f"sha256:{entry.sha256}",
            fname=entry.filename,
            path=folder,
            downloader=downloader,
            progressbar=bar,
        )
    except ValueError as exc:  # pooch: hash mismatch (its temp file is already gone)
        _remove_if_bad(target, entry.sha256)
        raise DownloadError(
            f"the download of model {entry.name!r} from {entry.url} does not have the expected "
            f"sha256 {entry.sha256}; it was refused and nothing was kept ({exc}). "
            + _offline_advice(entry, target)
        ) from exc
    except (requests.RequestException, OSError) as exc:
        _remove_if_bad(target, entry.sha256)
        raise _download_failed(entry, target, exc) from exc
    finally:
        if bar:
            bar.close()
    _cache.apply_umask(got)  # pooch's temporary (mkstemp) was private
    return Path(got)


def _download_prefix(entry: PretrainedModel, progress, progressbar: bool) -> Path:
    """Download a file known only by a prefix of its sha256 (see ``PretrainedModel``)."""
    import pooch
    import requests

    prefix = entry.sha256_prefix.lower()
    folder = cache_dir()
    target = folder / entry.filename
    if target.is_file():
        if pooch.file_hash(str(target)).startswith(prefix):
            return target
        with contextlib.suppress(OSError):
            target.unlink()
    if not _cache.writable(folder):
        raise _download_failed(entry, target, PermissionError(f"{folder} is read-only"))
    part = folder / f".{entry.filename}.{os.getpid()}.part"
    bar = _Progress(progress, progressbar) if (progress is not None or progressbar) else False
    try:
        if entry.url.startswith(("http://", "https://")):
            downloader = pooch.HTTPDownloader(progressbar=bar, chunk_size=1 << 20, timeout=60)
        else:
            downloader = pooch.choose_downloader(entry.url)
        downloader(entry.url, str(part), None)
        digest = pooch.file_hash(str(part))
        if not digest.startswith(prefix):
            raise DownloadError(
                f"the download of model {entry.name!r} from {entry.url} has sha256 {digest}, "
                f"which does not start with the published {entry.sha256_prefix}; it was "
                "refused and nothing was kept. " + _offline_advice(entry, target)
            )
        _cache.apply_umask(part)
        os.replace(part, target)
    except DownloadError:
        raise
    except (requests.RequestException, OSError, ValueError) as exc:
        raise _download_failed(entry, target, exc) from exc
    finally:
        if bar:
            bar.close()
        with contextlib.suppress(OSError):
            part.unlink()
    return target


def _sha256(path: Path) -> str:
    import pooch

    return pooch.file_hash(str(path))


def _remove_if_bad(path: Path, sha256: str) -> None:
    import pooch

    with contextlib.suppress(OSError):
        if path.is_file() and pooch.file_hash(str(path)) != sha256:
            path.unlink()


def convert_state(entry: PretrainedModel, state: dict) -> dict:
    """A foreign state dict in this package's layout (the entry's ``convert``)."""
    if entry.convert is None:
        return state
    fn = import_string(entry.convert, f"model {entry.name!r}")
    return fn(state)


def convert_download(entry: PretrainedModel, raw: Path) -> Path:
    """Convert a downloaded ``.pth`` once into a cached safetensors checkpoint."""
    out = converted_path(entry)
    state = convert_state(entry, _ckpt.load_torch_state(raw))
    if not _cache.writable(out.parent):
        raise DownloadError(
            f"cannot store the converted weights of model {entry.name!r}: "
            f"{_cache.read_only_advice(out.parent)}; or load {raw} by path"
        )
    _ckpt.save_checkpoint(
        out,
        state,
        arch=entry.arch,
        config=entry.config,
        data=entry.data,
        extra={
            **entry.extra,
            "description": entry.description,
            "source": {
                "url": entry.url,
                "sha256": entry.sha256 or _sha256(raw),
                "file": entry.filename,
            },
        },
    )
    return out


def resolve_entry(entry: PretrainedModel, *, progress=None, progressbar: bool = True) -> Path:
    """The local checkpoint file of a model entry, downloading it if needed.

    See :func:`napari_colorize.registry.resolve_weights`.
    """
    if entry.source == "bundled":
        path = WEIGHTS_DIR / entry.filename
        if not path.is_file():
            raise FileNotFoundError(
                f"the bundled weights of model {entry.name!r} ({str(path)!r}) are not in this "
                "installation; upgrade or reinstall napari-colorize"
            )
        return path
    if entry.source == "path":
        path = Path(entry.filename)
        if not path.is_file():
            raise FileNotFoundError(
                f"model {entry.name!r} points to {str(path)!r}, which no longer exists; register "
                f"the file again or unregister_model({entry.name!r})"
            )
        return path
    _cache.remove_stale_temporaries(cache_dir())  # left by killed downloads
    if needs_conversion(entry):
        converted = converted_path(entry)
        if _cache.cached_and_readable(converted, _ckpt.read_metadata):
            return converted
        return convert_download(entry, download(entry, progress, progressbar))
    return download(entry, progress, progressbar)
