"""The speed levers of a training run: memory format, fused optimizers, precision, compile.

What :class:`~napari_colorize.training.Trainer` applies from
:class:`~napari_colorize.training.TrainConfig` (``channels_last``,
``fused_optimizer``, ``amp``, ``compile``). The automatic choices are the ones
``python -m benchmarks.run --suite training`` measured faster (see
``docs/benchmarks.md``, "Training throughput"): channels-last on CUDA and the
CPU, fused Adam/AdamW/SGD where torch has the kernel for the device; bf16 on
the CPU and ``torch.compile`` are opt-ins.
"""

from __future__ import annotations

import contextlib
import os
import shutil

import torch
from torch import nn

__all__ = [
    "COMPILE_BACKEND",
    "amp_dtype",
    "check_compile",
    "compile_failure",
    "compile_modules",
    "eager",
    "fused_supported",
    "move_batch",
    "wants_channels_last",
]

#: ``amp`` values besides True ("auto") and False ("fp32").
AMP_CHOICES = (True, False, "auto", "fp32", "bf16", "fp16")
#: The ``torch.compile`` backend (tests swap in ``"aot_eager"``, which needs no compiler).
COMPILE_BACKEND = "inductor"


def wants_channels_last(setting: bool | None, device) -> bool:
    """Whether to train in the channels-last memory format.

    Parameters
    ----------
    setting : bool or None
        ``TrainConfig.channels_last``; None: on CUDA and on the CPU (oneDNN's
        convolutions are faster in it: ``beta`` trains 1.4-1.9x faster on this
        project's benchmark CPU), not on MPS or other devices.
    device : torch.device
    """
    if setting is None:
        return torch.device(device).type in ("cuda", "cpu")
    return bool(setting)


def fused_supported(params) -> bool:
    """Whether torch has fused optimizer kernels for all of ``params`` (floating, on a device)."""
    params = list(params)
    try:
        from torch.optim.optimizer import _get_fused_kernels_supported_devices

        kinds = set(_get_fused_kernels_supported_devices())
    except ImportError:  # an older torch: fused kernels on CUDA only
        kinds = {"cuda"}
    return bool(params) and all(
        p.is_floating_point() and p.device.type in kinds and not p.is_sparse for p in params
    )


def amp_dtype(amp, device):
    """The autocast dtype of ``TrainConfig.amp`` on ``device``, or None for float32.

    Parameters
    ----------
    amp : bool or str
        True or ``"auto"``: bf16 (else fp16 with a loss scaler) on CUDA, float32
        elsewhere. False or ``"fp32"``: float32. ``"bf16"``: bf16 autocast on
        any device that has it, the CPU included (fast with AVX512-BF16 or
        AMX). ``"fp16"``: CUDA or MPS.
    device : torch.device

    Raises
    ------
    ValueError
        An unknown value, or a precision ``device`` cannot run.
    """
    from ..devices import inference_dtype

    if amp not in AMP_CHOICES:
        raise ValueError(
            f"amp must be True, False or one of 'auto', 'fp32', 'bf16', 'fp16'; got {amp!r}"
        )
    precision = "auto" if amp is True else "fp32" if amp is False else amp
    try:
        return inference_dtype(device, precision)
    except ValueError as exc:
        raise ValueError(f"{exc} (TrainConfig.amp, or --precision of the train command)") from None


def move_batch(batch, device, channels_last: bool = False) -> tuple:
    """The tensors of ``batch`` on ``device``; 4-D ones channels-last if asked."""
    out = []
    for t in batch:
        t = t.to(device, non_blocking=True)
        if channels_last and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        out.append(t)
    return tuple(out)


def check_compile(device) -> None:
    """Raise a one-line ``ValueError`` where ``torch.compile`` cannot run on ``device``.

    It needs torch 2 with TorchDynamo on this Python, a C++ compiler for the
    CPU, and Triton for CUDA GPUs.
    """
    device = torch.device(device)
    fix = "train without --compile (compile=False)"
    if not hasattr(torch, "compile") or not hasattr(nn.Module, "compile"):
        raise ValueError(f"torch {torch.__version__} has no torch.compile (2.2+ has); {fix}")
    from torch import _dynamo

    if not _dynamo.is_dynamo_supported():
        raise ValueError(f"torch.compile does not support this Python or platform; {fix}")
    if COMPILE_BACKEND != "inductor":
        return
    if device.type == "cpu" and not _cpp_compiler():
        raise ValueError(
            "torch.compile needs a C++ compiler on the CPU and none was found; "
            f"install g++ or clang (or set CXX), or {fix}"
        )
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            raise ValueError(f"torch.compile needs Triton on CUDA (pip install triton); or {fix}")


def _cpp_compiler() -> str | None:
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        return get_cpp_compiler()
    except Exception:  # torch looked and found none (or has another layout)
        names = (os.environ.get("CXX"), "g++", "clang++", "c++", "cl")
        return next((n for n in names if n and shutil.which(n)), None)


def compile_modules(modules) -> None:
    """``torch.compile`` each trainable module in place (``nn.Module.compile``).

    In place, so the modules keep their own state-dict keys (no ``_orig_mod.``
    prefix): checkpoints, resume and inference see plain modules.
    """
    for module in modules:
        if any(p.requires_grad for p in module.parameters()):
            module.compile(backend=COMPILE_BACKEND)


def eager(compiled: bool = True):
    """A context in which compiled modules run eagerly (``torch.compiler.set_stance``).

    A no-op when nothing was compiled, or with a torch before 2.6 (the compiled
    code then runs, recompiled for the new shapes or mode).
    """
    set_stance = getattr(getattr(torch, "compiler", None), "set_stance", None)
    if not compiled or set_stance is None:
        return contextlib.nullcontext()
    return set_stance("force_eager")


def compile_failure(exc: Exception) -> ValueError | None:
    """A one-line error for an exception raised while ``torch.compile`` compiled; else None."""
    import torch._dynamo.exc as dynamo_exc

    kinds = tuple(
        getattr(dynamo_exc, name)
        for name in ("BackendCompilerFailed", "InternalTorchDynamoError")
        if hasattr(dynamo_exc, name)
    )
    if not isinstance(exc, kinds):
        return None
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ValueError(
        f"torch.compile failed on this model ({first[:200]}); train without --compile"
    )
