"""The ``gan`` colorizer's generator: a pix2pix-style U-Net with spectral norm and self-attention.

Layout (``D = len(widths)`` levels; level ``i`` works at ``1 / 2**(i+1)`` of the input)::

    L [+ hints] -> stem conv (full resolution, ``stem`` channels) ----------------+
      -> level 0: 3x3 stride-2 conv to widths[0] [+ convs] ----------------+      |
         -> level 1: 3x3 stride-2 conv to widths[1] [+ convs] -------+     |      |
            ... -> level D-1 (bottleneck)                            |     |      |
            <- up x2, concat skip, conv (level D-2) <----------------+     |      |
         <- ... up x2, concat skip, conv (level 0) <-----------------------+      |
      <- up x2, concat stem, conv, 3x3 conv + tanh -> ab <-------------------------+

As pix2pix (Isola et al. 2017) the encoder downsamples with strided convs and
LeakyReLU(0.2), the decoder concatenates the encoder features of the same
scale (skip connections) and uses ReLU. Unlike pix2pix the decoder upsamples
bilinearly followed by a 3x3 conv rather than with transposed convs (no
checkerboard artefacts), and a small full-resolution stem keeps one-pixel detail
(CryptoPunks are 24x24 pixel art). pix2pix's decoder dropout is available but
off by default: a colorizer should be deterministic.

Self-attention (SAGAN, Zhang et al. 2019): 1x1 convs give queries and keys
(``channels // 8``) and values (``channels``); the attention output is added to
the input scaled by a learned ``gamma`` initialised to 0, so a block starts as
the identity. The dot products are scaled by ``1/sqrt(d)`` (as in Vaswani et
al.; SAGAN leaves them unscaled), which keeps the softmax well conditioned in
bf16, and :func:`torch.nn.functional.scaled_dot_product_attention` uses the
memory-efficient kernels where the device has them.

Spectral normalisation (Miyato et al. 2018) is applied, when configured, to
every conv of the generator (SAGAN applies it to the generator as well as the
discriminator) through :func:`torch.nn.utils.parametrizations.spectral_norm`:
the state dict then holds ``...parametrizations.weight.original`` plus the power
iteration vectors ``_u``/``_v``.

Memory: :meth:`UNetColorizer.set_gradient_checkpointing` recomputes each level's
activations in the backward pass instead of storing them (non-reentrant
:func:`torch.utils.checkpoint.checkpoint`). The recomputation is exact: while
it runs, batch-norm running statistics are not updated a second time and the
spectral-norm power iteration is not advanced again. The model works in
``channels_last`` memory format (convert it and its inputs with
``.to(memory_format=torch.channels_last)``).

Any input size: the input is padded (edge replication) to a multiple of
``2**len(widths)`` and the output cropped back. With ``hints=True`` the model
takes the package's hint format (see :mod:`napari_colorize.models.hint_format`) as
``forward(l, hints=...)``; missing hints are "no hints".

Initialising the encoder from the project's classifier
(:func:`init_encoder_from_inception`) copies what fits of the Inception v3
stem, see its docstring for exactly what is transferred and why it is little.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm
from torch.utils.checkpoint import checkpoint

from .blocks import crop_to, make_norm, pad_to_multiple
from .hint_format import HINT_CHANNELS, check_hints
from .lightness_table import LightnessTable, add_table, zero_last_conv

__all__ = [
    "NORMS",
    "SelfAttention",
    "UNetColorizer",
    "UNetConfig",
    "checkpointed",
    "init_encoder_from_inception",
    "photo_config",
    "punks_config",
    "sn_conv",
]

NORMS = ("batch", "group", "instance", "none")
ATTENTION_PLACES = ("encoder", "decoder", "both")


@dataclass
class UNetConfig:
    """Configuration of :class:`UNetColorizer`.

    Parameters
    ----------
    widths : tuple of int
        Channels of the encoder levels; level ``i`` has ``1 / 2**(i+1)`` of the
        input's resolution, so ``len(widths)`` is the depth.
    stem : int
        Channels of a 3x3 conv at full resolution whose output is concatenated
        before the head; 0 leaves it out (pix2pix has none).
    convs : int
        Extra 3x3 convs per level after the strided (encoder) or merging (decoder) conv.
    norm : {"batch", "group", "instance", "none"}
        Normalisation after each conv (not in the stem, the first level's strided
        conv, or the head, as in pix2pix).
    spectral_norm : bool
        Spectral normalisation of every conv.
    attention : tuple of int
        Levels that get a self-attention block (e.g. ``(1,)``: at 1/4 resolution).
    attention_in : {"decoder", "encoder", "both"}
        Where the blocks of those levels sit: after the decoder's conv of the level
        (for the deepest level: on the bottleneck), after the encoder's, or both.
    hints : bool
        Take user colour hints: 3 extra input channels (ab + mask).
    dropout : float
        Dropout after the decoder convs of the three deepest levels (pix2pix uses 0.5).
    lightness_table : bool
        Predict ``table(L) + residual``: a lightness lookup table (a buffer,
        fitted to the training data by the trainer, see
        :mod:`.lightness_table`) plus the network, whose output conv is then a
        plain conv (no spectral norm) that starts at zero, so that an
        untrained generator predicts the table.
    """

    widths: tuple[int, ...] = (64, 128, 256)
    stem: int = 32
    convs: int = 1
    norm: str = "batch"
    spectral_norm: bool = True
    attention: tuple[int, ...] = (1,)
    attention_in: str = "decoder"
    hints: bool = False
    dropout: float = 0.0
    lightness_table: bool = False

    def __post_init__(self):
        self.widths = tuple(int(w) for w in self.widths)
        self.attention = tuple(int(a) for a in self.attention)
        if not self.widths or min(self.widths) < 1:
            raise ValueError(
                f"UNetConfig.widths must be positive channel counts, got {self.widths}"
            )
        if self.stem < 0 or self.convs < 0:
            raise ValueError("UNetConfig.stem and UNetConfig.convs must be >= 0")
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; use one of {', '.join(NORMS)}")
        bad = [a for a in self.attention if not 0 <= a < len(self.widths)]
        if bad:
            raise ValueError(
                f"attention levels {bad} do not exist: this U-Net has levels "
                f"0..{len(self.widths) - 1} (one per entry of widths)"
            )
        if self.attention_in not in ATTENTION_PLACES:
            raise ValueError(
                f"attention_in must be one of {', '.join(ATTENTION_PLACES)}, "
                f"not {self.attention_in!r}"
            )
        for level in self.attention:
            if self.widths[level] < 8:
                raise ValueError(
                    f"self-attention at level {level} needs at least 8 channels, "
                    f"widths[{level}] is {self.widths[level]}"
                )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def in_channels(self) -> int:
        """L plus, with hints, ab hints and the hint mask."""
        return 1 + (HINT_CHANNELS if self.hints else 0)

    def to_dict(self) -> dict:
        """Plain JSON-able dict (for checkpoint metadata)."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def punks_config(**overrides) -> UNetConfig:
    """A generator for 24x24 pixel art (CryptoPunks; 0.49 M parameters).

    Levels at 12, 6 and 3 pixels, self-attention over the 144 positions of the
    first. The bundled ``gan-punks`` is this without spectral norm and
    self-attention and 1.5 times as wide (``GAN_PUNKS_GENERATOR`` of
    :mod:`napari_colorize.training.gan`).
    """
    return UNetConfig(**{"widths": (32, 64, 128), "stem": 16, "attention": (0,), **overrides})


def photo_config(**overrides) -> UNetConfig:
    """The same family scaled for photos (128-256 px): 5 levels, attention at 1/8."""
    cfg = {"widths": (64, 128, 256, 512, 512), "stem": 32, "attention": (2,), **overrides}
    return UNetConfig(**cfg)


# ------------------------------------------------------------------ building blocks


def sn_conv(c_in, c_out, kernel=3, stride=1, *, sn=False, bias=True, padding=None) -> nn.Module:
    """A conv with ``padding = kernel // 2`` (default), spectrally normalised when ``sn``."""
    conv = nn.Conv2d(
        c_in, c_out, kernel, stride, padding=kernel // 2 if padding is None else padding, bias=bias
    )
    return _spectral_norm(conv) if sn else conv


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return make_norm(kind, channels)


class ConvBlock(nn.Sequential):
    """Conv (optionally spectrally normalised), normalisation, (Leaky)ReLU."""

    def __init__(self, c_in, c_out, *, stride=1, norm="batch", sn=False, leaky=False):
        layers = [sn_conv(c_in, c_out, 3, stride, sn=sn, bias=norm in ("none", "group"))]
        if norm != "none":
            layers.append(_norm(norm, c_out))
        layers.append(nn.LeakyReLU(0.2, inplace=True) if leaky else nn.ReLU(inplace=True))
        super().__init__(*layers)


class SelfAttention(nn.Module):
    """SAGAN self-attention over the positions of a feature map; the identity at init.

    ``out = x + gamma * attention(x)`` with queries and keys of ``channels //
    reduction`` channels, values of ``channels``; ``gamma`` starts at 0.
    """

    def __init__(self, channels: int, *, reduction: int = 8, sn: bool = False):
        super().__init__()
        inner = max(1, channels // reduction)
        self.query = sn_conv(channels, inner, 1, sn=sn)
        self.key = sn_conv(channels, inner, 1, sn=sn)
        self.value = sn_conv(channels, channels, 1, sn=sn)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        n, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (N, HW, C')
        k = self.key(x).flatten(2).transpose(1, 2)
        v = self.value(x).flatten(2).transpose(1, 2)  # (N, HW, C)
        o = F.scaled_dot_product_attention(q, k, v)  # softmax over the keys of each query
        return x + self.gamma * o.transpose(1, 2).reshape(n, c, h, w)


@contextlib.contextmanager
def _frozen_statistics(module: nn.Module):
    """During a checkpoint's recomputation: no second BN running-stat update, no SN step.

    Batch norm keeps computing with batch statistics (training mode) but with
    momentum 0 its running statistics stay as the first forward left them; the
    spectral-norm parametrizations go to eval mode, so they reuse the ``u``/``v``
    that the first forward's power iteration produced.  The recomputed
    activations are thus exactly those of the first forward.
    """
    saved, counters = [], []
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training:
            saved.append((m, "momentum", m.momentum))
            m.momentum = 0.0
            if m.num_batches_tracked is not None:
                counters.append((m.num_batches_tracked, m.num_batches_tracked.clone()))
        elif type(m).__name__ == "_SpectralNorm" and m.training:
            saved.append((m, "training", True))
            m.training = False
    try:
        yield
    finally:
        for m, name, value in saved:
            setattr(m, name, value)
        for counter, value in counters:
            counter.copy_(value)


def checkpointed(module: nn.Module, *args):
    """``module(*args)`` without storing its activations (recomputed in backward).

    Only when gradients are being recorded; otherwise a plain call.
    """
    if not torch.is_grad_enabled():
        return module(*args)
    return checkpoint(
        module,
        *args,
        use_reentrant=False,
        context_fn=lambda: (contextlib.nullcontext(), _frozen_statistics(module)),
    )


class _EncoderLevel(nn.Module):
    def __init__(self, c_in, c_out, cfg: UNetConfig, first: bool, attend: bool):
        super().__init__()
        sn = cfg.spectral_norm
        # pix2pix: no normalisation on the first strided conv
        norm0 = "none" if first else cfg.norm
        self.down = ConvBlock(c_in, c_out, stride=2, norm=norm0, sn=sn, leaky=True)
        self.convs = nn.Sequential(
            *[ConvBlock(c_out, c_out, norm=cfg.norm, sn=sn, leaky=True) for _ in range(cfg.convs)]
        )
        self.attention = SelfAttention(c_out, sn=sn) if attend else nn.Identity()

    def forward(self, x):
        return self.attention(self.convs(self.down(x)))


class _DecoderLevel(nn.Module):
    """Upsample to the skip's size, concatenate it, conv (+ convs), optional attention."""

    def __init__(self, c_deep, c_skip, c_out, cfg: UNetConfig, attend: bool, dropout: float):
        super().__init__()
        sn = cfg.spectral_norm
        self.merge = ConvBlock(c_deep + c_skip, c_out, norm=cfg.norm, sn=sn)
        self.convs = nn.Sequential(
            *[ConvBlock(c_out, c_out, norm=cfg.norm, sn=sn) for _ in range(cfg.convs)]
        )
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.attention = SelfAttention(c_out, sn=sn) if attend else nn.Identity()

    def forward(self, x, skip):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        x = self.convs(self.merge(torch.cat([x, skip], dim=1)))
        return self.attention(self.dropout(x))


class _Head(nn.Module):
    """Back to full resolution: upsample, concatenate the stem, conv, 3x3 conv + tanh."""

    def __init__(self, c_deep, c_stem, cfg: UNetConfig):
        super().__init__()
        sn = cfg.spectral_norm
        c = c_stem or c_deep
        self.merge = ConvBlock(c_deep + c_stem, c, norm=cfg.norm, sn=sn) if c_stem else None
        # a spectrally normalised conv cannot start at zero (see UNetConfig.lightness_table)
        self.out = sn_conv(c, 2, 3, sn=sn and not cfg.lightness_table)
        if cfg.lightness_table:
            zero_last_conv(self.out)

    def forward(self, x, stem):
        size = stem.shape[-2:] if stem is not None else tuple(2 * n for n in x.shape[-2:])
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        if self.merge is not None:
            x = self.merge(torch.cat([x, stem], dim=1))
        return torch.tanh(self.out(x))


# ------------------------------------------------------------------------- model


class UNetColorizer(nn.Module):
    """Predict ab from L: ``forward(l (N,1,H,W), hints=None) -> ab (N,2,H,W)`` in [-1, 1].

    See the module docstring for the layout. Any ``H, W`` (padded to a multiple
    of :attr:`downsampling`, cropped back).
    """

    def __init__(self, config: UNetConfig | None = None):
        super().__init__()
        self.config = cfg = config or UNetConfig()
        w = cfg.widths
        depth = len(w)
        enc_attn = cfg.attention_in in ("encoder", "both")
        dec_attn = cfg.attention_in in ("decoder", "both")
        sn = cfg.spectral_norm
        self.stem = (
            nn.Sequential(
                # pix2pix: no normalisation on the first conv
                ConvBlock(cfg.in_channels, cfg.stem, norm="none", sn=sn, leaky=True),
                *[
                    ConvBlock(cfg.stem, cfg.stem, norm=cfg.norm, sn=sn, leaky=True)
                    for _ in range(cfg.convs)
                ],
            )
            if cfg.stem
            else None
        )
        c_first = cfg.stem or cfg.in_channels
        self.encoder = nn.ModuleList(
            _EncoderLevel(
                c_first if i == 0 else w[i - 1], w[i], cfg, i == 0 and not cfg.stem,
                enc_attn and i in cfg.attention,
            )
            for i in range(depth)
        )  # fmt: skip
        self.bottleneck_attention = (
            SelfAttention(w[-1], sn=cfg.spectral_norm)
            if dec_attn and depth - 1 in cfg.attention
            else nn.Identity()
        )
        # decoder[j] produces level depth-2-j from level depth-1-j
        self.decoder = nn.ModuleList(
            _DecoderLevel(
                w[i + 1], w[i], w[i], cfg, dec_attn and i in cfg.attention,
                cfg.dropout if i >= depth - 4 else 0.0,
            )
            for i in reversed(range(depth - 1))
        )  # fmt: skip
        self.head = _Head(w[0], cfg.stem, cfg)
        if cfg.lightness_table:
            self.lightness_table = LightnessTable()
        self.downsampling = 2**depth
        self.gradient_checkpointing = False

    def set_gradient_checkpointing(self, enabled: bool = True) -> UNetColorizer:
        """Recompute each level's activations in backward instead of storing them."""
        self.gradient_checkpointing = bool(enabled)
        return self

    def _run(self, module, *args):
        if self.gradient_checkpointing and self.training:
            return checkpointed(module, *args)
        return module(*args)

    @property
    def accepts_hints(self) -> bool:
        """Whether the generator takes hint maps (``UNetConfig.hints``)."""
        return bool(self.config.hints)

    def prepare_input(self, l_net, hints=None):
        """Validate ``l`` (and hints), concatenate them and pad; returns ``(x, (H, W))``."""
        if l_net.ndim != 4 or l_net.shape[1] != 1:
            raise ValueError(f"expected L as (N, 1, H, W), got shape {tuple(l_net.shape)}")
        if self.config.hints:
            l_net = torch.cat([l_net, check_hints(hints, l_net)], dim=1)
        elif hints is not None:
            raise ValueError(
                "this model takes no hints (UNetConfig.hints=False); use a hint-aware model"
            )
        return pad_to_multiple(l_net, self.downsampling)

    def forward(self, l_net, hints=None):
        """Predict ``ab_to_net(ab)`` (N,2,H,W) from ``l_to_net(L)`` (N,1,H,W)."""
        x, size = self.prepare_input(l_net, hints)
        lightness = x[:, :1]
        stem = None
        if self.stem is not None:
            x = stem = self._run(self.stem, x)
        skips = []
        for level in self.encoder:
            x = self._run(level, x)
            skips.append(x)
        x = self.bottleneck_attention(skips.pop())
        for level, skip in zip(self.decoder, reversed(skips)):
            x = self._run(level, x, skip)
        ab = self._run(self.head, x, stem)
        return crop_to(add_table(getattr(self, "lightness_table", None), lightness, ab), size)


# ------------------------------------------------------- classifier initialisation

#: Inception v3 stem convs and the U-Net convs they can initialise, in order.
_INCEPTION_STEM = (
    ("Conv2d_1a_3x3", "encoder.0.down"),  # 3x3 stride 2: input -> 32w
    ("Conv2d_2a_3x3", "encoder.0.convs.0"),  # 3x3: 32w -> 32w
    ("Conv2d_2b_3x3", "encoder.1.down"),  # 3x3: 32w -> 64w (stride 1 there, 2 here)
)


def _conv_of(block: nn.Module) -> nn.Conv2d:
    return block[0]


def _weight_param(conv: nn.Conv2d) -> torch.Tensor:
    if hasattr(conv, "parametrizations") and "weight" in conv.parametrizations:
        return conv.parametrizations.weight.original
    return conv.weight


@torch.no_grad()
def init_encoder_from_inception(model: UNetColorizer, classifier: nn.Module) -> list[str]:
    """Copy the first convs of an Inception v3 classifier into the U-Net's encoder.

    What is transferred, where the shapes allow it (each pair is checked and
    skipped otherwise; the names of the copied U-Net tensors are returned):

    - ``Conv2d_1a_3x3`` (3x3, stride 2) -> ``encoder.0.down`` (3x3, stride 2).
      Only from a classifier that takes the scaled L itself (``in_channels=1``);
      one that takes gray RGB applies a non-linear L -> sRGB mapping first, which
      no weight copy reproduces, so the first conv stays random then. With
      hints, the hint channels' weights stay random.
    - ``Conv2d_2a_3x3`` -> ``encoder.0.convs.0``, ``Conv2d_2b_3x3`` ->
      ``encoder.1.down`` (used with stride 2 here, 1 there).

    The conv weights (into ``...original`` under spectral norm, which then
    rescales them by their largest singular value) and the batch-norm scale and
    shift are copied; running statistics are left to the training. Everything
    else (deeper levels, the decoder, attention) starts random: Inception's
    later blocks are multi-branch modules with no U-Net counterpart. The shapes
    fit only when ``widths`` starts with the classifier's ``(32w, 64w)``
    (``w`` its width multiplier) and ``norm="batch"``. The classifier sees
    CryptoPunks enlarged to 75 px or more, so its first filters are tuned to a
    coarser scale than the U-Net's native 24 px input: expect a small benefit at
    best.
    """
    copied = []
    for src_name, dst_name in _INCEPTION_STEM:
        src = getattr(classifier, src_name, None)
        try:
            dst = model.get_submodule(dst_name)
        except AttributeError:
            continue
        if src is None:
            continue
        w_src = src.conv.weight
        dst_conv = _conv_of(dst)
        w_dst = _weight_param(dst_conv)
        if src_name == "Conv2d_1a_3x3":
            if w_src.shape[1] != 1:
                continue
            if w_dst.shape[0] != w_src.shape[0] or w_dst.shape[2:] != w_src.shape[2:]:
                continue
            w_dst[:, :1].copy_(w_src)
        else:
            if w_dst.shape != w_src.shape:
                continue
            w_dst.copy_(w_src)
        copied.append(f"{dst_name}.0.weight")
        if len(dst) > 1 and isinstance(dst[1], nn.BatchNorm2d):
            dst[1].weight.copy_(src.bn.weight)
            dst[1].bias.copy_(src.bn.bias)
            copied += [f"{dst_name}.1.weight", f"{dst_name}.1.bias"]
    if copied and model.config.spectral_norm:
        # restart the power iteration from the new weights (private torch API, hence guarded)
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and hasattr(m, "parametrizations"):
                original = m.parametrizations.weight.original
                for p in m.parametrizations.weight:
                    if hasattr(p, "_power_method"):
                        p._power_method(p._reshape_weight_to_matrix(original), 15)
    return copied
