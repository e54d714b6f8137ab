"""The CryptoPunks as a classification data set: gray L in, the 92 attribute labels out.

Items are ``(l_net, targets)``: ``l_to_net(L)`` float32 ``(1, 24, 24)`` of the
punk (composited on its background, as the colorizers see it) and float32
``(92,)`` 0/1 labels in the order of ``PunksSplit.label_names``, the five punk
types first. Flips are reproducible per ``(seed, epoch, index)`` as in
:mod:`napari_colorize.data.transforms`.
"""

from __future__ import annotations

import numpy as np
import torch

from .arrays import SeededDataset

__all__ = ["PunksLabelsDataset", "punks_label_heads"]


def punks_label_heads(label_names) -> tuple[list[str], list[str]]:
    """Split the 92 label names into the five types and the accessories (in column order).

    Raises
    ------
    ValueError
        If the five types are not the first five labels (an unexpected ``punks.json``).
    """
    from .punks import PUNK_TYPES

    names = [str(n) for n in label_names]
    if [n.lower() for n in names[:5]] != list(PUNK_TYPES):
        raise ValueError(
            f"expected the punk types {PUNK_TYPES} as the first five labels, got {names[:5]}; "
            "the cached punks data may be stale: delete it from the cache folder"
        )
    return names[:5], names[5:]


class PunksLabelsDataset(SeededDataset):
    """CryptoPunks (gray) with their labels, for training the punks classifier.

    Parameters
    ----------
    split : {"train", "test"}
    indices : sequence of int, optional
        Which punks of the split (default all), e.g. a hold-out slice.
    flips : bool
        Flip left-right with probability 1/2 (the labels do not depend on it).
    seed : int
    punks : PunksSplit, optional
        An already loaded split (else :func:`~napari_colorize.data.punks.load_punks`).
    """

    def __init__(self, split="train", indices=None, flips=True, seed=0, *, punks=None):
        super().__init__(None, flips, seed)
        from .punks import load_punks
        from .transforms import rgb_to_net

        self.split = split
        self.punks = punks if punks is not None else load_punks(split)
        self.indices = (
            np.arange(len(self.punks)) if indices is None else np.asarray(indices, dtype=np.int64)
        )
        self.type_names, self.accessory_names = punks_label_heads(self.punks.label_names)
        self.label_names = [*self.type_names, *self.accessory_names]
        l_net, _ = rgb_to_net(self.punks.rgb[self.indices])
        self._l = l_net  # (n, 1, 24, 24)
        self._targets = self.punks.labels[self.indices].astype(np.float32)
        self.spec = f"punks:{split} labels ({len(self.indices)} punks)"

    @property
    def targets(self) -> np.ndarray:
        """float32 ``(n, 92)`` 0/1 labels of the selected punks (unflipped order)."""
        return self._targets

    @property
    def l_net(self) -> np.ndarray:
        """float32 ``(n, 1, 24, 24)`` scaled L of the selected punks, unflipped."""
        return self._l

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        index = self._check_index(index)
        (l_net,) = self.transform(self.rng(index), self._l[index])
        return (
            torch.from_numpy(np.ascontiguousarray(l_net)),
            torch.from_numpy(self._targets[index]),
        )
