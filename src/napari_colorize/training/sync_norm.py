"""BatchNorm over the global batch of a data-parallel run, on any device (gloo included).

PyTorch's ``SyncBatchNorm`` runs only on GPUs. :class:`GlobalBatchNorm2d`
all-reduces the per-channel sums, sums of squares and counts of every process
(differentiably), so training statistics, running statistics and gradients are
those of one process seeing the whole global batch: a data-parallel run on CPUs
follows a one-process run to float rounding.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GlobalBatchNorm2d", "convert_global_batchnorm"]


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training statistics are the global batch's.

    Outside training, or without an initialised process group of more than
    one process, it is exactly ``nn.BatchNorm2d``. The state dict is the same,
    so checkpoints load into either.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if not (
            self.training
            and self.track_running_stats
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size() > 1
        ):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        channels = x.shape[1]
        count = torch.full((1,), x.numel() / channels, dtype=x.dtype, device=x.device)
        local = torch.cat([x.sum((0, 2, 3)), (x * x).sum((0, 2, 3)), count])
        total = all_reduce(local)  # sums over the processes; its backward sums the gradients
        n = total[-1]
        mean = total[:channels] / n
        var = (total[channels : 2 * channels] / n - mean * mean).clamp(min=0.0)
        with torch.no_grad():
            self.num_batches_tracked += 1
            momentum = (
                1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            )
            unbiased = var * (n / (n - 1)) if float(n) > 1 else var
            self.running_mean.lerp_(mean.detach(), momentum)
            self.running_var.lerp_(unbiased.detach(), momentum)
        scale = torch.rsqrt(var + self.eps)
        if self.affine:
            shift = self.bias - mean * scale * self.weight
            scale = scale * self.weight
        else:
            shift = -mean * scale
        return x * scale[None, :, None, None] + shift[None, :, None, None]


def convert_global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` in ``module`` by :class:`GlobalBatchNorm2d`, in place.

    The new norms hold the very same parameters and buffers (an optimizer
    built before the conversion keeps working) and the same train/eval mode.

    Returns
    -------
    torch.nn.Module
        ``module`` (or the new norm, when ``module`` itself is a BatchNorm2d).
    """
    if type(module) is nn.BatchNorm2d:
        norm = GlobalBatchNorm2d.__new__(GlobalBatchNorm2d)
        norm.__dict__ = module.__dict__.copy()  # the same parameters, buffers and hooks
        norm._parameters = module._parameters
        norm._buffers = module._buffers
        return norm
    for name, child in module.named_children():
        converted = convert_global_batchnorm(child)
        if converted is not child:
            setattr(module, name, converted)
    return module
