"""Seeds and random states of a training run: epoch orders, saved and restored RNGs.

A run is reproducible from its seed, and a resumed run continues exactly: the
order of an epoch's items depends only on ``(seed, epoch)``, and a checkpoint
holds the torch, numpy, Python (and CUDA) generators' states.
"""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["epoch_order", "rng_state", "seed_everything", "set_rng_state"]


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The permutation of ``n`` items used in ``epoch``: a function of ``(seed, epoch)`` only."""
    return np.random.default_rng((int(seed), int(epoch), 0x5EED)).permutation(n)


def rng_state() -> dict:
    """The states of torch's, numpy's global, Python's (and CUDA's) random generators."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (the legacy global state is what we save)
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` saved (CUDA's only on as many devices)."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's global and torch's random generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seed code that uses the global RNG)
    torch.manual_seed(seed)
