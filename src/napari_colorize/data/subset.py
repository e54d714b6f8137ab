"""Part of a dataset by index, passing the epoch on (torch's ``Subset`` does not)."""

from __future__ import annotations

__all__ = ["Subset"]


class Subset:
    """Items ``indices`` of ``dataset``, forwarding ``set_epoch`` (torch's Subset does not)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = list(indices)
        self.spec = getattr(dataset, "spec", None)

    def set_epoch(self, epoch: int) -> None:
        """Pass the epoch to the whole dataset (its crops and flips depend on it)."""
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[self.indices[i]]
