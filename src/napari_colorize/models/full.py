"""The ``full`` colorizer: beta's encoder and decoder fused with a classifier's view.

Deep Koalarization (Baldassarre et al. 2017): a frozen image classifier sees
the gray image; its class vector (probabilities, or logits) is tiled over the
encoder's feature map, concatenated to it, reduced back to the encoder's
channels by a 1x1 conv, and decoded as usual::

    l ──> beta encoder ──> features (C, h, w) ─┐
    │                                          ├─ concat ─ 1x1 conv ─> beta decoder ─> ab
    └──> Inception v3 (frozen) ─> p (K,) ─ tile (K, h, w)

The point is that class knowledge settles colours the lightness alone leaves
open: a zombie's skin and a human's may share a gray, not a hue.

Freezing
    The classifier is never trained here: its parameters have
    ``requires_grad=False`` and it stays in eval mode whatever ``train()`` is
    called with, so its batch-norm statistics do not move either. Its weights
    are saved inside the full model's checkpoint (loading needs only that file).
    A newly built model has an untrained classifier: the training task
    (:class:`napari_colorize.training.fusion.FusionTask`) copies the weights of
    ``config.classifier_source`` into it before the first step and sets
    :attr:`FusionColorizer.classifier_ready`, which a saved model keeps.

Conditioning
    ``forward(l, hints=None, embedding=None)``: the class vector is computed from
    ``l`` unless ``embedding`` (``(N, K)``, as :meth:`FusionColorizer.embed`
    returns) is given, which lets training reuse cached classifier outputs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn

from .beta import BetaColorizer, BetaConfig
from .blocks import ConvNormAct, crop_to
from .inception import InceptionConfig, InceptionV3

__all__ = [
    "EMBEDDINGS",
    "PUNKS_CLASSIFIER",
    "FusionColorizer",
    "FusionConfig",
    "punks_classifier_config",
]

EMBEDDINGS = ("probabilities", "logits", "features")

#: The bundled ``inception-punks`` classifier: gray L in, 24x24 punks enlarged to 99x99,
#: a quarter of Inception v3's channels, the five punk types (softmax) then 87 accessories.
PUNKS_CLASSIFIER = {
    "in_channels": 1,
    "grayscale": True,
    "width": 0.25,
    "dropout": 0.2,
    "min_input_size": 99,
    "heads": [["type", "softmax", 5], ["accessories", "sigmoid", 87]],
}


def punks_classifier_config(**overrides) -> InceptionConfig:
    """The :class:`InceptionConfig` of the bundled ``inception-punks`` classifier."""
    return InceptionConfig(**{**PUNKS_CLASSIFIER, **overrides})


@dataclass
class FusionConfig:
    """Configuration of :class:`FusionColorizer`.

    Parameters
    ----------
    beta : dict
        :class:`~napari_colorize.models.beta.BetaConfig` fields of the encoder and
        decoder (any layout; the default is beta's U-Net).
    classifier : dict
        :class:`~napari_colorize.models.inception.InceptionConfig` fields of the
        classifier; must describe the weights of ``classifier_source``.
    classifier_source : str or None
        The registered model name (or checkpoint path) whose weights a newly built
        model's classifier gets before training; recorded for provenance. A saved
        full model carries the classifier's weights itself.
    embedding : {"probabilities", "logits", "features"}
        What is tiled: the heads' probabilities (softmax/sigmoid per head), the
        raw logits, or the globally pooled features the classifier's ``fc``
        reads (``num_features``: 512 at width 0.25).
    freeze_classifier : bool
        Keep the classifier fixed (no gradients, eval mode). Always true in the
        presets; false only for experiments.
    residual : bool
        Fuse as a correction, ``features + conv(concat)`` with the last conv
        zero-initialised, instead of replacing the features by ``conv(concat)``.
        A residual full model starts as exactly its beta (whose trained weights
        it can take, see ``prior`` in :class:`~napari_colorize.training.fusion.FusionTask`),
        so the class vector only adds what it knows.
    """

    beta: dict = field(default_factory=dict)
    classifier: dict = field(default_factory=lambda: dict(PUNKS_CLASSIFIER))
    classifier_source: str | None = "inception-punks"
    embedding: str = "probabilities"
    freeze_classifier: bool = True
    residual: bool = False

    def __post_init__(self):
        self.beta = _as_dict(self.beta, "beta")
        self.classifier = _as_dict(self.classifier, "classifier")
        if self.embedding not in EMBEDDINGS:
            raise ValueError(
                f"FusionConfig.embedding must be one of {', '.join(EMBEDDINGS)}, "
                f"not {self.embedding!r}"
            )
        # fail early (at config time) on bad nested fields, naming them
        self.beta_config()
        self.classifier_config()

    def beta_config(self) -> BetaConfig:
        try:
            return BetaConfig(**self.beta)
        except TypeError as exc:
            raise ValueError(f"bad FusionConfig.beta fields: {exc}") from None

    def classifier_config(self) -> InceptionConfig:
        try:
            return InceptionConfig(**self.classifier)
        except TypeError as exc:
            raise ValueError(f"bad FusionConfig.classifier fields: {exc}") from None

    def to_dict(self) -> dict:
        """Plain JSON-able dict (for checkpoint metadata)."""
        return {
            "beta": self.beta_config().to_dict(),
            "classifier": self.classifier_config().to_dict(),
            "classifier_source": self.classifier_source,
            "embedding": self.embedding,
            "freeze_classifier": self.freeze_classifier,
            "residual": self.residual,
        }


def _as_dict(value, name: str) -> dict:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = value.to_dict() if hasattr(value, "to_dict") else dataclasses.asdict(value)
    if not isinstance(value, dict):
        raise ValueError(f"FusionConfig.{name} must be a dict of config fields, got {value!r}")
    return dict(value)


class FusionColorizer(nn.Module):
    """Beta's encoder-decoder with a frozen classifier's class vector fused at the bottleneck.

    ``forward(l (N,1,H,W), hints=None, embedding=None) -> ab (N,2,H,W)`` in [-1, 1].

    Attributes
    ----------
    colorizer : BetaColorizer
        Encoder and decoder (its own ``forward`` is not used).
    classifier : InceptionV3
    fusion : torch.nn.Module
        1x1 conv (+ norm + ReLU) from ``encoder_channels + embedding_size`` back to
        ``encoder_channels``; with ``config.residual`` followed by a zero-initialised
        1x1 conv whose output is added to the features.
    classifier_ready : torch.Tensor
        Scalar buffer, 1 once the classifier holds trained weights (saved with the model).
    """

    def __init__(self, config: FusionConfig | None = None):
        super().__init__()
        self.config = config = config or FusionConfig()
        beta = config.beta_config()
        self.colorizer = BetaColorizer(beta)
        self.classifier = InceptionV3(config.classifier_config())
        self.num_classes = self.classifier.config.num_classes
        #: Length of the vector tiled over the features (see ``FusionConfig.embedding``).
        self.embedding_size = (
            self.classifier.num_features if config.embedding == "features" else self.num_classes
        )
        c = self.colorizer.encoder_channels
        norm = beta.norm if beta.layout == "unet" else "none"
        self.fusion = ConvNormAct(c + self.embedding_size, c, kernel=1, norm=norm)
        if config.residual:
            self.fusion = nn.Sequential(self.fusion, nn.Conv2d(c, c, 1))
            nn.init.zeros_(self.fusion[1].weight)
            nn.init.zeros_(self.fusion[1].bias)
        self.register_buffer("classifier_ready", torch.zeros((), dtype=torch.uint8))
        if config.freeze_classifier:
            self.classifier.requires_grad_(False)
            self.classifier.eval()

    @property
    def downsampling(self) -> int:
        return self.colorizer.downsampling

    @property
    def accepts_hints(self) -> bool:
        """Whether the encoder takes user colour hints (``beta.in_channels=4``)."""
        return self.colorizer.accepts_hints

    def train(self, mode: bool = True):
        """As ``nn.Module.train``, but a frozen classifier stays in eval mode (BN stats fixed)."""
        super().train(mode)
        if self.config.freeze_classifier:
            self.classifier.eval()
        return self

    def load_classifier_state(self, state) -> None:
        """Copy a trained classifier's state dict in and mark the classifier ready."""
        from ..checkpoint import load_state_into

        load_state_into(self.classifier, state, arch="inception")
        self.classifier_ready.fill_(1)

    def embed(self, l_net: torch.Tensor) -> torch.Tensor:
        """The class vector ``(N, embedding_size)`` of ``l_to_net(L)`` ``(N, 1, H, W)``.

        Probabilities (each head's softmax or sigmoid), logits or pooled features,
        per ``config.embedding``; no gradient reaches a frozen classifier.
        """
        if l_net.ndim != 4 or l_net.shape[1] != 1:
            raise ValueError(f"expected L as (N, 1, H, W), got shape {tuple(l_net.shape)}")
        frozen = self.config.freeze_classifier
        with torch.no_grad() if frozen else torch.enable_grad():
            if self.config.embedding == "features":
                out = self.classifier.features(l_net)
            else:
                logits = self.classifier(l_net)
                if isinstance(logits, tuple):  # training mode with aux logits
                    logits = logits[0]
                out = (
                    self.classifier.probabilities(logits)
                    if self.config.embedding == "probabilities"
                    else logits
                )
        return out.detach() if frozen else out

    def fuse(self, features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """Tile ``embedding`` (N, K) over ``features`` (N, C, h, w), concatenate, 1x1 conv."""
        n, _, h, w = features.shape
        k = self.embedding_size
        if embedding.shape != (n, k):
            raise ValueError(
                f"embedding must be (N, {k}) = ({n}, {k}), got {tuple(embedding.shape)}"
            )
        tiled = embedding.to(features.dtype)[:, :, None, None].expand(-1, -1, h, w)
        fused = self.fusion(torch.cat([features, tiled], dim=1))
        return features + fused if self.config.residual else fused

    def forward(self, l_net, hints=None, embedding=None):
        """Predict ``ab_to_net(ab)`` (N,2,H,W) from ``l_to_net(L)`` (N,1,H,W).

        Parameters
        ----------
        l_net : torch.Tensor
        hints : torch.Tensor, optional
            Extra input channels of a hint-aware encoder (``beta.in_channels > 1``).
        embedding : torch.Tensor, optional
            The class vector ``(N, num_classes)`` of ``l_net`` if already known
            (e.g. cached during training); computed from ``l_net`` otherwise.
        """
        if embedding is None:
            embedding = self.embed(l_net)
        x, size = self.colorizer.prepare_input(l_net, hints)
        features, skips = self.colorizer.encode(x)
        features = self.fuse(features, embedding)
        return crop_to(self.colorizer.decode(features, skips, lightness=x[:, :1]), size)
