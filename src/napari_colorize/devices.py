"""Choosing a torch device: ``auto`` picks CUDA, then MPS, then the CPU."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

__all__ = [
    "DeviceInfo",
    "autocast_dtype",
    "available_devices",
    "precision_name",
    "resolve_device",
]


@dataclass(frozen=True)
class DeviceInfo:
    """A device a user can pick, with a label for menus."""

    name: str  # what torch.device() takes: "cpu", "cuda:0", "mps"
    label: str  # e.g. "cuda:0 - NVIDIA H100 (74.1 GB free)"
    free_bytes: int | None = None


def resolve_device(device="auto"):
    """Turn ``"auto"``, a name such as ``"cuda:1"``, or a ``torch.device`` into a usable device.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` picks CUDA, then MPS, then CPU.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If the named device does not exist on this machine.
    """
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    name = str(device or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(
            f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} was asked for but this torch has no CUDA GPU; "
                "use --device cpu (or auto), or install a CUDA build of torch"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"device {device!r} does not exist: this machine has {count} CUDA "
                f"device(s), cuda:0..cuda:{count - 1}"
            )
    if dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise ValueError(f"device {device!r} is not available here; use 'cpu' or 'auto'")
    return dev


def available_devices() -> list[DeviceInfo]:
    """List the devices of this machine, CUDA first with their free memory, then MPS, then CPU."""
    import torch

    found = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free = None
            with contextlib.suppress(RuntimeError):
                free, _total = torch.cuda.mem_get_info(i)
            name = torch.cuda.get_device_name(i)
            extra = f" ({free / 1e9:.1f} GB free)" if free is not None else ""
            found.append(DeviceInfo(f"cuda:{i}", f"cuda:{i} - {name}{extra}", free))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append(DeviceInfo("mps", "mps - Apple GPU"))
    found.append(DeviceInfo("cpu", "cpu"))
    return found


def autocast_dtype(device):
    """The reduced precision to autocast to on ``device``, or None where it does not pay off.

    bf16 on CUDA GPUs that support it, else fp16 on CUDA; None on CPU and MPS.
    """
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


#: What ``Colorizer(precision=...)`` and ``--precision`` take.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def inference_dtype(device, precision: str = "auto"):
    """The dtype a network runs in under autocast on ``device``, or None for float32.

    Parameters
    ----------
    device : str or torch.device
    precision : {"auto", "fp32", "bf16", "fp16"}
        ``"auto"``: :func:`autocast_dtype` (bf16 or fp16 on CUDA; float32 on
        the CPU and MPS: on a CPU with AMX the Colorizer itself takes bf16
        where the model records that bf16 keeps its colours within 0.1
        CIEDE2000 of float32 on its quality set, or, without that record, where
        a check on the run's own data says so, see
        :mod:`napari_colorize.inference.precision`).
        The others force that precision: ``"bf16"`` on the CPU is fast only
        with AMX, ``"fp16"`` needs CUDA or MPS.

    Raises
    ------
    ValueError
        For an unknown precision or one the device cannot run.
    """
    import torch

    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return autocast_dtype(device)
    if precision == "fp32":
        return None
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(f"{device} does not support bf16; use precision='fp16'")
        if device.type == "mps":
            raise ValueError("bf16 autocast is not offered on MPS; use precision='fp16'")
        return torch.bfloat16
    if device.type == "cpu":
        raise ValueError("fp16 runs on CUDA or MPS; on the CPU use precision='bf16' or 'fp32'")
    return torch.float16


def precision_name(dtype) -> str:
    """The :data:`PRECISIONS` name of an autocast dtype (None: ``"fp32"``).

    The inverse of :func:`inference_dtype`.
    """
    if dtype is None:
        return "fp32"
    return "bf16" if "bfloat16" in str(dtype) else "fp16"
