"""Will a training step fit in memory? An estimate before the first step, advice after a failure.

Before the first step :func:`check_step_memory` measures what one training item
costs: a forward pass of the model on one item records the activations kept
for the backward pass (``torch.autograd.graph.saved_tensors_hooks``), in eval
mode and with the random streams forked, so the run itself is unchanged. With
the weights, their gradients and the optimizer's moments this gives the memory
of a step at any batch size, which is compared with the memory free on the
device (:func:`available_memory`: RAM, within a cgroup limit, on the CPU; free
GPU memory on CUDA). A batch that does not fit is refused with the largest
batch size that does, instead of the operating system's OOM killer ending the
process without a word.

An allocation that fails during a step all the same (the estimate is an
estimate) becomes the same advice: see :func:`out_of_memory_advice`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from ..errors import ColorizeError

__all__ = [
    "StepMemory",
    "TrainingMemoryError",
    "available_memory",
    "check_step_memory",
    "out_of_memory_advice",
]

#: Use at most this fraction of the free memory: the estimate leaves out the
#: allocator's slack, the data loader and the rest of the process.
SAFETY = 0.8
#: Activations alive at the peak of a step, per activation kept for backward:
#: the kept ones plus their gradients while the backward pass runs.
ACTIVATION_FACTOR = 2.0
#: Bytes per parameter: weights, gradients and two optimizer moments (Adam).
STATE_FACTOR = 4


class TrainingMemoryError(ColorizeError, MemoryError):
    """A training step needs more memory than the device has free; the message says what fits."""


@dataclass(frozen=True)
class StepMemory:
    """Bytes of one training step: ``fixed + per_item * batch_size``."""

    fixed: int
    per_item: int

    def bytes_for(self, batch_size: int) -> int:
        """Estimated bytes of a step with ``batch_size`` items."""
        return self.fixed + self.per_item * int(batch_size)

    def largest_batch(self, available: int) -> int:
        """The largest batch whose step fits in ``SAFETY * available`` bytes (0: none)."""
        room = SAFETY * available - self.fixed
        return max(0, int(room // max(self.per_item, 1)))


def _cgroup_room(root: str = "/sys/fs/cgroup") -> int | None:
    """Bytes left under this process's cgroup (v2, else v1) memory limit, if there is one.

    Page cache the kernel can drop (``inactive_file``) counts as free, as it does
    for the limit's OOM killer.
    """
    layouts = (
        (f"{root}/", "memory.max", "memory.current", "inactive_file"),
        (
            f"{root}/memory/",
            "memory.limit_in_bytes",
            "memory.usage_in_bytes",
            "total_inactive_file",
        ),
    )
    for folder, limit_name, usage_name, cache_key in layouts:
        try:
            with open(folder + limit_name) as f:
                limit = f.read().strip()
            with open(folder + usage_name) as f:
                usage = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or not limit.isdigit() or int(limit) >= 1 << 60:
            return None
        cache = 0
        try:
            with open(folder + "memory.stat") as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == cache_key:
                        cache = int(value)
        except (OSError, ValueError):
            cache = 0
        return max(0, int(limit) - usage + cache)
    return None


def _ram_available() -> int | None:
    found = None
    try:
        import psutil

        found = int(psutil.virtual_memory().available)
    except ImportError:
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        found = int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            found = None
    room = _cgroup_room()
    if room is not None:
        found = room if found is None else min(found, room)
    return found


def available_memory(device) -> int | None:
    """Bytes free for training on ``device``; None where it cannot be told (MPS, others).

    Parameters
    ----------
    device : torch.device or str
        ``cpu``: available RAM (``MemAvailable``, or psutil's), capped by a cgroup
        limit. ``cuda``: free GPU memory plus what torch holds cached but unused.
    """
    device = torch.device(device)
    if device.type == "cpu":
        return _ram_available()
    if device.type == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(device)
            cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        except (RuntimeError, AssertionError):
            return None
        return int(free + max(cached, 0))
    return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def step_memory(trainer) -> StepMemory | None:
    """Measure a training step's memory on ``trainer`` (set up); None if it cannot be measured.

    The model runs forward on the first training item (eval mode, random streams
    forked, no weight or statistic changed) and the tensors it keeps for the
    backward pass are summed, without the weights themselves.
    """
    model = trainer.model
    params = [p for m in trainer.task.modules().values() for p in m.parameters()]
    fixed = STATE_FACTOR * sum(_tensor_bytes(p) for p in params)
    weight_ptrs = {p.data_ptr() for p in params}
    try:
        item = trainer.train_set[0]
    except Exception:
        return None
    item_bytes = sum(_tensor_bytes(torch.as_tensor(t)) for t in item)
    seen: set[int] = set()
    kept = 0

    def pack(t):
        nonlocal kept
        ptr = t.data_ptr()
        if ptr not in weight_ptrs and ptr not in seen:
            seen.add(ptr)
            kept += _tensor_bytes(t)
        return t

    modes = {m: m.training for m in model.modules()}
    devices = [trainer.device] if trainer.device.type == "cuda" else []
    try:
        model.eval()
        l_net = torch.as_tensor(item[0])[None].to(trainer.device)
        with (
            torch.random.fork_rng(devices=devices),
            torch.enable_grad(),
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
            trainer.ctx.autocast(),
        ):
            model(l_net)
    except Exception:  # a model that takes more than l (hints, classes): no estimate
        return None
    finally:
        for m, mode in modes.items():
            m.train(mode)
    return StepMemory(fixed=fixed, per_item=int(ACTIVATION_FACTOR * kept + 2 * item_bytes))


def _processes_sharing(trainer) -> int:
    """Data-parallel processes sharing this device's memory (all of them on the CPU)."""
    if trainer.device.type == "cpu":
        return int(getattr(trainer, "world_size", 1) or 1)
    return 1


def check_step_memory(trainer) -> StepMemory | None:
    """Refuse a batch whose training step would not fit in the free memory of the device.

    Parameters
    ----------
    trainer : Trainer
        Set up (model, data and device known); ``trainer.batch_size`` is the
        (global) batch, ``trainer.local_batch_size`` the per-process one under DDP.

    Returns
    -------
    StepMemory or None
        The estimate, None where the free memory or the step could not be measured.

    Raises
    ------
    TrainingMemoryError
        Naming the memory needed, the memory free and the largest batch size that fits.
    """
    available = available_memory(trainer.device)
    if available is None:
        return None
    estimate = step_memory(trainer)
    if estimate is None:
        return None
    world = int(getattr(trainer, "world_size", 1) or 1)
    local = int(getattr(trainer, "local_batch_size", trainer.batch_size))
    sharing = _processes_sharing(trainer)
    need = sharing * estimate.fixed + estimate.per_item * local * sharing
    if need <= SAFETY * available:
        return estimate
    per_process = StepMemory(sharing * estimate.fixed, sharing * estimate.per_item)
    fits = per_process.largest_batch(available) * world  # the global batch that fits
    where = "RAM" if trainer.device.type == "cpu" else f"memory on {trainer.device}"
    head = (
        f"a training step with --batch-size {trainer.batch_size} needs about {_gib(need)} but "
        f"only {_gib(available)} of {where} is free"
    )
    if fits >= max(world, 1) and fits >= 1:
        fits -= fits % world
        raise TrainingMemoryError(f"{head}; pass --batch-size {fits} or less")
    raise TrainingMemoryError(
        f"{head}, too little even for a batch of {world}; use a smaller --patch-size or "
        "free memory (close other programs)"
    )


_OOM_TEXT = ("out of memory", "not enough memory", "can't allocate memory", "cannot allocate")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure of torch (CPU or GPU) or Python."""
    oom = getattr(torch, "OutOfMemoryError", None)
    if isinstance(exc, MemoryError) and not isinstance(exc, TrainingMemoryError):
        return True
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and any(s in str(exc).lower() for s in _OOM_TEXT)


@contextlib.contextmanager
def out_of_memory_advice(trainer):
    """Turn an allocation failure inside the block into a :class:`TrainingMemoryError`.

    The message names the step, the batch size and a batch size to try (half).
    """
    try:
        yield
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        batch = int(trainer.batch_size)
        world = int(getattr(trainer, "world_size", 1) or 1)
        where = "RAM" if trainer.device.type == "cpu" else f"memory on {trainer.device}"
        head = f"ran out of {where} at step {trainer.step + 1} with --batch-size {batch}"
        half = batch // 2
        half -= half % world
        if half >= max(world, 1):
            advice = f"pass --batch-size {half} or less"
        else:
            advice = "use a smaller --patch-size or free memory (close other programs)"
        raise TrainingMemoryError(f"{head}; {advice}") from exc
