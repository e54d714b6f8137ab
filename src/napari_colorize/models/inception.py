"""Inception v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture") in plain torch.

The class-probability source of the ``full`` colorizer (Deep Koalarization) and
the classifier behind the class-probabilities widget.

Compatibility
    :class:`InceptionV3` with the default :class:`InceptionConfig` has exactly the
    module names, parameter and buffer shapes of torchvision's ``inception_v3``
    (``Conv2d_1a_3x3`` ... ``Mixed_7c``, ``AuxLogits``, ``fc``; every conv is a
    :class:`BasicConv2d`: conv without bias + batch norm with ``eps=0.001`` +
    ReLU), so the ImageNet state dict published for it
    (:data:`TORCHVISION_URL`) loads with ``load_state_dict(strict=True)``:
    into a model with ``aux_logits=True`` as it is, or into the default model
    after :func:`convert_torchvision_state_dict` drops ``AuxLogits.*``.
    torchvision itself is never imported. The published weights expect
    ``transform_input=True`` (see :func:`imagenet_config`).

Inputs
    By default ``forward`` takes ImageNet-normalised RGB ``(N, 3, H, W)``, as
    torchvision's model does. With ``grayscale=True`` it takes this package's
    lightness ``l_to_net(L)`` as ``(N, 1, H, W)`` and turns it into the neutral
    gray sRGB image of that lightness, ImageNet-normalised, inside ``forward``
    (with ``in_channels=1`` the scaled L goes to the first conv unchanged
    instead, for classifiers trained from scratch on gray images).

Small images
    The layout needs at least 75x75 pixels. Inputs whose shorter side is below
    ``min_input_size`` are enlarged (bilinear, aspect ratio kept) inside
    ``forward``, so 24x24 CryptoPunks work as they are; ``input_size`` instead
    resizes every input to ``input_size x input_size`` (299 is what the
    ImageNet weights were trained at; 139 is a cheaper compromise). The
    auxiliary classifier (training mode with ``aux_logits``) needs 299x299.

Heads
    ``heads`` describes the ``fc`` outputs as consecutive groups, each either
    ``"softmax"`` (mutually exclusive classes) or ``"sigmoid"`` (independent
    labels), e.g. the five CryptoPunk types and the accessories:
    ``heads=(("type", "softmax", 5), ("accessories", "sigmoid", 87))``.
    :meth:`InceptionV3.predict_proba` applies each group's activation;
    :func:`split_heads` cuts a vector into the named groups.

Width
    ``width`` scales the channels of every conv (``round(c * width)``), e.g.
    ``width=0.25`` for fast training on CPU. Only ``width=1`` has the
    torchvision layout.
"""

from __future__ import annotations

import math
from collections import namedtuple
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "HEAD_KINDS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MIN_AUX_INPUT_SIZE",
    "MIN_INPUT_SIZE",
    "TORCHVISION_FILENAME",
    "TORCHVISION_SHA256_PREFIX",
    "TORCHVISION_URL",
    "BasicConv2d",
    "InceptionConfig",
    "InceptionOutputs",
    "InceptionV3",
    "convert_torchvision_state_dict",
    "head_probabilities",
    "imagenet_class_names",
    "imagenet_config",
    "l_to_imagenet_input",
    "split_heads",
]

#: The ImageNet weights published for torchvision's ``inception_v3`` (ported from TensorFlow).
TORCHVISION_FILENAME = "inception_v3_google-0cc3c7bd.pth"
TORCHVISION_URL = f"https://download.pytorch.org/models/{TORCHVISION_FILENAME}"
#: torchvision checks only this prefix of the file's sha256 (the part of its name after ``-``).
TORCHVISION_SHA256_PREFIX = "0cc3c7bd"

#: Per-channel mean and standard deviation of ImageNet RGB in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: The smallest input the layout can take (the last blocks then work on 1x1 maps).
MIN_INPUT_SIZE = 75
#: The smallest input for the auxiliary classifier (its 5x5 conv needs a 17x17 ``Mixed_6e``).
MIN_AUX_INPUT_SIZE = 299
_AUX_MIN_MAP = 17
#: Channels of the factorised 7x7 convs in Mixed_6b ... Mixed_6e.
_C7 = (128, 160, 160, 192)

HEAD_KINDS = ("softmax", "sigmoid")

#: ``forward`` returns this in training mode when the model has ``aux_logits``.
InceptionOutputs = namedtuple("InceptionOutputs", ["logits", "aux_logits"])


def _normalise_heads(heads) -> tuple[tuple[str, str, int], ...] | None:
    """Accept ``{name: (kind, size)}`` or ``[(name, kind, size), ...]`` (also from JSON)."""
    if heads is None:
        return None
    items = (
        [(name, *spec) for name, spec in heads.items()]
        if isinstance(heads, Mapping)
        else list(heads)
    )
    out = []
    for item in items:
        try:
            name, kind, size = item
        except (TypeError, ValueError):
            raise ValueError(
                f"each head must be (name, kind, size), e.g. ('type', 'softmax', 5); got {item!r}"
            ) from None
        if kind not in HEAD_KINDS:
            raise ValueError(
                f"head {name!r} has kind {kind!r}; use 'softmax' (exclusive classes) or "
                "'sigmoid' (independent labels)"
            )
        if isinstance(size, bool) or int(size) != size or int(size) < 1:
            raise ValueError(f"head {name!r} needs a size >= 1, got {size!r}")
        out.append((str(name), str(kind), int(size)))
    if not out:
        raise ValueError("heads must name at least one head, or be None for plain softmax")
    names = [h[0] for h in out]
    if len(set(names)) != len(names):
        raise ValueError(f"head names must be unique, got {names}")
    return tuple(out)


@dataclass
class InceptionConfig:
    """Configuration of :class:`InceptionV3`; the defaults give torchvision's layout.

    Parameters
    ----------
    num_classes : int
        Outputs of ``fc`` (and of ``AuxLogits.fc``). With ``heads`` it is set to
        the heads' total size; another explicit value raises ``ValueError``.
    aux_logits : bool
        Build the auxiliary classifier ``AuxLogits`` (needed to load the published
        dict unchanged; in training mode ``forward`` then also returns its logits).
    transform_input : bool
        Map ImageNet-normalised input to the ``[-1, 1]`` scaling the TensorFlow-ported
        ImageNet weights were trained with (True for those weights).
    in_channels : int
        Channels of the first conv: 3 (RGB, or gray repeated), or 1 to feed the
        scaled L directly (with ``grayscale``).
    dropout : float
        Dropout probability before ``fc``.
    grayscale : bool
        ``forward`` takes ``l_to_net(L)`` as ``(N, 1, H, W)`` (see the module docs).
    min_input_size : int
        Inputs whose shorter side is smaller are enlarged (bilinear, aspect kept) to
        this; at least 75.
    input_size : int or None
        Resize every input to ``input_size x input_size`` (bilinear) instead.
    width : float
        Channel multiplier of every conv; only 1.0 matches torchvision.
    heads : dict or sequence, optional
        ``{name: (kind, size)}`` or ``((name, kind, size), ...)`` with kind
        ``"softmax"`` or ``"sigmoid"``, in ``fc`` output order. Stored as a tuple of
        triples (JSON keeps the order of a list).
    """

    num_classes: int = 1000
    aux_logits: bool = False
    transform_input: bool = False
    in_channels: int = 3
    dropout: float = 0.5
    grayscale: bool = False
    min_input_size: int = MIN_INPUT_SIZE
    input_size: int | None = None
    width: float = 1.0
    heads: tuple[tuple[str, str, int], ...] | None = field(default=None)

    def __post_init__(self):
        self.heads = _normalise_heads(self.heads)
        if self.heads is not None:
            total = sum(size for _, _, size in self.heads)
            if self.num_classes not in (total, 1000):
                raise ValueError(
                    f"num_classes={self.num_classes} does not match the heads' total size "
                    f"{total}; leave num_classes out when giving heads"
                )
            self.num_classes = total
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if self.in_channels not in (1, 3):
            raise ValueError(
                f"in_channels must be 3 (RGB) or 1 (scaled L, with grayscale=True), "
                f"got {self.in_channels}"
            )
        if self.in_channels == 1 and not self.grayscale:
            raise ValueError("in_channels=1 takes the scaled L: set grayscale=True as well")
        if self.transform_input and self.in_channels != 3:
            raise ValueError("transform_input works on 3 channels; use in_channels=3")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.min_input_size < MIN_INPUT_SIZE:
            raise ValueError(
                f"min_input_size must be >= {MIN_INPUT_SIZE} (the smallest input Inception v3 "
                f"can take), got {self.min_input_size}"
            )
        if self.input_size is not None and self.input_size < MIN_INPUT_SIZE:
            raise ValueError(
                f"input_size must be >= {MIN_INPUT_SIZE} or None, got {self.input_size}"
            )
        if not self.width > 0:
            raise ValueError(f"width must be > 0, got {self.width}")

    def to_dict(self) -> dict:
        """Plain JSON-able dict (for checkpoint metadata)."""
        d = asdict(self)
        if d["heads"] is not None:
            d["heads"] = [list(h) for h in d["heads"]]
        return d

    def channels(self, c: int) -> int:
        """Channels of a conv that has ``c`` in the torchvision layout."""
        return max(1, round(c * self.width))


def imagenet_config(**overrides) -> InceptionConfig:
    """The config that the published ImageNet weights expect, taking gray L as input.

    ``transform_input=True``, ``input_size=299`` and ``grayscale=True`` (so the
    model takes ``l_to_net(L)``); pass ``grayscale=False`` for RGB input and
    ``aux_logits=True`` to keep the auxiliary classifier.
    """
    cfg = {"transform_input": True, "grayscale": True, "input_size": 299}
    cfg.update(overrides)
    return InceptionConfig(**cfg)


# ------------------------------------------------------------------- building blocks


class BasicConv2d(nn.Module):
    """Conv (no bias) + batch norm (eps 0.001, as in the TensorFlow original) + ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _pool3(x):
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)


class InceptionA(nn.Module):
    """35x35 block: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1 (``Mixed_5b``-``5d``)."""

    def __init__(self, c_in: int, pool_features: int, ch):
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, ch(64), 1)
        self.branch5x5_1 = BasicConv2d(c_in, ch(48), 1)
        self.branch5x5_2 = BasicConv2d(ch(48), ch(64), 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, ch(64), 1)
        self.branch3x3dbl_2 = BasicConv2d(ch(64), ch(96), 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(ch(96), ch(96), 3, padding=1)
        self.branch_pool = BasicConv2d(c_in, ch(pool_features), 1)
        self.out_channels = ch(64) + ch(64) + ch(96) + ch(pool_features)

    def forward(self, x):
        five = self.branch5x5_2(self.branch5x5_1(x))
        three = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), five, three, self.branch_pool(_pool3(x))], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17: stride-2 3x3 | 1x1-3x3-3x3/2 | maxpool (``Mixed_6a``)."""

    def __init__(self, c_in: int, ch):
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, ch(384), 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, ch(64), 1)
        self.branch3x3dbl_2 = BasicConv2d(ch(64), ch(96), 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(ch(96), ch(96), 3, stride=2)
        self.out_channels = ch(384) + ch(96) + c_in

    def forward(self, x):
        three = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pooled = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([self.branch3x3(x), three, pooled], 1)


class InceptionC(nn.Module):
    """17x17 block with 7x7 convs factorised into 1x7 and 7x1 (``Mixed_6b``-``6e``)."""

    def __init__(self, c_in: int, channels_7x7: int, ch):
        super().__init__()
        c7 = ch(channels_7x7)
        row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))  # (kernel, padding)
        self.branch1x1 = BasicConv2d(c_in, ch(192), 1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, row[0], padding=row[1])
        self.branch7x7_3 = BasicConv2d(c7, ch(192), col[0], padding=col[1])
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, col[0], padding=col[1])
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, row[0], padding=row[1])
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, col[0], padding=col[1])
        self.branch7x7dbl_5 = BasicConv2d(c7, ch(192), row[0], padding=row[1])
        self.branch_pool = BasicConv2d(c_in, ch(192), 1)
        self.out_channels = 4 * ch(192)

    def forward(self, x):
        seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = x
        for i in range(1, 6):
            double = getattr(self, f"branch7x7dbl_{i}")(double)
        return torch.cat([self.branch1x1(x), seven, double, self.branch_pool(_pool3(x))], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool (``Mixed_7a``)."""

    def __init__(self, c_in: int, ch):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, ch(192), 1)
        self.branch3x3_2 = BasicConv2d(ch(192), ch(320), 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, ch(192), 1)
        self.branch7x7x3_2 = BasicConv2d(ch(192), ch(192), (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(ch(192), ch(192), (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(ch(192), ch(192), 3, stride=2)
        self.out_channels = ch(320) + ch(192) + c_in

    def forward(self, x):
        three = self.branch3x3_2(self.branch3x3_1(x))
        seven = x
        for i in range(1, 5):
            seven = getattr(self, f"branch7x7x3_{i}")(seven)
        return torch.cat([three, seven, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """8x8 block with the 3x3 outputs split into parallel 1x3 and 3x1 (``Mixed_7b``, ``7c``)."""

    def __init__(self, c_in: int, ch):
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, ch(320), 1)
        self.branch3x3_1 = BasicConv2d(c_in, ch(384), 1)
        self.branch3x3_2a = BasicConv2d(ch(384), ch(384), (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(ch(384), ch(384), (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, ch(448), 1)
        self.branch3x3dbl_2 = BasicConv2d(ch(448), ch(384), 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(ch(384), ch(384), (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(ch(384), ch(384), (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, ch(192), 1)
        self.out_channels = ch(320) + 4 * ch(384) + ch(192)

    def forward(self, x):
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(a),
                self.branch3x3_2b(a),
                self.branch3x3dbl_3a(b),
                self.branch3x3dbl_3b(b),
                self.branch_pool(_pool3(x)),
            ],
            1,
        )


class InceptionAux(nn.Module):
    """Auxiliary classifier on ``Mixed_6e``: avgpool 5/3, 1x1, 5x5, global pool, linear."""

    def __init__(self, c_in: int, num_classes: int, ch):
        super().__init__()
        self.conv0 = BasicConv2d(c_in, ch(128), 1)
        self.conv1 = BasicConv2d(ch(128), ch(768), 5)
        self.fc = nn.Linear(ch(768), num_classes)

    def forward(self, x):
        x = self.conv1(self.conv0(F.avg_pool2d(x, kernel_size=5, stride=3)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ------------------------------------------------------------------- the network


def l_to_imagenet_input(l_net):
    """``l_to_net(L)`` ``(N, 1, H, W)`` -> the ImageNet-normalised RGB of the neutral gray.

    The gray is the sRGB colour with lightness L and a = b = 0, so a gray photo
    looks to the network as it would in colour with its chroma removed.
    """
    from ..color import lab_to_rgb_torch, net_to_l

    lightness = net_to_l(l_net.float())
    lab = torch.cat([lightness, torch.zeros_like(lightness).expand(-1, 2, -1, -1)], 1)
    rgb = lab_to_rgb_torch(lab)
    mean = rgb.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = rgb.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((rgb - mean) / std).to(l_net.dtype)


class InceptionV3(nn.Module):
    """Inception v3 with torchvision's names and shapes; see the module docs.

    Parameters
    ----------
    config : InceptionConfig, optional
    **overrides
        Config fields, e.g. ``InceptionV3(num_classes=10)``.

    ``forward(x)`` returns the logits ``(N, num_classes)``; in training mode with
    ``aux_logits`` an :data:`InceptionOutputs` ``(logits, aux_logits)``.
    """

    def __init__(self, config: InceptionConfig | None = None, **overrides):
        super().__init__()
        if config is None:
            config = InceptionConfig(**overrides)
        elif overrides:
            config = InceptionConfig(**{**asdict(config), **overrides})
        self.config = config
        ch = config.channels
        self.aux_logits = config.aux_logits
        self.transform_input = config.transform_input
        self.Conv2d_1a_3x3 = BasicConv2d(config.in_channels, ch(32), 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(ch(32), ch(32), 3)
        self.Conv2d_2b_3x3 = BasicConv2d(ch(32), ch(64), 3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(ch(64), ch(80), 1)
        self.Conv2d_4a_3x3 = BasicConv2d(ch(80), ch(192), 3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        c = ch(192)
        for name, pool_features in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
            setattr(self, name, InceptionA(c, pool_features, ch))
            c = getattr(self, name).out_channels
        self.Mixed_6a = InceptionB(c, ch)
        c = self.Mixed_6a.out_channels
        for name, c7 in zip(("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"), _C7):
            setattr(self, name, InceptionC(c, c7, ch))
            c = getattr(self, name).out_channels
        # registered here so that the state dict keeps torchvision's key order
        self.AuxLogits = InceptionAux(c, config.num_classes, ch) if config.aux_logits else None
        self.Mixed_7a = InceptionD(c, ch)
        self.Mixed_7b = InceptionE(self.Mixed_7a.out_channels, ch)
        self.Mixed_7c = InceptionE(self.Mixed_7b.out_channels, ch)
        self.num_features = self.Mixed_7c.out_channels
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=config.dropout)
        self.fc = nn.Linear(self.num_features, config.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torchvision's init: truncated normals, std 0.1 (0.01 and 0.001 in the aux head)."""
        special = {}
        if self.AuxLogits is not None:
            special = {self.AuxLogits.conv1.conv: 0.01, self.AuxLogits.fc: 0.001}
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=special.get(m, 0.1), a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # -- input handling -------------------------------------------------------------

    def _resize(self, x):
        h, w = x.shape[-2:]
        size = self.config.input_size
        if size is not None:
            target = (size, size)
        else:
            side = self.config.min_input_size
            if min(h, w) >= side:
                return x
            scale = side / min(h, w)
            target = tuple(max(side, math.ceil(n * scale - 1e-6)) for n in (h, w))
        if (h, w) == target:
            return x
        shrink = target[0] < h or target[1] < w  # antialias only helps when shrinking
        return F.interpolate(
            x, size=target, mode="bilinear", align_corners=False, antialias=shrink
        )

    def prepare_input(self, x):
        """Check, resize and convert the input to what ``Conv2d_1a_3x3`` takes."""
        cfg = self.config
        expected = 1 if cfg.grayscale else cfg.in_channels
        if x.ndim != 4 or x.shape[1] != expected:
            what = "l_to_net(L) as (N, 1, H, W)" if cfg.grayscale else f"(N, {expected}, H, W)"
            hint = (
                "" if cfg.grayscale else "; for gray L input build the model with grayscale=True"
            )
            raise ValueError(f"expected {what}, got shape {tuple(x.shape)}{hint}")
        x = self._resize(x)
        if cfg.grayscale and cfg.in_channels == 3:
            x = l_to_imagenet_input(x)
        if self.transform_input:
            # ImageNet normalisation -> (rgb - 0.5) / 0.5, the TensorFlow port's scaling
            std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
            mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            x = x * (std / 0.5) + (mean - 0.5) / 0.5
        return x

    # -- the network ----------------------------------------------------------------

    def _trunk(self, x, with_aux: bool):
        x = self.prepare_input(x)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(self.maxpool1(x)))
        x = self.maxpool2(x)
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))
        x = self.Mixed_6a(x)
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))
        aux = None
        if with_aux:
            if min(x.shape[-2:]) < _AUX_MIN_MAP:
                raise ValueError(
                    f"the auxiliary classifier needs inputs of at least {MIN_AUX_INPUT_SIZE}x"
                    f"{MIN_AUX_INPUT_SIZE} in training mode; set input_size="
                    f"{MIN_AUX_INPUT_SIZE} (or min_input_size), or aux_logits=False"
                )
            aux = self.AuxLogits(x)
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        return torch.flatten(self.avgpool(x), 1), aux

    def features(self, x):
        """The globally pooled ``Mixed_7c`` features, ``(N, num_features)`` (2048 at width 1)."""
        return self._trunk(x, with_aux=False)[0]

    def forward(self, x):
        with_aux = self.training and self.AuxLogits is not None
        pooled, aux = self._trunk(x, with_aux)
        logits = self.fc(self.dropout(pooled))
        return InceptionOutputs(logits, aux) if with_aux else logits

    def probabilities(self, logits):
        """Logits -> probabilities: softmax over all classes, or per head (see ``heads``)."""
        return head_probabilities(logits, self.config.heads)

    def predict_proba(self, x):
        """Class probabilities ``(N, num_classes)`` of ``x`` (call ``.eval()`` first).

        Without ``heads`` a softmax over all classes; with ``heads`` each head's
        softmax or sigmoid, concatenated in ``fc`` order (split them with
        :meth:`split`).
        """
        out = self(x)
        if isinstance(out, InceptionOutputs):
            out = out.logits
        return self.probabilities(out)

    def split(self, values) -> dict:
        """``(N, num_classes)`` logits or probabilities -> ``{head name: (N, size)}``."""
        heads = self.config.heads or (("classes", "softmax", self.config.num_classes),)
        return split_heads(values, heads)


# ------------------------------------------------------------------- heads


def split_heads(values, heads) -> dict:
    """Cut ``(..., total)`` into the named heads, in order.

    Parameters
    ----------
    values : torch.Tensor
        Logits or probabilities whose last axis holds the heads one after another.
    heads : dict or sequence
        As :attr:`InceptionConfig.heads`.

    Returns
    -------
    dict
        ``{name: values[..., start:start + size]}``.
    """
    heads = _normalise_heads(heads)
    total = sum(size for _, _, size in heads)
    if values.shape[-1] != total:
        raise ValueError(
            f"the heads add up to {total} outputs but the last axis has {values.shape[-1]}"
        )
    out, start = {}, 0
    for name, _, size in heads:
        out[name] = values[..., start : start + size]
        start += size
    return out


def head_probabilities(logits, heads=None):
    """Each head's softmax or sigmoid, concatenated in order (a softmax over all without heads)."""
    if heads is None:
        return logits.softmax(-1)
    parts = split_heads(logits, heads)
    kinds = {name: kind for name, kind, _ in _normalise_heads(heads)}
    return torch.cat(
        [p.softmax(-1) if kinds[n] == "softmax" else p.sigmoid() for n, p in parts.items()],
        -1,
    )


# ------------------------------------------------------------------- weights


def convert_torchvision_state_dict(state: Mapping, *, aux_logits: bool = False) -> dict:
    """A state dict saved from torchvision's ``inception_v3`` in this module's layout.

    The names already agree; this drops a ``module.`` prefix (from
    ``DataParallel``) and, unless ``aux_logits``, the ``AuxLogits.*`` entries, so
    the result loads strictly into ``InceptionV3(aux_logits=aux_logits)``. Used
    by the registry's ``.pth`` conversion hook.
    """
    state = dict(state)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    if not aux_logits:
        state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
    return state


@lru_cache(maxsize=1)
def _class_names() -> tuple[str, ...]:
    from importlib.resources import files

    text = files(__package__).joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line)


def imagenet_class_names() -> list[str]:
    """The 1,000 ILSVRC-2012 class names in torchvision's order ("tench", "goldfish", ...).

    As torchvision lists them: index 134 is "crane bird" and 639 "maillot tank
    suit", so that every name is unique.
    """
    return list(_class_names())
