"""sRGB <-> CIE Lab (D65, 2 degree observer) for numpy and torch, and network scaling.

numpy functions take and return channel-last arrays of any leading shape;
torch functions take and return ``(N, 3, H, W)`` tensors (any float dtype, on
any device) and are differentiable. Both follow ``skimage.color.rgb2lab`` and
``lab2rgb`` (same constants, same piecewise functions) so that results agree to
well under 1e-3 in Lab.

This module is also the single place that defines how L and ab are scaled for
the networks (every model sees ``l_to_net(L)`` and predicts ``ab_to_net(ab)``)
and the one gamut policy for showing a prediction: :func:`l_ab_to_rgb` keeps
the input's L and moves colours outside the sRGB gamut towards the gray of the
same luminance (what the Colorizer shows and ``evaluate`` scores);
:func:`lab_to_rgb` is the plain conversion that clips, as scikit-image does.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = [
    "AB_SCALE",
    "L_MAX",
    "RGB_FROM_XYZ",
    "WHITE_D65",
    "XYZ_FROM_RGB",
    "ab_to_net",
    "f_inverse",
    "gray_to_l",
    "l_ab_to_rgb",
    "l_ab_to_rgb_torch",
    "l_to_net",
    "lab_to_rgb",
    "lab_to_rgb_torch",
    "net_to_ab",
    "net_to_l",
    "rgb_to_lab",
    "rgb_to_lab_torch",
    "srgb_lut",
]

#: L lies in [0, L_MAX]; the networks see it mapped to [-1, 1].
L_MAX = 100.0
#: The networks predict ab / AB_SCALE (a tanh output covers [-128, 128]).
AB_SCALE = 128.0
#: Reference white of D65 (2 degree observer), as in scikit-image.
WHITE_D65 = (0.95047, 1.0, 1.08883)

# Linear sRGB -> XYZ, as scikit-image defines it; the inverse is computed once.
_XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_RGB)
#: Linear sRGB -> XYZ (scikit-image's matrix) and its inverse, for modules that
#: write the conversion out themselves (the TorchScript graph of bioimage.io packages).
XYZ_FROM_RGB = _XYZ_FROM_RGB.copy()
RGB_FROM_XYZ = _RGB_FROM_XYZ.copy()

_EPS = 0.008856  # (6/29)**3, CIE's switch between cube root and linear part
_KAPPA = 7.787
_OFFSET = 16.0 / 116.0
_F_INV_SWITCH = 0.2068966  # f(_EPS)


def l_to_net(lightness):
    """Map L in [0, 100] to the networks' input range [-1, 1] (numpy or torch)."""
    return lightness / (L_MAX / 2) - 1.0


def net_to_l(x):
    """Inverse of :func:`l_to_net`."""
    return (x + 1.0) * (L_MAX / 2)


def ab_to_net(ab):
    """Map ab (roughly [-128, 127]) to the networks' target range [-1, 1]."""
    return ab / AB_SCALE


def net_to_ab(x):
    """Inverse of :func:`ab_to_net`."""
    return x * AB_SCALE


# --------------------------------------------------------------------- numpy


def _as_float_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim < 1 or rgb.shape[-1] != 3:
        raise ValueError(
            f"expected RGB values on the last axis (shape (..., 3)), got shape {rgb.shape}; "
            "drop an alpha channel with rgb[..., :3]"
        )
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) / 255.0
    if rgb.dtype == np.uint16:
        return rgb.astype(np.float32) / 65535.0
    if rgb.dtype.kind == "f":
        return rgb if rgb.dtype in (np.float32, np.float64) else rgb.astype(np.float32)
    raise ValueError(
        f"RGB must be float in [0, 1], uint8 or uint16, got dtype {rgb.dtype}; "
        "convert it with napari_colorize.images first"
    )


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Convert sRGB to CIE Lab (D65).

    Parameters
    ----------
    rgb : numpy.ndarray
        Shape ``(..., 3)``; float in [0, 1] (float32 or float64), uint8 or uint16.

    Returns
    -------
    numpy.ndarray
        Lab with L in [0, 100] and a, b roughly in [-128, 127]; float64 for
        float64 input, float32 otherwise.
    """
    rgb = _as_float_rgb(rgb)
    dtype = rgb.dtype
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = linear @ _XYZ_FROM_RGB.T.astype(dtype) / np.asarray(WHITE_D65, dtype=dtype)
    f = np.where(xyz > _EPS, np.cbrt(np.maximum(xyz, _EPS)), _KAPPA * xyz + _OFFSET)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    lab = np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)
    return lab.astype(dtype, copy=False)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Convert CIE Lab (D65) to sRGB in [0, 1], clipping colors outside the gamut.

    Parameters
    ----------
    lab : numpy.ndarray
        Shape ``(..., 3)``, float.

    Returns
    -------
    numpy.ndarray
        RGB in [0, 1] with the input's float dtype (float32 for other dtypes).
    """
    lab = np.asarray(lab)
    if lab.ndim < 1 or lab.shape[-1] != 3:
        raise ValueError(f"expected Lab on the last axis (shape (..., 3)), got shape {lab.shape}")
    dtype = lab.dtype if lab.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    lab = lab.astype(dtype, copy=False)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = np.maximum(fy - lab[..., 2] / 200.0, 0.0)  # z < 0 is outside any gamut
    f = np.stack([fx, fy, fz], axis=-1)
    xyz = np.where(f > _F_INV_SWITCH, f**3, (f - _OFFSET) / _KAPPA)
    xyz = xyz * np.asarray(WHITE_D65, dtype=dtype)
    linear = xyz @ _RGB_FROM_XYZ.T.astype(dtype)
    rgb = np.where(
        linear > 0.0031308,
        1.055 * np.maximum(linear, 0.0031308) ** (1 / 2.4) - 0.055,
        12.92 * linear,
    )
    return np.clip(rgb, 0.0, 1.0).astype(dtype, copy=False)


def gray_to_l(gray: np.ndarray) -> np.ndarray:
    """L of a gamma-encoded (sRGB) gray value in [0, 1], as for an RGB pixel with r = g = b.

    Parameters
    ----------
    gray : numpy.ndarray
        Float values in [0, 1], any shape.

    Returns
    -------
    numpy.ndarray
        L in [0, 100], same shape, float32 unless the input is float64.
    """
    gray = np.asarray(gray)
    dtype = gray.dtype if gray.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    gray = gray.astype(dtype, copy=False)
    y = np.where(gray > 0.04045, ((gray + 0.055) / 1.055) ** 2.4, gray / 12.92)
    # the XYZ row sums to 1.0 for Y, so a neutral gray's Y is its linear value
    y = y * dtype.type(_XYZ_FROM_RGB[1].sum())
    f = np.where(y > _EPS, np.cbrt(np.maximum(y, _EPS)), _KAPPA * y + _OFFSET)
    return (116.0 * f - 16.0).astype(dtype, copy=False)


# --------------------------------------------------------------------- torch


def _check_nchw(x, what: str) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a {what} tensor of shape (N, 3, H, W), got {tuple(x.shape)}")


def _matmul_channels(x, matrix):
    import torch

    m = torch.as_tensor(matrix, dtype=x.dtype, device=x.device)
    return torch.einsum("ij,njhw->nihw", m, x)


def rgb_to_lab_torch(rgb):
    """Differentiable sRGB -> Lab for a ``(N, 3, H, W)`` float tensor in [0, 1].

    Parameters
    ----------
    rgb : torch.Tensor
        Float tensor (float16/bfloat16 inputs are computed in float32).

    Returns
    -------
    torch.Tensor
        Lab, same shape, dtype float32 or float64 (that of the computation).
    """
    import torch

    _check_nchw(rgb, "RGB")
    if rgb.dtype not in (torch.float32, torch.float64):
        rgb = rgb.float()
    linear = torch.where(
        rgb > 0.04045, ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92
    )
    white = torch.tensor(WHITE_D65, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    xyz = _matmul_channels(linear, _XYZ_FROM_RGB) / white
    # clamp inside the cube-root branch keeps gradients finite at zero
    f = torch.where(xyz > _EPS, xyz.clamp(min=_EPS) ** (1.0 / 3.0), _KAPPA * xyz + _OFFSET)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def lab_to_rgb_torch(lab):
    """Differentiable Lab -> sRGB in [0, 1] for a ``(N, 3, H, W)`` tensor; out-of-gamut clips.

    Parameters
    ----------
    lab : torch.Tensor
        Float tensor with L in [0, 100].

    Returns
    -------
    torch.Tensor
        RGB in [0, 1], same shape.
    """
    import torch

    _check_nchw(lab, "Lab")
    if lab.dtype not in (torch.float32, torch.float64):
        lab = lab.float()
    fy = (lab[:, 0] + 16.0) / 116.0
    fx = fy + lab[:, 1] / 500.0
    fz = (fy - lab[:, 2] / 200.0).clamp(min=0.0)
    f = torch.stack([fx, fy, fz], dim=1)
    xyz = torch.where(f > _F_INV_SWITCH, f**3, (f - _OFFSET) / _KAPPA)
    white = torch.tensor(WHITE_D65, dtype=lab.dtype, device=lab.device).view(1, 3, 1, 1)
    linear = _matmul_channels(xyz * white, _RGB_FROM_XYZ)
    rgb = torch.where(
        linear > 0.0031308,
        1.055 * linear.clamp(min=0.0031308) ** (1 / 2.4) - 0.055,
        12.92 * linear,
    )
    return rgb.clamp(0.0, 1.0)


# --------------------------------------------------------------- the gamut policy

#: Resolution of the linear-light -> sRGB uint8 lookup table of :func:`srgb_lut`.
LUT_SIZE = 1 << 16
_RGB_FROM_XYZ_ROWS = [[float(v) for v in row] for row in _RGB_FROM_XYZ]


def srgb_lut(device="cpu"):
    """sRGB uint8 of linear light in [0, 1]: a table of ``LUT_SIZE + 1`` entries (torch)."""
    import torch

    lin = np.linspace(0.0, 1.0, LUT_SIZE + 1)
    srgb = np.where(lin > 0.0031308, 1.055 * lin ** (1 / 2.4) - 0.055, 12.92 * lin)
    return torch.from_numpy(np.round(srgb * 255.0).astype(np.uint8)).to(device)


def f_inverse(f):
    """Inverse of Lab's f() on a torch tensor, in place: f**3 above 6/29, linear below.

    Written as ``max(f, s)**3 + (min(f, s) - s) / kappa`` (s = 6/29), which is
    the same function (the two parts meet at s) with fewer passes over memory.
    """
    cube = f.clamp(min=_F_INV_SWITCH).pow_(3)
    lower = f.clamp_(max=_F_INV_SWITCH)
    return cube.add_(lower, alpha=1.0 / _KAPPA).sub_(_F_INV_SWITCH / _KAPPA)


def l_ab_to_rgb_torch(lightness, ab, out, lut, *, always_fit: bool = False) -> None:
    """sRGB uint8 of L ``(rows, W)`` and ab ``(2, rows, W)`` into ``out`` ``(rows, W, 3)``.

    The one gamut policy: Lab outside the sRGB gamut is moved towards the gray
    of the same luminance Y in linear RGB (Y is a fixed positive mix of linear
    R, G, B summing to 1, so the move keeps Y and hence L), just far enough to
    fit. Inside the gamut the result is :func:`lab_to_rgb`'s, rounded to uint8
    through ``lut`` (:func:`srgb_lut` on the tensors' device).

    Parameters
    ----------
    lightness, ab : torch.Tensor
        float32; not modified.
    out : torch.Tensor
        uint8, written in place.
    lut : torch.Tensor
        :func:`srgb_lut` on the same device.
    always_fit : bool
        Skip the check whether anything is out of gamut (a sync on a GPU) and
        always apply the move (an identity inside the gamut).
    """
    import torch

    fy = lightness.add(16.0).mul_(1.0 / 116.0)
    x = f_inverse(torch.add(fy, ab[0], alpha=1.0 / 500.0)).mul_(WHITE_D65[0])
    z = f_inverse(torch.add(fy, ab[1], alpha=-1.0 / 200.0)).mul_(WHITE_D65[2])
    lum = f_inverse(fy).clamp_(0.0, 1.0)
    lin = []
    for m in _RGB_FROM_XYZ_ROWS:
        lin.append(torch.mul(x, m[0]).add_(lum, alpha=m[1]).add_(z, alpha=m[2]))
    del x, z
    hi = torch.maximum(torch.maximum(lin[0], lin[1]), lin[2])
    lo = torch.minimum(torch.minimum(lin[0], lin[1]), lin[2])
    # the common case, all in gamut, skips the move
    if always_fit or bool(hi.max() > 1.0) or bool(lo.min() < 0.0):
        eps = 1e-12
        # >= 1 where that side is in gamut, since lo <= lum <= hi
        scale = torch.rsub(lum, 1.0).div_(hi.sub_(lum).clamp_(min=eps))
        scale = torch.minimum(scale, lum.div(torch.rsub(lo, lum).clamp_(min=eps)))
        scale = scale.clamp_(max=1.0)
        for c in lin:
            c.sub_(lum).mul_(scale).add_(lum)
    for channel, c in enumerate(lin):
        index = c.clamp_(0.0, 1.0).mul_(LUT_SIZE).add_(0.5).to(torch.int32)
        out[..., channel] = lut.index_select(0, index.view(-1)).view(index.shape)


def l_ab_to_rgb(lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """sRGB uint8 of the lightness L and the ab beside it, keeping L (the one gamut policy).

    What the Colorizer shows and ``evaluate`` scores: colours outside the sRGB
    gamut move towards the gray of the same luminance (see
    :func:`l_ab_to_rgb_torch`) instead of being clipped as :func:`lab_to_rgb`
    clips them; inside the gamut both agree (up to rounding to uint8).

    Parameters
    ----------
    lightness : numpy.ndarray
        L in [0, 100], any shape.
    ab : numpy.ndarray
        Shape ``lightness.shape + (2,)``.

    Returns
    -------
    numpy.ndarray
        uint8 RGB of shape ``lightness.shape + (3,)``.
    """
    import torch

    lightness = np.asarray(lightness, dtype=np.float32)
    ab = np.asarray(ab, dtype=np.float32)
    if ab.shape != (*lightness.shape, 2):
        raise ValueError(
            f"expected L of any shape (...) and ab of shape (..., 2) beside it, got "
            f"{lightness.shape} and {ab.shape}"
        )
    width = lightness.shape[-1] if lightness.ndim else 1
    out = np.empty((*lightness.shape, 3), dtype=np.uint8)
    light = torch.from_numpy(np.ascontiguousarray(lightness.reshape(-1, width)))
    chroma = torch.from_numpy(np.ascontiguousarray(np.moveaxis(ab.reshape(-1, width, 2), -1, 0)))
    with torch.inference_mode():
        l_ab_to_rgb_torch(light, chroma, torch.from_numpy(out.reshape(-1, width, 3)), _cpu_lut())
    return out


@functools.lru_cache(maxsize=1)
def _cpu_lut():
    return srgb_lut("cpu")
