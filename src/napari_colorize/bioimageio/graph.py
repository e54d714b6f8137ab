"""The torch modules a bioimage.io package holds, and the adapter that reads one back.

:class:`GrayToRGB` is the whole colorization as one TorchScript graph: gray in
[0, 1] -> L (as :func:`napari_colorize.color.gray_to_l`) -> the working size ->
the network -> ab -> sRGB with the input's own L, colours outside the gamut
moved towards the gray of the same luminance (the policy of
:func:`napari_colorize.color.l_ab_to_rgb`).
:class:`RGBModelAsColorizer` turns any gray -> RGB network back into the model
contract (``l_net -> ab / AB_SCALE``) so the :class:`~napari_colorize.inference.Colorizer`
tiles and composes it like its own models. The Lab maths is repeated here in plain
torch ops so that the graph needs nothing but torch.
"""

from __future__ import annotations

import contextlib
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ..color import RGB_FROM_XYZ, WHITE_D65, XYZ_FROM_RGB

__all__ = [
    "GrayToRGB",
    "OwnGraphAsColorizer",
    "RGBModelAsColorizer",
    "gray_to_l_torch",
    "l_to_gray_torch",
]

# TorchScript takes no global constants: the numbers of color.py are written out below
# (tests check they agree): _EPS 0.008856, _KAPPA 7.787, 16/116, _F_INV_SWITCH 0.2068966,
# the Y row of the XYZ matrix sums to 1.0, L_MAX 100, AB_SCALE 128


@contextlib.contextmanager
def quiet_jit():
    """Silence torch's deprecation of TorchScript: bioimage.io packages still run on it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit", category=DeprecationWarning)
        yield


def _srgb_to_linear(v: torch.Tensor) -> torch.Tensor:
    return torch.where(v > 0.04045, ((v.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, v / 12.92)


def _linear_to_srgb(v: torch.Tensor) -> torch.Tensor:
    return torch.where(
        v > 0.0031308, 1.055 * v.clamp(min=0.0031308) ** (1.0 / 2.4) - 0.055, 12.92 * v
    )


def _f(t: torch.Tensor) -> torch.Tensor:
    cube_root = t.clamp(min=0.008856) ** (1.0 / 3.0)
    return torch.where(t > 0.008856, cube_root, 7.787 * t + 16.0 / 116.0)


def _f_inverse(f: torch.Tensor) -> torch.Tensor:
    return torch.where(f > 0.2068966, f**3, (f - 16.0 / 116.0) / 7.787)


def gray_to_l_torch(gray: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] of gamma-encoded gray values in [0, 1] (any shape)."""
    return 116.0 * _f(_srgb_to_linear(gray)) - 16.0


def l_to_gray_torch(lightness: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`gray_to_l_torch`: the sRGB gray value of L (any shape)."""
    y = _f_inverse((lightness + 16.0) / 116.0)
    return _linear_to_srgb(y.clamp(0.0, 1.0))


def _matrix(m) -> torch.Tensor:
    return torch.tensor([[float(v) for v in row] for row in m], dtype=torch.float32)


class GrayToRGB(nn.Module):
    """Gray ``(N, 1, H, W)`` in [0, 1] -> sRGB ``(N, 3, H, W)`` in [0, 1], keeping L.

    Parameters
    ----------
    network : nn.Module
        The model contract's network (``l_net (N,1,h,w) -> ab / AB_SCALE``),
        typically traced; it sees inputs padded to a multiple of ``multiple``.
    near, reference, default : int
        The working-size rule of :func:`napari_colorize.cards.auto_working_size`:
        images whose longest side is at most ``4 * reference`` work at ``near``
        px, others at ``max(default, near)``; ``near <= 0`` means full
        resolution, ``reference <= 0`` always ``near``.
    multiple : int
        The network's input sides are padded (edge replication) to a multiple of this.
    """

    def __init__(self, network: nn.Module, near: int, reference: int, default: int, multiple: int):
        super().__init__()
        self.network = network
        self.near = int(near)
        self.reference = int(reference)
        self.default = int(default)
        self.multiple = max(1, int(multiple))
        self.register_buffer("white", torch.tensor(WHITE_D65).view(1, 3, 1, 1))
        self.register_buffer("rgb_from_xyz", _matrix(RGB_FROM_XYZ))

    def working_shape(self, height: int, width: int) -> list[int]:
        """The ``[h, w]`` the network sees for an image of ``height x width``."""
        longest = max(height, width)
        size = self.near
        if size > 0 and self.reference > 0 and longest > 4 * self.reference:
            size = max(self.default, size)
        if size <= 0 or longest <= size:
            return [height, width]
        scale = size / longest
        # TorchScript's round gives a float
        h = int(round(height * scale))  # noqa: RUF046
        w = int(round(width * scale))  # noqa: RUF046
        return [max(1, h), max(1, w)]

    def predict_ab(self, lightness: torch.Tensor) -> torch.Tensor:
        """ab in Lab units at full size for L ``(N, 1, H, W)``."""
        height, width = lightness.shape[-2], lightness.shape[-1]
        work = self.working_shape(height, width)
        small = lightness
        if work[0] != height or work[1] != width:
            small = F.interpolate(lightness, size=work, mode="area")
        x = small / 50.0 - 1.0
        ph = (self.multiple - work[0] % self.multiple) % self.multiple
        pw = (self.multiple - work[1] % self.multiple) % self.multiple
        x = F.pad(x, [0, pw, 0, ph], mode="replicate")
        ab = self.network(x)[:, :, : work[0], : work[1]]
        ab = ab.clamp(-1.0, 1.0) * 128.0
        if work[0] != height or work[1] != width:
            ab = F.interpolate(ab, size=[height, width], mode="bilinear", align_corners=False)
        # a constant image has nothing to tell colours by: it stays gray
        flat = lightness.flatten(1)
        varies = (flat.amax(dim=1) > flat.amin(dim=1)).to(ab.dtype).view(-1, 1, 1, 1)
        return ab * varies

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        gray = gray.float().clamp(0.0, 1.0)
        lightness = gray_to_l_torch(gray)
        ab = self.predict_ab(lightness)
        fy = (lightness + 16.0) / 116.0
        x = _f_inverse(fy + ab[:, 0:1] / 500.0) * self.white[:, 0:1]
        z = _f_inverse(fy - ab[:, 1:2] / 200.0) * self.white[:, 2:3]
        lum = _f_inverse(fy).clamp(0.0, 1.0)
        xyz = torch.cat([x, lum, z], dim=1)
        linear = torch.einsum("ij,njhw->nihw", self.rgb_from_xyz, xyz)
        # out of gamut: towards the gray of the same luminance Y (so L stays)
        hi = linear.amax(dim=1, keepdim=True)
        lo = linear.amin(dim=1, keepdim=True)
        eps = 1e-12
        scale = (1.0 - lum) / (hi - lum).clamp(min=eps)
        scale = torch.minimum(scale, lum / (lum - lo).clamp(min=eps)).clamp(max=1.0)
        linear = (linear - lum) * scale + lum
        return _linear_to_srgb(linear.clamp(0.0, 1.0))


class RGBModelAsColorizer(nn.Module):
    """A gray -> RGB network as a model-contract colorizer: ``l_net -> ab / AB_SCALE``.

    Parameters
    ----------
    rgb_model : callable
        Takes gray ``(N, 1, h, w)`` in [0, 1] and returns sRGB ``(N, 3, h, w)`` in
        [0, 1] (see :mod:`napari_colorize.bioimageio.loading` for packages whose
        tensors are laid out otherwise).
    """

    def __init__(self, rgb_model: nn.Module):
        super().__init__()
        self.rgb_model = rgb_model
        self.register_buffer("white", torch.tensor(WHITE_D65).view(1, 3, 1, 1))
        self.register_buffer("xyz_from_rgb", _matrix(XYZ_FROM_RGB))

    def forward(self, l_net: torch.Tensor) -> torch.Tensor:
        lightness = (l_net.float() + 1.0) * 50.0
        rgb = self.rgb_model(l_to_gray_torch(lightness)).float()
        if rgb.ndim != 4 or rgb.shape[1] != 3:
            raise ValueError(
                f"the bioimage.io model returned shape {tuple(rgb.shape)}; expected RGB "
                "(N, 3, H, W)"
            )
        linear = _srgb_to_linear(rgb.clamp(0.0, 1.0))
        xyz = torch.einsum("ij,njhw->nihw", self.xyz_from_rgb, linear) / self.white
        f = _f(xyz)
        a = 500.0 * (f[:, 0] - f[:, 1])
        b = 200.0 * (f[:, 1] - f[:, 2])
        return torch.stack([a, b], dim=1) / 128.0


class OwnGraphAsColorizer(nn.Module):
    """A :class:`GrayToRGB` graph read back from a package, as a model-contract colorizer.

    Its ab are taken before Lab -> RGB (``graph.predict_ab``), so the colours are
    exactly those of the exported model, out-of-gamut ones included.
    """

    def __init__(self, graph):
        super().__init__()
        self.graph = graph

    def forward(self, l_net: torch.Tensor) -> torch.Tensor:
        return self.graph.predict_ab((l_net.float() + 1.0) * 50.0) / 128.0


def trace_network(model: nn.Module, example: torch.Tensor, check: torch.Tensor | None = None):
    """``torch.jit.trace`` of ``model`` (eval mode), checked against eager mode on ``check``.

    Raises
    ------
    ValueError
        When the traced graph gives other results than the model on ``check``
        (a graph with size-dependent Python branches).
    """
    model = model.eval()
    with torch.no_grad(), warnings.catch_warnings(), quiet_jit():
        # the checks below catch what the tracer warns about
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, example, check_trace=False)
        for x in (example,) if check is None else (example, check):
            want, got = model(x), traced(x)
            if want.shape != got.shape or not torch.allclose(want, got, atol=1e-5):
                raise ValueError(
                    "this model cannot be exported to TorchScript: its traced graph gives "
                    f"other results than the model at size {tuple(x.shape[-2:])}"
                )
    return traced
