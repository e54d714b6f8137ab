"""The published colorizers of Zhang et al.: ECCV 2016 and SIGGRAPH 2017.

Both networks are rebuilt here with exactly the parameter names and shapes of
the authors' PyTorch release (``richzhang/colorization``, ``colorizers/``), so
their published state dicts load unchanged (``strict``). Only the interface
differs: like every model of this package they take ``l_to_net(L)`` and return
``ab_to_net(ab)`` (see :mod:`napari_colorize.color`); the release's own input
and output scalings are applied inside.

- :class:`ECCV16Colorizer` ("Colorful Image Colorization", ECCV 2016): a VGG-like
  encoder with dilated convs predicts, at a quarter of the input resolution, a
  distribution over 313 quantised ab bins. It is decoded either by its
  expectation (what the release does: a bias-free 1x1 conv ``model_out`` whose
  weight holds the bin centres) or by the paper's annealed mean, then upsampled
  to the input size.
- :class:`SIGGRAPH17Colorizer` ("Real-Time User-Guided Image Colorization with
  Learned Deep Priors", SIGGRAPH 2017): a U-Net-like network that sees L plus
  sparse user colour hints and regresses ab at full resolution.

The hint format SIGGRAPH17 takes is the package's: see
:mod:`napari_colorize.models.hint_format`.

Published weights
-----------------
``colorization_release_v2-9b330a0b.pth`` (ECCV16) and ``siggraph17-df00044c.pth``
(SIGGRAPH17) are plain state dicts; :func:`convert_state_dict` (the registry's
``convert`` hook) checks them against these architectures.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..color import AB_SCALE
from ..errors import CheckpointError, short_list
from .blocks import crop_to, pad_to_multiple
from .hint_format import check_hints

__all__ = [
    "AB_NORM",
    "L_CENT",
    "L_NORM",
    "ECCV16Colorizer",
    "ECCV16Config",
    "SIGGRAPH17Colorizer",
    "SIGGRAPH17Config",
    "convert_state_dict",
    "expected_layout",
]

#: The release's own scaling: its networks see ``(L - L_CENT) / L_NORM`` and ``ab / AB_NORM``.
L_CENT = 50.0
L_NORM = 100.0
AB_NORM = 110.0
#: Both networks reduce the resolution by 8; other sizes are padded and cropped.
_MULTIPLE = 8
_DECODINGS = ("expectation", "annealed_mean")


def _release_l(l_net: torch.Tensor) -> torch.Tensor:
    # l_net = L/50 - 1, so (L - 50)/100 = l_net / 2
    return l_net * (L_CENT / L_NORM)


def _check_l(l_net, name: str) -> None:
    if not isinstance(l_net, torch.Tensor) or l_net.ndim != 4 or l_net.shape[1] != 1:
        shape = tuple(l_net.shape) if isinstance(l_net, torch.Tensor) else type(l_net).__name__
        raise ValueError(
            f"{name} takes L as a tensor of shape (N, 1, H, W) scaled by color.l_to_net, "
            f"got {shape}"
        )


# ----------------------------------------------------------------- shared blocks


def _conv_block(channels, *, dilation: int = 1, last_stride: int = 1) -> list[nn.Module]:
    """conv-ReLU pairs through ``channels`` then BatchNorm: the release's conv block.

    The layout (conv at even indices, BatchNorm last) is what fixes the state dict
    keys, e.g. ``model3.0/2/4`` and ``model3.6``.
    """
    layers: list[nn.Module] = []
    pairs = list(itertools.pairwise(channels))
    for i, (c_in, c_out) in enumerate(pairs):
        stride = last_stride if i == len(pairs) - 1 else 1
        layers += [
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation),
            nn.ReLU(inplace=True),
        ]
    layers.append(nn.BatchNorm2d(channels[-1]))
    return layers


# ----------------------------------------------------------------- ECCV16


@dataclass
class ECCV16Config:
    """Configuration of :class:`ECCV16Colorizer`.

    Parameters
    ----------
    decoding : {"expectation", "annealed_mean"}
        How the 313-bin distribution becomes one ab value. ``"expectation"`` is
        the mean over the bin centres (what the authors' release does);
        ``"annealed_mean"`` is the paper's: the mean of ``softmax(log p / T)``,
        between the mean (T=1) and the mode (T->0), more vivid than the mean.
    temperature : float
        ``T`` of the annealed mean (the paper's 0.38); unused by ``"expectation"``.
    """

    decoding: str = "expectation"
    temperature: float = 0.38

    def __post_init__(self):
        if self.decoding not in _DECODINGS:
            raise ValueError(
                f"ECCV16Config.decoding must be one of {', '.join(_DECODINGS)}, "
                f"not {self.decoding!r}"
            )
        if not float(self.temperature) > 0:
            raise ValueError(
                f"ECCV16Config.temperature must be > 0 (0.38 in the paper), got {self.temperature}"
            )
        self.temperature = float(self.temperature)

    def to_dict(self) -> dict:
        """Plain JSON-able dict (for checkpoint metadata)."""
        return asdict(self)


class _ConfigField:
    """An attribute that reads one field of its owner's ``config`` dataclass and sets it.

    Setting replaces the config with :func:`dataclasses.replace`, so the
    config's own validation (``__post_init__``) checks the new value.
    """

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, objtype=None):
        return self if obj is None else getattr(obj.config, self.name)

    def __set__(self, obj, value) -> None:
        obj.config = dataclasses.replace(obj.config, **{self.name: value})


class ECCV16Colorizer(nn.Module):
    """Zhang et al. 2016: L -> distribution over 313 ab bins -> ab.

    Parameter names and shapes are those of the authors' ``ECCVGenerator``:
    ``model1`` ... ``model8`` (``nn.Sequential``), ``model_out`` (1x1 conv 313 -> 2,
    no bias, its weight holding the bin centres as ``ab / 110``), ``softmax`` and
    ``upsample4``.

    Parameters
    ----------
    config : ECCV16Config, optional
        Decoding and temperature; they may also be changed later through
        ``model.decoding`` / ``model.temperature``.
    """

    #: Number of quantised ab bins.
    num_bins = 313
    accepts_hints = False

    def __init__(self, config: ECCV16Config | None = None):
        super().__init__()
        self.config = config if config is not None else ECCV16Config()
        wide = [512, 512, 512, 512]
        self.model1 = nn.Sequential(*_conv_block([1, 64, 64], last_stride=2))
        self.model2 = nn.Sequential(*_conv_block([64, 128, 128], last_stride=2))
        self.model3 = nn.Sequential(*_conv_block([128, 256, 256, 256], last_stride=2))
        self.model4 = nn.Sequential(*_conv_block([256, *wide[1:]]))
        self.model5 = nn.Sequential(*_conv_block(wide, dilation=2))
        self.model6 = nn.Sequential(*_conv_block(wide, dilation=2))
        self.model7 = nn.Sequential(*_conv_block(wide))
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, self.num_bins, 1),
        )
        self.softmax = nn.Softmax(dim=1)
        self.model_out = nn.Conv2d(self.num_bins, 2, 1, bias=False)
        self.upsample4 = nn.Upsample(scale_factor=4, mode="bilinear")

    #: ``config.decoding``; settable (validated), e.g. after loading published weights.
    decoding = _ConfigField()
    #: ``config.temperature``; settable (validated).
    temperature = _ConfigField()

    @property
    def bin_centers(self) -> torch.Tensor:
        """The ab centre of each bin in CIE Lab units, ``(313, 2)``, read from ``model_out``."""
        return self.model_out.weight[:, :, 0, 0].t() * AB_NORM

    def logits(self, l_net: torch.Tensor) -> torch.Tensor:
        """Unnormalised bin scores ``(N, 313, h, w)`` at a quarter of the (padded) input size."""
        _check_l(l_net, type(self).__name__)
        x = _release_l(l_net)
        for block in (self.model1, self.model2, self.model3, self.model4, self.model5,
                      self.model6, self.model7, self.model8):  # fmt: skip
            x = block(x)
        return x

    def bin_probabilities(self, l_net: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """The predicted distribution over the 313 ab bins.

        Parameters
        ----------
        l_net : torch.Tensor
            ``(N, 1, H, W)`` L scaled by ``color.l_to_net``.
        temperature : float
            1 for the network's distribution; < 1 sharpens it as the annealed
            mean does (``softmax(log p / T)``).

        Returns
        -------
        torch.Tensor
            ``(N, 313, ceil(H/8)*2, ceil(W/8)*2)``, summing to 1 over dim 1 (a
            quarter of the input size, rounded up to a multiple of 8 first);
            :attr:`bin_centers` gives the ab of each bin.
        """
        x, _ = pad_to_multiple(l_net, _MULTIPLE)
        return self._probabilities(self.logits(x), temperature)

    def _probabilities(self, logits: torch.Tensor, temperature: float) -> torch.Tensor:
        # log p = logits - logsumexp(logits): the constant cancels in softmax(log p / T)
        if temperature == 1.0:
            return self.softmax(logits)
        return self.softmax(logits / temperature)

    def decode(self, logits: torch.Tensor, decoding: str | None = None, temperature=None):
        """Bin scores ``(N, 313, h, w)`` -> ab in ``ab_to_net`` units ``(N, 2, h, w)``.

        Parameters
        ----------
        logits : torch.Tensor
        decoding, temperature : optional
            Override ``self.decoding`` / ``self.temperature`` for this call.
        """
        decoding = self.decoding if decoding is None else decoding
        if decoding not in _DECODINGS:
            raise ValueError(f"decoding must be one of {', '.join(_DECODINGS)}, not {decoding!r}")
        t = 1.0
        if decoding == "annealed_mean":
            t = float(self.temperature if temperature is None else temperature)
            if not t > 0:
                raise ValueError(f"the annealed-mean temperature must be > 0, got {t}")
        ab_release = self.model_out(self._probabilities(logits, t))
        return ab_release * (AB_NORM / AB_SCALE)

    def forward(self, l_net: torch.Tensor, *, decoding: str | None = None, temperature=None):
        """Predict ab.

        Parameters
        ----------
        l_net : torch.Tensor
            ``(N, 1, H, W)`` L scaled by ``color.l_to_net``.
        decoding, temperature : optional
            Override the configured decoding for this call.

        Returns
        -------
        torch.Tensor
            ``(N, 2, H, W)`` ab scaled by ``color.ab_to_net``.
        """
        _check_l(l_net, type(self).__name__)
        x, size = pad_to_multiple(l_net, _MULTIPLE)
        ab = self.decode(self.logits(x), decoding, temperature)
        return crop_to(self.upsample4(ab), size)


# ----------------------------------------------------------------- SIGGRAPH17


@dataclass
class SIGGRAPH17Config:
    """Configuration of :class:`SIGGRAPH17Colorizer`.

    Parameters
    ----------
    classes : int
        Bins of the (unused at inference) classification head ``model_class``;
        529 in the release.
    mask_center : float
        Subtracted from the hint mask before it enters the network. 0 for the
        published weights (the release feeds the 0/1 mask as it is); 0.5 for
        weights retrained with ``colorization-pytorch``, which centres the mask.
    """

    classes: int = 529
    mask_center: float = 0.0

    def __post_init__(self):
        if int(self.classes) < 1:
            raise ValueError(f"SIGGRAPH17Config.classes must be >= 1, got {self.classes}")
        self.classes = int(self.classes)
        self.mask_center = float(self.mask_center)

    def to_dict(self) -> dict:
        """Plain JSON-able dict (for checkpoint metadata)."""
        return asdict(self)


class SIGGRAPH17Colorizer(nn.Module):
    """Zhang et al. 2017: L + ab hints + hint mask -> ab.

    Parameter names and shapes are those of the authors' ``SIGGRAPHGenerator``:
    ``model1`` ... ``model7``, ``model8up``/``model8``, ``model9up``/``model9``,
    ``model10up``/``model10``, the short-cut convs ``model3short8``,
    ``model2short9``, ``model1short10``, ``model_class`` (529-bin head),
    ``model_out`` (1x1 conv + tanh), ``upsample4`` and ``softmax``.

    ``forward(l_net, hints=None)`` takes hints in the package's hint format
    (see the module docstring).

    Parameters
    ----------
    config : SIGGRAPH17Config, optional
    """

    accepts_hints = True

    def __init__(self, config: SIGGRAPH17Config | None = None):
        super().__init__()
        self.config = config if config is not None else SIGGRAPH17Config()
        wide = [512, 512, 512, 512]
        # the release subsamples by slicing ([::2, ::2]) between blocks, so no strides here
        self.model1 = nn.Sequential(*_conv_block([4, 64, 64]))
        self.model2 = nn.Sequential(*_conv_block([64, 128, 128]))
        self.model3 = nn.Sequential(*_conv_block([128, 256, 256, 256]))
        self.model4 = nn.Sequential(*_conv_block([256, *wide[1:]]))
        self.model5 = nn.Sequential(*_conv_block(wide, dilation=2))
        self.model6 = nn.Sequential(*_conv_block(wide, dilation=2))
        self.model7 = nn.Sequential(*_conv_block(wide))
        self.model8up = nn.Sequential(nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1))
        self.model8 = nn.Sequential(nn.ReLU(inplace=True), *_conv_block([256, 256, 256]))
        self.model9up = nn.Sequential(nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1))
        self.model9 = nn.Sequential(nn.ReLU(inplace=True), *_conv_block([128, 128]))
        self.model10up = nn.Sequential(nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1))
        self.model10 = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 128, 3, padding=1),
            nn.LeakyReLU(negative_slope=0.2),
        )
        self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, 3, padding=1))
        self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, 3, padding=1))
        self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1))
        self.model_class = nn.Sequential(nn.Conv2d(256, self.config.classes, 1))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1), nn.Tanh())
        self.upsample4 = nn.Sequential(nn.Upsample(scale_factor=4, mode="bilinear"))
        self.softmax = nn.Sequential(nn.Softmax(dim=1))

    def release_input(self, l_net: torch.Tensor, hints=None) -> torch.Tensor:
        """The 4-channel input of the release's first conv: L, ab hints, mask in its scaling."""
        _check_l(l_net, type(self).__name__)
        hints = check_hints(hints, l_net)
        ab = hints[:, :2] * (AB_SCALE / AB_NORM)
        mask = hints[:, 2:3] - self.config.mask_center
        return torch.cat([_release_l(l_net), ab, mask], dim=1)

    def forward(self, l_net: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """Predict ab, optionally steered by user hints.

        Parameters
        ----------
        l_net : torch.Tensor
            ``(N, 1, H, W)`` L scaled by ``color.l_to_net``.
        hints : torch.Tensor, optional
            ``(N, 3, H, W)`` in the package's hint format: ``ab_to_net(ab)`` in
            channels 0-1 where channel 2 (the mask) is 1. ``None``: no hints.

        Returns
        -------
        torch.Tensor
            ``(N, 2, H, W)`` ab scaled by ``color.ab_to_net``.
        """
        _check_l(l_net, type(self).__name__)
        hints = check_hints(hints, l_net)
        size = tuple(l_net.shape[-2:])
        # replicate L at the border, but pad hints with zeros: a padded hint would be
        # a hint nobody gave
        l_net, _ = pad_to_multiple(l_net, _MULTIPLE)
        hints = F.pad(hints, (0, l_net.shape[-1] - size[1], 0, l_net.shape[-2] - size[0]))
        x = self.release_input(l_net, hints)

        conv1 = self.model1(x)
        conv2 = self.model2(conv1[:, :, ::2, ::2])
        conv3 = self.model3(conv2[:, :, ::2, ::2])
        x = self.model4(conv3[:, :, ::2, ::2])
        x = self.model7(self.model6(self.model5(x)))
        x = self.model8(self.model8up(x) + self.model3short8(conv3))
        x = self.model9(self.model9up(x) + self.model2short9(conv2))
        x = self.model10(self.model10up(x) + self.model1short10(conv1))
        ab_release = self.model_out(x)
        return crop_to(ab_release * (AB_NORM / AB_SCALE), size)


# ----------------------------------------------------------------- published weights

_ARCH_CLASSES = {"eccv16": ECCV16Colorizer, "siggraph17": SIGGRAPH17Colorizer}
_OPTIONAL_SUFFIX = ".num_batches_tracked"  # absent from files saved by PyTorch < 0.4.1


def expected_layout(arch: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the default model of ``arch`` (``"eccv16"`` or ``"siggraph17"``)."""
    try:
        cls = _ARCH_CLASSES[arch]
    except KeyError:
        raise ValueError(
            f"unknown Zhang et al. architecture {arch!r}; use one of {', '.join(_ARCH_CLASSES)}"
        ) from None
    with torch.device("meta"):
        model = cls()
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _strip_prefix(state: Mapping) -> dict:
    out = {}
    for key, value in state.items():
        while key.startswith("module."):  # nn.DataParallel / DDP wrappers
            key = key[len("module.") :]
        out[key] = value
    return out


def _layout_errors(state: Mapping, layout: Mapping) -> tuple[list, list, list]:
    missing = [k for k in layout if k not in state and not k.endswith(_OPTIONAL_SUFFIX)]
    unexpected = [k for k in state if k not in layout]
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {layout[k]})"
        for k in layout
        if k in state and tuple(state[k].shape) != layout[k]
    ]
    return missing, unexpected, wrong


def convert_state_dict(state: Mapping, arch: str | None = None) -> dict:
    """Check a published Zhang et al. state dict and return it in this package's layout.

    The registry's ``convert`` hook for the ``eccv16`` and ``siggraph17`` downloads.
    The layouts are the release's own, so the conversion only strips ``module.``
    prefixes, adds BatchNorm ``num_batches_tracked`` counters that very old files
    lack, and makes every tensor a contiguous float32 copy (safetensors needs that).

    Parameters
    ----------
    state : mapping of str to torch.Tensor
        As read by ``torch.load(path, weights_only=True)``.
    arch : {"eccv16", "siggraph17"}, optional
        The architecture the file must fit; by default the one whose keys it has.

    Returns
    -------
    dict[str, torch.Tensor]

    Raises
    ------
    CheckpointError
        The keys or shapes fit neither architecture (or not ``arch``); the message
        names the missing, unexpected and mis-shaped keys.
    """
    if not isinstance(state, Mapping):
        raise CheckpointError(
            f"expected a state dict (a mapping of names to tensors), got {type(state).__name__}"
        )
    state = _strip_prefix(state)
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"the state dict holds non-tensor entries: {short_list(bad, 8)}")
    candidates = [arch] if arch is not None else list(_ARCH_CLASSES)
    reports = {}
    for name in candidates:
        layout = expected_layout(name)
        missing, unexpected, wrong = _layout_errors(state, layout)
        if not (missing or unexpected or wrong):
            out = {}
            for key, shape in layout.items():
                if key in state:
                    tensor = state[key]
                    dtype = torch.int64 if key.endswith(_OPTIONAL_SUFFIX) else torch.float32
                    out[key] = tensor.detach().to("cpu", dtype).contiguous().clone()
                else:
                    out[key] = torch.zeros(shape, dtype=torch.int64)
            return out
        reports[name] = (missing, unexpected, wrong)
    # report against the closest layout
    name, (missing, unexpected, wrong) = min(
        reports.items(), key=lambda kv: sum(len(x) for x in kv[1])
    )
    found = {"missing keys": missing, "unexpected keys": unexpected, "wrong shapes": wrong}
    parts = [f"{kind}: {short_list(keys, 8)}" for kind, keys in found.items() if keys]
    which = (
        f"the {name} architecture"
        if arch is not None
        else (f"any Zhang et al. architecture (closest: {name})")
    )
    raise CheckpointError(
        f"this state dict does not fit {which}: {'; '.join(parts)}. Use the published "
        "files colorization_release_v2-9b330a0b.pth (eccv16) or siggraph17-df00044c.pth "
        "(siggraph17) unchanged"
    )
