"""The hint format: how every hint-aware model of napari-colorize takes colour hints.

This is **the** hint format of napari-colorize; every hint-aware architecture
takes it as the ``hints`` argument of ``forward``:

``hints`` : float tensor ``(N, 3, H, W)``, the same ``N, H, W`` as the L input

- channels 0-1: the hinted colour as ``ab_to_net(ab)`` (``ab / 128``) at the
  hinted pixels; values where the mask is 0 are ignored (multiplied by the mask).
- channel 2: the mask, 1 where a hint is given, 0 elsewhere (values in [0, 1]).

``hints=None`` means no hints (zero ab, empty mask). :func:`empty_hints` makes
such a tensor, :func:`check_hints` validates one against an L input. A model that
takes hints says so with the class attribute ``accepts_hints = True``.

Nothing here imports torch at module level: :mod:`napari_colorize.hints` (napari
points -> hint maps) takes :data:`HINT_CHANNELS` from here without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["HINT_CHANNELS", "check_hints", "empty_hints", "model_accepts_hints"]

#: Channels of a hint tensor: ab (2, in ``ab_to_net`` units) + mask (1).
HINT_CHANNELS = 3


def empty_hints(l_net: torch.Tensor) -> torch.Tensor:
    """A hint tensor with no hints (zero ab, empty mask) matching an L input.

    Parameters
    ----------
    l_net : torch.Tensor
        ``(N, 1, H, W)`` L input; its batch size, size, device and dtype are used.

    Returns
    -------
    torch.Tensor
        ``(N, 3, H, W)`` zeros.
    """
    n, _, h, w = l_net.shape
    return l_net.new_zeros((n, HINT_CHANNELS, h, w))


def check_hints(hints, l_net: torch.Tensor) -> torch.Tensor:
    """Validate a hint tensor against an L input (see the module's *Hint format*).

    Parameters
    ----------
    hints : torch.Tensor or None
        ``(N, 3, H, W)``: ab hints as ``ab_to_net(ab)`` in channels 0-1, mask in
        channel 2. ``None`` gives :func:`empty_hints`.
    l_net : torch.Tensor
        The ``(N, 1, H, W)`` L input the hints belong to.

    Returns
    -------
    torch.Tensor
        The hints in the dtype and on the device of ``l_net``, with the ab
        zeroed where the mask is 0.

    Raises
    ------
    ValueError
        A shape that does not match ``l_net`` or a mask outside [0, 1].
    """
    import torch

    if hints is None:
        return empty_hints(l_net)
    n, _, h, w = l_net.shape
    if not isinstance(hints, torch.Tensor) or tuple(hints.shape) != (n, HINT_CHANNELS, h, w):
        shape = tuple(hints.shape) if isinstance(hints, torch.Tensor) else type(hints).__name__
        raise ValueError(
            f"hints must be a tensor of shape {(n, HINT_CHANNELS, h, w)} (ab_to_net(ab) in "
            f"channels 0-1, a 0/1 mask in channel 2) matching the L input, got {shape}"
        )
    hints = hints.to(device=l_net.device, dtype=l_net.dtype)
    mask = hints[:, 2:3]
    if bool(((mask < 0) | (mask > 1)).any()):
        raise ValueError(
            "the hint mask (channel 2 of hints) must lie in [0, 1]: 1 where a hint is "
            "given, 0 elsewhere"
        )
    return torch.cat([hints[:, :2] * mask, mask], dim=1)


def model_accepts_hints(model) -> bool:
    """Whether a loaded model takes ``hints=`` in the package's hint format."""
    flag = getattr(model, "accepts_hints", None)
    if flag is not None:
        return bool(flag)
    config = getattr(model, "config", None)
    return bool(getattr(config, "hints", False))
