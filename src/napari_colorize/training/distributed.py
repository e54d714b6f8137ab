"""Data-parallel training: the same :class:`~napari_colorize.training.Trainer`, on N processes.

Run it with ``torchrun --nproc_per_node=N -m napari_colorize.train ...`` (or
``python -m napari_colorize.train --nproc-per-node N ...``, which starts
torchrun itself). Each process holds a replica of the model wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel`; gradients are averaged
across processes after each backward pass, so all replicas stay identical.
NCCL is used between GPUs, gloo on CPUs.

How the work is shared
----------------------
``TrainConfig.batch_size`` is the **global** batch: each of the ``W`` processes
takes ``batch_size / W`` items of it. The items of an epoch are drawn in the
same order as in a single-process run (a permutation of ``(seed, epoch)``), and
a :class:`~torch.utils.data.DistributedSampler` deals the positions of that order
out to the processes, so global batch ``i`` holds exactly the items of batch
``i`` of a single-process run with the same ``batch_size``. The schedule, the
number of steps and the checkpoints are those of that run, which is why a run
can be resumed on a different number of processes (or on one).

Only rank 0 writes checkpoints and logs and computes previews; validation is
shared out and its sums are all-reduced; the logged training losses are the
mean over the processes. A stop asked for on any process (Ctrl-C, a signal)
stops all of them after the same step, then rank 0 writes the final checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .randomness import epoch_order
from .trainer import Trainer

__all__ = [
    "DistributedTask",
    "DistributedTrainer",
    "DistributedWorld",
    "cleanup_distributed",
    "free_port",
    "init_distributed",
    "launch_torchrun",
    "spawn",
    "world_from_env",
]


@dataclass(frozen=True)
class DistributedWorld:
    """Where this process stands: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_from_env(environ=None) -> DistributedWorld:
    """Rank, world size and local rank from torchrun's environment (1 process without it)."""
    env = os.environ if environ is None else environ
    return DistributedWorld(
        rank=int(env.get("RANK", 0)),
        world_size=int(env.get("WORLD_SIZE", 1)),
        local_rank=int(env.get("LOCAL_RANK", 0)),
    )


def _choose_backend(device: str) -> tuple[str, str]:
    """``(backend, device)``: NCCL and this process's GPU where CUDA is asked for or auto."""
    name = str(device or "auto").lower()
    wants_gpu = name == "auto" or name.startswith("cuda")
    if wants_gpu and torch.cuda.is_available() and torch.distributed.is_nccl_available():
        return "nccl", name
    if name.startswith("cuda"):
        raise ValueError(
            f"device {device!r} was asked for, but CUDA or NCCL is not available here; "
            "use --device cpu (gloo) for distributed training on CPUs"
        )
    if name == "mps":
        raise ValueError("distributed training does not support MPS; use --device cpu")
    return "gloo", "cpu"


def init_distributed(device: str = "auto", *, backend: str | None = None) -> DistributedWorld:
    """Join the process group that torchrun (or :func:`spawn`) set up in the environment.

    Parameters
    ----------
    device : str
        ``"auto"`` or ``"cuda"``: this process's GPU (``cuda:LOCAL_RANK``) with NCCL
        when there is one, else the CPU with gloo; ``"cpu"``: gloo.
    backend : str, optional
        Force ``"nccl"`` or ``"gloo"``.

    Returns
    -------
    DistributedWorld
        With the ``device`` this process should train on.

    Raises
    ------
    RuntimeError
        Without the environment variables torchrun sets (``RANK``, ``WORLD_SIZE``,
        ``MASTER_ADDR``, ``MASTER_PORT``).
    """
    import torch.distributed as dist

    env = world_from_env()
    missing = [
        v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ
    ]
    if missing:
        raise RuntimeError(
            f"distributed training needs the environment torchrun sets ({', '.join(missing)} "
            "missing); start it with `torchrun --nproc_per_node=N -m napari_colorize.train ...`"
        )
    chosen, device = _choose_backend(device)
    backend = backend or chosen
    if backend == "nccl":
        gpu = env.local_rank if device in ("auto", "cuda") else torch.device(device).index or 0
        torch.cuda.set_device(gpu)
        device = f"cuda:{gpu}"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://")
    return DistributedWorld(env.rank, env.world_size, env.local_rank, backend, device)


def cleanup_distributed() -> None:
    """Leave the process group (if joined)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# ------------------------------------------------------------------ the task wrapper


@contextlib.contextmanager
def _swapped(task, replacements: dict[int, torch.nn.Module]):
    """Point the task's attributes at the DDP wrappers of its modules for one step."""
    changed = []
    for name, value in list(vars(task).items()):
        wrapper = replacements.get(id(value))
        if wrapper is not None:
            changed.append((name, value))
            setattr(task, name, wrapper)
    try:
        yield
    finally:
        for name, value in changed:
            setattr(task, name, value)


class DistributedTask:
    """A task whose training step runs through DistributedDataParallel.

    The wrapped task keeps its plain modules (they are what is saved, validated
    and previewed); only while :meth:`training_step` runs do its attributes point
    at the DDP wrappers, so that the backward pass averages the gradients. The
    returned losses are averaged over the processes, and a stop asked for on any
    process is passed to all of them in the same all-reduce.
    """

    def __init__(self, task, trainer: DistributedTrainer):
        self.task = task
        self.trainer = trainer
        self._wrappers: dict[int, torch.nn.Module] | None = None

    def __getattr__(self, name):
        return getattr(self.task, name)

    def modules(self):
        return self.task.modules()

    def configure_optimizers(self, config, total_steps: int):
        return self.task.configure_optimizers(config, total_steps)

    def validation_step(self, batch):
        return self.task.validation_step(batch)

    def preview(self, l_net):
        return self.task.preview(l_net)

    def _wrap(self) -> dict[int, torch.nn.Module]:
        from torch.nn.parallel import DistributedDataParallel

        device = self.trainer.device
        wrappers = {}
        for name, module in self.task.modules().items():
            if not any(p.requires_grad for p in module.parameters()):
                continue
            if not any(value is module for value in vars(self.task).values()):
                raise TypeError(
                    f"cannot wrap the task's module {name!r} for distributed training: the "
                    f"task {type(self.task).__name__} does not hold it as an attribute"
                )
            ids = [device.index or 0] if device.type == "cuda" else None
            wrappers[id(module)] = DistributedDataParallel(module, device_ids=ids)
        return wrappers

    def training_step(self, batch, ctx):
        import torch.distributed as dist

        if self._wrappers is None:  # DDP's constructor is collective: every rank gets here
            self._wrappers = self._wrap()
        with _swapped(self.task, self._wrappers):
            losses = self.task.training_step(batch, ctx)
        keys = sorted(losses)
        values = [torch.as_tensor(losses[k]).detach().float().reshape(()) for k in keys]
        flag = torch.tensor(float(self.trainer._stop_local))
        packed = torch.stack(
            [v.to(self.trainer.device) for v in values] + [flag.to(self.trainer.device)]
        )
        dist.all_reduce(packed, op=dist.ReduceOp.SUM)
        world = self.trainer.world_size
        if float(packed[-1]) > 0:
            self.trainer._stop = True
        return {k: packed[i] / world for i, k in enumerate(keys)}


# ------------------------------------------------------------------ the trainer


class DistributedTrainer(Trainer):
    """:class:`~napari_colorize.training.Trainer` for one process of a data-parallel run.

    Call :func:`init_distributed` first. Same parameters as the Trainer;
    ``config.batch_size`` is the global batch and must be divisible by the number
    of processes. See the module notes for how the batches are shared.

    Parameters
    ----------
    sync_batchnorm : bool, optional
        BatchNorm statistics over the global batch (default): SyncBatchNorm on
        GPUs, :class:`~.sync_norm.GlobalBatchNorm2d` elsewhere (gloo on CPUs).
        False: each process normalises with its own share of the batch.
    """

    def __init__(self, config, train_data, val_data=None, init_checkpoint=None, *,
                 resume=None, task_factory=None, sync_batchnorm=None):  # fmt: skip
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError(
                "DistributedTrainer needs a process group: call "
                "napari_colorize.training.distributed.init_distributed() first "
                "(under torchrun), or use Trainer for a single process"
            )
        super().__init__(config, train_data, val_data, init_checkpoint,
                         resume=resume, task_factory=task_factory)  # fmt: skip
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        if int(config.batch_size) % self.world_size:
            raise ValueError(
                f"batch_size {config.batch_size} is the global batch and must be divisible "
                f"by the number of processes ({self.world_size}); use e.g. "
                f"{self.world_size * max(1, int(config.batch_size) // self.world_size)}"
            )
        self.sync_batchnorm = sync_batchnorm
        self._stop_local = False
        inner = self.task_factory
        self.task_factory = lambda model, cfg: DistributedTask(inner(model, cfg), self)

    def request_stop(self) -> None:
        """Ask all processes to stop after the step that every one of them is in."""
        self._stop_local = True

    @property
    def stop_requested(self) -> bool:
        return self._stop_local or self._stop

    def _setup(self) -> None:
        cfg = self.config
        if torch.distributed.get_backend() == "nccl" and str(cfg.device) in ("auto", "cuda"):
            cfg.device = f"cuda:{torch.cuda.current_device()}"
        super()._setup()
        if self.batch_size % self.world_size:
            raise ValueError(
                f"the training data has only {self.n_train} items, so the global batch is "
                f"{self.batch_size}, which {self.world_size} processes cannot share evenly; "
                "use more data or fewer processes"
            )
        self.local_batch_size = self.batch_size // self.world_size
        if self.sync_batchnorm is False:
            return
        if self.device.type == "cuda":
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        else:  # PyTorch's SyncBatchNorm needs a GPU: the same statistics by all-reduce
            from .sync_norm import convert_global_batchnorm

            for module in self.task.modules().values():  # the GAN's discriminator too
                convert_global_batchnorm(module)

    def _epoch_items(self, epoch: int) -> tuple[np.ndarray, int]:
        """This process's share of the items of ``epoch``, in order, and its batch size."""
        from torch.utils.data import DistributedSampler

        order = epoch_order(self.config.seed, epoch, self.n_train)
        order = order[: self.steps_per_epoch * self.batch_size]
        sampler = DistributedSampler(
            order, num_replicas=self.world_size, rank=self.rank, shuffle=False, drop_last=True
        )
        return order[np.fromiter(iter(sampler), dtype=np.int64)], self.local_batch_size

    def validate(self) -> dict[str, float]:
        """Validation metrics over all processes: each takes every ``world_size``-th item."""
        import torch.distributed as dist

        n = 0 if self.val_set is None else len(self.val_set)
        if n == 0:
            return {}
        if n < self.world_size:  # too few to share: every process validates all
            return super().validate()
        mine = range(self.rank, n, self.world_size)
        sums, count = self._validation_sums(mine, self.local_batch_size)
        keys = sorted(sums)
        packed = torch.tensor([sums[k] for k in keys] + [float(count)], dtype=torch.float64)
        packed = packed.to(self.device)
        dist.all_reduce(packed, op=dist.ReduceOp.SUM)
        total = float(packed[-1])
        return {f"val_{k}": float(packed[i]) / total for i, k in enumerate(keys)}

    def preview(self, index: int = 0):
        """The preview on rank 0; None elsewhere (only rank 0 reports)."""
        return super().preview(index) if self.rank == 0 else None

    def save(self, path=None, step: int | None = None):
        """Rank 0 writes the checkpoint; every rank waits until it is on disk."""
        import torch.distributed as dist

        target = None
        if self.rank == 0:
            target = super().save(path, step)
        dist.barrier()
        return target if target is not None else Path(path or self.config.out)


# ------------------------------------------------------------------ launching

_MODULE = "napari_colorize.train"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _spawn_entry(local_rank: int, world_size: int, port: int, backend, fn, args) -> None:
    os.environ.update(
        RANK=str(local_rank), LOCAL_RANK=str(local_rank), WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    init_distributed("cpu" if backend == "gloo" else "auto", backend=backend)
    try:
        fn(local_rank, *args)
    finally:
        cleanup_distributed()


def spawn(fn, nprocs: int, *args, backend: str = "gloo") -> None:
    """Run ``fn(rank, *args)`` in ``nprocs`` local processes that form a process group.

    For notebooks and tests: what ``torchrun --standalone --nproc_per_node=N`` does
    for a script. ``fn`` must be importable (defined at module level); the group is
    joined before it runs (:func:`init_distributed`) and left after.
    """
    import torch.multiprocessing as mp

    port = free_port()
    mp.spawn(_spawn_entry, args=(nprocs, port, backend, fn, args), nprocs=nprocs, join=True)


def launch_torchrun(
    argv: list[str], nproc_per_node: int, *, module="napari_colorize.train"
) -> int:
    """Start ``torchrun --standalone --nproc_per_node=N -m MODULE ARGV`` and wait for it.

    Returns its exit status. Multi-node runs are started with torchrun itself
    (see docs/training.md).
    """
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={int(nproc_per_node)}", "-m", module, *argv,
    ]  # fmt: skip
    return subprocess.call(command)


def under_torchrun() -> bool:
    """Whether this process was started by torchrun (or :func:`spawn`)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def default_nproc() -> int:
    """Processes per node when none are given: one per GPU, else 2 CPU processes."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 2


def _without_option(argv: list[str], name: str) -> list[str]:
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == name:
            skip = True
        elif not item.startswith(name + "="):
            out.append(item)
    return out


def relaunch_train(nproc_per_node: int | None = None, argv: list[str] | None = None) -> int:
    """Start this ``train`` command again under torchrun on this machine; its exit status.

    ``argv`` defaults to this process's arguments after the ``train`` subcommand,
    without ``--nproc-per-node``.
    """
    if argv is None:
        argv = sys.argv[1:]
        if argv and argv[0] == "train":
            argv = argv[1:]
    argv = _without_option(list(argv), "--nproc-per-node")
    return launch_torchrun(argv, nproc_per_node or default_nproc())


def join_if_distributed(distributed: bool, device: str | None) -> DistributedWorld | None:
    """Join the process group when asked to (``--distributed``) or under a multi-process torchrun.

    Returns None for a single-process run.
    """
    if not (distributed or world_from_env().world_size > 1):
        return None
    return init_distributed(device or "auto")
