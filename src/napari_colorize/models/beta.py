"""The ``beta`` colorizer: a conv encoder-decoder trained on many images.

Two layouts share one class so that checkpoints, the registry and the trainer
treat them alike:

``"unet"`` (ours, the default)
    A small U-Net: ``len(widths)`` scales, each after the first entered by a
    stride-2 conv; ``convs_per_stage`` 3x3 conv + norm + ReLU per scale. The
    decoder upsamples bilinearly, projects with a 1x1 conv and *adds* the
    encoder's features of the same scale (cheaper than concatenation at the
    same quality), then refines with ``decoder_convs`` 3x3 convs; a 3x3 conv with
    tanh predicts ab at full resolution. The skips carry the fine L structure
    (the edges where colours change) that a plain bottleneck blurs away.

``"sequential"`` (the originating project's beta, kept for comparison)
    A plain stack given as layer specs (see :func:`.layers.parse_layer`);
    :func:`beta_original_config` reproduces it exactly: convs 64, 64/2, 128,
    128/2, 256, 256/2, 512, 256, 128, up x2, 64, up x2, 32, 2 (tanh), up x2,
    all 3x3 ReLU, no normalisation.

Both expose :meth:`BetaColorizer.encode` and :meth:`BetaColorizer.decode` so a
fusion model can put a layer between them, and take extra input channels
(``in_channels > 1``) for user colour hints. With ``lightness_table=True`` the
network predicts a residual on the lightness lookup table of its training data
(see :mod:`.lightness_table`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvNormAct, build_sequential, crop_to, pad_to_multiple
from .hint_format import HINT_CHANNELS, check_hints
from .lightness_table import LightnessTable, add_table, zero_last_conv

__all__ = [
    "BETA_ORIGINAL_DECODER",
    "BETA_ORIGINAL_ENCODER",
    "BetaColorizer",
    "BetaConfig",
    "LocalHints",
    "beta_original_config",
]

#: The originating project's beta network, up to its bottleneck ...
BETA_ORIGINAL_ENCODER = ("64", "64/2", "128", "128/2", "256", "256/2", "512", "256", "128")
#: ... and after it (the last conv predicts ab at half resolution, then x2 nearest).
BETA_ORIGINAL_DECODER = ("up", "64", "up", "32", "2t", "up")


@dataclass
class BetaConfig:
    """Configuration of :class:`BetaColorizer`.

    Parameters
    ----------
    layout : {"unet", "sequential"}
        Our U-Net, or a plain stack of ``encoder_layers`` + ``decoder_layers``.
    in_channels : int
        1 for L only. More channels are extra conditioning inputs concatenated to
        L. 4 = L + user colour hints in the package's hint format (ab hints (2) +
        hint mask (1), see :mod:`.zhang`): the model then ``accepts_hints``;
        missing hints are zeros.
    widths : tuple of int
        U-Net channels per scale; scale ``i`` has ``1 / 2**i`` of the resolution.
    convs_per_stage : int
        3x3 convs per encoder scale (the first of each scale after the first has stride 2).
    decoder_convs : int
        3x3 convs per decoder scale after merging the skip.
    norm : {"batch", "group", "none"}
        Normalisation after each conv (U-Net layout; the sequential layout uses none
        unless set).
    encoder_layers, decoder_layers : tuple of str
        Layer specs of the sequential layout.
    local_hints : bool
        For hint-aware U-Nets (``in_channels=4``): the U-Net sees L only and
        the hints act through a small full-resolution branch
        (:class:`LocalHints`) that sees L, the hints, the U-Net's prediction and
        its last features, and corrects the prediction near the hints. A hint
        then changes colours only within
        :attr:`LocalHints.reach` pixels, stopping at edges it learns from L.
        Concatenating hints to L instead lets them act anywhere, and where L
        all but fixes the colour (CryptoPunks) such a network learns to ignore
        them.
    lightness_table : bool
        Predict ``table(L) + residual``: a :class:`~.lightness_table.LightnessTable`
        (a buffer, fitted to the training data by the trainer) plus the
        network, whose last conv starts at zero, so that an untrained model
        predicts the table. The hint branch of ``local_hints`` corrects that sum.
    """

    layout: str = "unet"
    in_channels: int = 1
    widths: tuple[int, ...] = (16, 32, 64, 128)
    convs_per_stage: int = 2
    decoder_convs: int = 1
    norm: str = "batch"
    encoder_layers: tuple[str, ...] = field(default_factory=tuple)
    decoder_layers: tuple[str, ...] = field(default_factory=tuple)
    local_hints: bool = False
    lightness_table: bool = False

    def __post_init__(self):
        # JSON metadata gives lists back; keep tuples so configs compare equal.
        self.widths = tuple(int(w) for w in self.widths)
        self.encoder_layers = tuple(str(s) for s in self.encoder_layers)
        self.decoder_layers = tuple(str(s) for s in self.decoder_layers)
        if self.layout not in ("unet", "sequential"):
            raise ValueError(
                f"BetaConfig.layout must be 'unet' or 'sequential', not {self.layout!r}"
            )
        if self.in_channels < 1:
            raise ValueError(f"BetaConfig.in_channels must be >= 1 (L), got {self.in_channels}")
        if self.layout == "unet" and (not self.widths or min(self.widths) < 1):
            raise ValueError(
                f"BetaConfig.widths must be positive channel counts, got {self.widths}"
            )
        if self.layout == "sequential" and not self.encoder_layers:
            raise ValueError(
                "the sequential layout needs encoder_layers (e.g. beta_original_config())"
            )
        if self.local_hints and (self.layout != "unet" or self.in_channels != 4):
            raise ValueError(
                "BetaConfig.local_hints needs the unet layout with in_channels=4 (L + hints)"
            )

    def to_dict(self) -> dict:
        """Plain JSON-able dict (for checkpoint metadata)."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def beta_original_config(**overrides) -> BetaConfig:
    """The originating project's beta network (``beta-original``), exactly."""
    cfg = {
        "layout": "sequential",
        "norm": "none",
        "widths": (),
        "encoder_layers": BETA_ORIGINAL_ENCODER,
        "decoder_layers": BETA_ORIGINAL_DECODER,
    }
    cfg.update(overrides)
    return BetaConfig(**cfg)


class _DecoderStage(nn.Module):
    """Upsample to the skip's size, project with a 1x1 conv, add the skip, refine."""

    def __init__(self, c_deep, c_skip, n_convs, norm):
        super().__init__()
        self.project = ConvNormAct(c_deep, c_skip, kernel=1, norm=norm)
        self.refine = nn.Sequential(
            *[ConvNormAct(c_skip, c_skip, norm=norm) for _ in range(n_convs)]
        )

    def forward(self, x, skip):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.refine(self.project(x) + skip)

    def inference_form(self) -> nn.Module:
        """The same stage for evaluation, projecting before it upsamples (or ``self``).

        The 1x1 conv and an evaluation-mode BatchNorm are per-pixel affine maps,
        and bilinear resizing mixes pixels with weights that sum to 1, so the two
        commute: projecting at the deep scale computes the same (to rounding)
        with a quarter of the projection's work and half the channels to
        upsample. Only the ReLU has to wait for the upsampling. GroupNorm, whose
        statistics see the whole image, does not commute: such a stage is kept.
        """
        *linear, act = list(self.project)
        conv = linear[0] if linear else None
        commutes = (
            type(conv) is nn.Conv2d
            and conv.kernel_size == (1, 1)
            and conv.stride == (1, 1)
            and all(type(m) in (nn.BatchNorm2d, nn.Identity) for m in linear[1:])
            and type(act) is nn.ReLU
        )
        return _ProjectedDecoderStage(nn.Sequential(*linear), self.refine) if commutes else self


class _ProjectedDecoderStage(nn.Module):
    """:class:`_DecoderStage` for evaluation: project, upsample, ReLU, add the skip, refine."""

    def __init__(self, linear: nn.Module, refine: nn.Module):
        super().__init__()
        self.linear = linear
        self.refine = refine

    def forward(self, x, skip):
        x = F.interpolate(
            self.linear(x), size=skip.shape[-2:], mode="bilinear", align_corners=False
        )
        return self.refine(F.relu(x, inplace=True).add_(skip))


def _summed_area(x):
    """Summed-area table of ``x`` (N,C,H,W) in float64, zero-padded for :func:`_box_sum`."""
    return F.pad(x.double(), (1, 0, 1, 0)).cumsum(-1).cumsum(-2)


def _box_sum(table, k: int):
    """Sums of the ``k x k`` windows centred on every pixel (clipped at the border)."""
    r = k // 2
    h, w = table.shape[-2] - 1, table.shape[-1] - 1
    if r:
        # window starts before the image read the table's zero row/column; ends past
        # it read its last one
        table = F.pad(F.pad(table, (r, 0, r, 0)), (0, r, 0, r), mode="replicate")
    top, bottom = table[..., :h, :], table[..., k : k + h, :]
    return (
        bottom[..., k : k + w] - top[..., k : k + w] - bottom[..., :w] + top[..., :w]
    )  # fmt: skip


def _window_counts(h: int, w: int, k: int, device) -> torch.Tensor:
    """Pixels of the image in each ``k x k`` window, ``(1, 1, H, W)`` float64."""
    r = k // 2

    def along(n):
        i = torch.arange(n, device=device)
        return ((i + r).clamp(max=n - 1) - (i - r).clamp(min=0) + 1).double()

    return (along(h)[:, None] * along(w)[None, :])[None, None]


class LocalHints(nn.Module):
    """Correct a prediction near user hints: ``ab = prior + sum_s w_s * spread_s(gap)``.

    Each hint says "this colour here, instead of the predicted one": its
    ``gap = hint ab - prior ab``. The hinted pixels take the hint's colour
    exactly. Around them the branch averages the hints' gaps over
    neighbourhoods of 1, 3, 7 and 15 pixels, twice: plainly, and counting only
    the hints whose lightness is close to the pixel's own (a bilateral grid
    over :attr:`L_BINS` lightness bins, so a correction follows a region of
    one lightness and stops at its edges). Per pixel it learns convex weights
    ``w_s`` over those spreads (a softmax that also has a "no correction"
    choice) from the spreads, how far the pixel's lightness is from the hinted
    pixels', the decoder's features, L and the prior; dilated 3x3 convs without
    normalisation (the statistics of sparse hints vary too much).

    So a hint changes colours only within :attr:`reach` pixels, never by more
    than its own disagreement with the prediction, and a hint that agrees with
    the prediction changes nothing; without hints the branch does not run and
    the output is the prediction from L.
    """

    #: Neighbourhood sizes over which hint corrections are spread.
    SCALES = (1, 3, 7, 15)
    #: Lightness bins of the bilateral spreads (over the networks' [-1, 1] L range).
    L_BINS = 33

    def __init__(self, c_features: int, width: int = 32, dilations=(1, 2, 4, 1)):
        super().__init__()
        c = c_features + 4 + 2 + 2 + 7 * len(self.SCALES)
        layers = []
        for d in dilations:
            layers += [nn.Conv2d(c, width, 3, padding=d, dilation=d), nn.ReLU(inplace=True)]
            c = width
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(width, 2 * len(self.SCALES) + 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        with torch.no_grad():
            self.out.bias[-1] = 3.0  # start mostly with "no correction"
        #: How far (pixels) a hint's influence reaches.
        self.reach = max(self.SCALES) // 2

    #: Lightness bins splatted at once (bounds the memory of a large working image).
    _BIN_CHUNK = 11

    def _bins(self, lightness, index=None):
        """Hat weights ``(N, B, H, W)`` of each pixel's lightness over the bins ``index``."""
        step = 2.0 / (self.L_BINS - 1)
        if index is None:
            index = torch.arange(self.L_BINS, device=lightness.device)
        centres = -1.0 + step * index.to(lightness.dtype)
        distance = (lightness - centres.view(1, -1, 1, 1)).abs()
        return (1.0 - distance / step).clamp(min=0.0)

    def _hinted_bins(self, mask, lightness) -> torch.Tensor:
        """The bins any hinted pixel's lightness falls in: the only non-empty ones."""
        hinted = lightness[mask > 0]
        return torch.nonzero(self._bins(hinted.view(1, 1, -1, 1)).amax((0, 2, 3)) > 0)[:, 0]

    def spread(self, mask, gap, lightness):
        """Per scale: ``(mean gap, lightness difference, present, bilateral gap, present)``.

        Sums over the ``k x k`` windows come from summed-area tables (float64,
        so that an empty window is exactly empty), whose cost does not grow
        with ``k``; means are ratios of sums, so the window's size cancels.
        Only the lightness bins that hold a hint are splatted.
        """
        n, _, h, w = lightness.shape
        plain = torch.cat([mask, gap, lightness * mask], 1)
        sliced = {k: torch.zeros(n, 3, h, w, dtype=torch.float64, device=mask.device)
                  for k in self.SCALES}  # fmt: skip
        used = self._hinted_bins(mask, lightness)
        for index in used.split(self._BIN_CHUNK):
            count = len(index)
            bins = self._bins(lightness, index)  # (N, B, H, W)
            # splat the hints into the lightness bins: (N, 3, B, H, W)
            splat = torch.stack(
                [bins * mask * gap[:, :1], bins * mask * gap[:, 1:], bins * mask], 1
            )
            tables = _summed_area(splat.reshape(n, 3 * count, h, w))
            for k in self.SCALES:
                box = _box_sum(tables, k).view(n, 3, count, h, w)
                # slice the grid at each pixel's own lightness
                sliced[k] += (box * bins.unsqueeze(1).double()).sum(2)
        tables = _summed_area(plain)
        out = []
        for k in self.SCALES:
            sums = _box_sum(tables, k)
            weight = sums[:, :1]
            present = (weight > 0).to(mask.dtype)
            norm = weight.clamp(min=1e-12)
            mean_gap = (sums[:, 1:3] / norm).to(mask.dtype) * present
            hinted_l = (sums[:, 3:4] / norm).to(mask.dtype)
            grid = sliced[k]
            # a window counts as holding similar hints when their mean weight exceeds 1e-6
            counts = _window_counts(h, w, k, mask.device)
            near = (grid[:, 2:] > 1e-6 * counts).to(mask.dtype)
            similar_gap = (grid[:, :2] / grid[:, 2:].clamp(min=1e-12)).to(mask.dtype) * near
            out.append((mean_gap, (hinted_l - lightness) * present, present, similar_gap, near))
        return out

    def forward(self, features, inputs, prior):
        """``features`` (N,C,H,W), ``inputs`` = L + hints (N,4,H,W), ``prior`` ab (N,2,H,W)."""
        mask = (inputs[:, 3:4] > 0).to(prior.dtype)
        if not bool(mask.any()):
            return prior
        gap = (inputs[:, 1:3] - prior) * mask
        spread = self.spread(mask, gap, inputs[:, :1])
        x = torch.cat([features, inputs, prior, gap, *(t for s in spread for t in s)], dim=1)
        weights = torch.softmax(self.out(self.body(x)).float(), dim=1).to(prior.dtype)
        gaps = [s[0] for s in spread] + [s[3] for s in spread]
        correction = sum(weights[:, i : i + 1] * g for i, g in enumerate(gaps))
        # where the user said which colour, that colour
        return torch.where(mask > 0, inputs[:, 1:3], prior + correction)


class BetaColorizer(nn.Module):
    """Predict ab from L: ``forward(l (N,1,H,W)) -> ab (N,2,H,W)`` in [-1, 1].

    Any ``H, W``: the input is padded to a multiple of :attr:`downsampling` and
    the output cropped back.
    """

    def __init__(self, config: BetaConfig | None = None):
        super().__init__()
        self.config = config = config or BetaConfig()
        if config.layout == "sequential":
            self.encoder, c, down = build_sequential(
                config.encoder_layers, config.in_channels, norm=config.norm
            )
            self.decoder, c_out, _ = build_sequential(config.decoder_layers, c, norm=config.norm)
            if c_out != 2:
                raise ValueError(f"the decoder must end with 2 channels (ab), not {c_out}")
            self.downsampling = down
            self.encoder_channels = c
            self._add_lightness_table(self.decoder)
            return
        w = config.widths
        stages = []
        c_input = 1 if config.local_hints else config.in_channels
        for i, c in enumerate(w):
            c_prev = c_input if i == 0 else w[i - 1]
            convs = [ConvNormAct(c_prev, c, stride=1 if i == 0 else 2, norm=config.norm)]
            convs += [
                ConvNormAct(c, c, norm=config.norm) for _ in range(config.convs_per_stage - 1)
            ]
            stages.append(nn.Sequential(*convs))
        self.stages = nn.ModuleList(stages)
        self.decoder_stages = nn.ModuleList(
            _DecoderStage(w[i + 1], w[i], config.decoder_convs, config.norm)
            for i in reversed(range(len(w) - 1))
        )
        self.head = nn.Sequential(nn.Conv2d(w[0], 2, 3, padding=1), nn.Tanh())
        if config.local_hints:
            self.hint_branch = LocalHints(w[0])
        self.downsampling = 2 ** (len(w) - 1)
        self.encoder_channels = w[-1]
        self._add_lightness_table(self.head)

    def _add_lightness_table(self, output: nn.Module) -> None:
        if self.config.lightness_table:
            self.lightness_table = LightnessTable()
            zero_last_conv(output)

    # -- the pieces a fusion model reuses -------------------------------------------

    @property
    def accepts_hints(self) -> bool:
        """Whether ``hints`` are user colour hints in the package's format (``in_channels=4``)."""
        return self.config.in_channels == 1 + HINT_CHANNELS

    def prepare_input(self, l_net, hints=None):
        """Concatenate hints to ``l`` and pad; returns ``(x, (H, W))`` for :meth:`encode`."""
        if l_net.ndim != 4 or l_net.shape[1] != 1:
            raise ValueError(f"expected L as (N, 1, H, W), got shape {tuple(l_net.shape)}")
        extra = self.config.in_channels - 1
        if self.accepts_hints:
            # the hint format: validated, ab zeroed where there is no hint
            hints = check_hints(hints, l_net)
        if hints is None and extra:
            hints = l_net.new_zeros(l_net.shape[0], extra, *l_net.shape[-2:])
        if hints is not None:
            if hints.shape[1] != extra or hints.shape[-2:] != l_net.shape[-2:]:
                raise ValueError(
                    f"hints must be (N, {extra}, H, W) matching L; got {tuple(hints.shape)} "
                    f"(this model takes in_channels={self.config.in_channels})"
                )
            l_net = torch.cat([l_net, hints.to(l_net.dtype)], dim=1)
        return pad_to_multiple(l_net, self.downsampling)

    def encode(self, x):
        """Encoder: padded input -> ``(features, skips)`` (:attr:`encoder_channels` channels)."""
        if self.config.layout == "sequential":
            return self.encoder(x), []
        skips = []
        if self.config.local_hints:
            # the input (L + hints) rides first among the skips to the local hint branch;
            # the U-Net itself sees only L
            skips.append(x)
            x = x[:, :1]
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        return skips.pop(), skips

    def decode(self, features, skips, lightness=None):
        """Decoder: ``(features, skips)`` from :meth:`encode` -> ab in [-1, 1] (padded size).

        ``lightness``: the padded L ``(N, 1, H, W)`` that was encoded; needed
        (and only used) with ``lightness_table``, whose table it reads.
        """
        table = getattr(self, "lightness_table", None)
        if self.config.layout == "sequential":
            return add_table(table, lightness, self.decoder(features))
        x = features
        # zip stops at the last decoder stage: a local-hints input, first in skips, is left
        for stage, skip in zip(self.decoder_stages, reversed(skips)):
            x = stage(x, skip)
        ab = add_table(table, lightness, self.head(x))
        if self.config.local_hints:
            ab = self.hint_branch(x, skips[0], ab)
        return ab

    def forward(self, l_net, hints=None):
        """Predict ``ab_to_net(ab)`` (N,2,H,W) from ``l_to_net(L)`` (N,1,H,W)."""
        x, size = self.prepare_input(l_net, hints)
        features, skips = self.encode(x)
        return crop_to(self.decode(features, skips, lightness=x[:, :1]), size)
