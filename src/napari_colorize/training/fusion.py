"""Training the ``full`` colorizer (:mod:`napari_colorize.models.full`): task and preset.

:class:`FusionTask` is a :class:`~.task.ColorizationTask` that

- gives a newly built model's classifier the weights of
  ``model.config.classifier_source`` (the bundled ``inception-punks`` by default)
  before the first step; a model loaded from a checkpoint keeps its own;
- trains only the colorizer's parameters (the classifier's have
  ``requires_grad=False`` and stay in eval mode, see the model);
- computes the frozen classifier's class vector of each distinct training input
  once and reuses it (``cache_embeddings``): the punks come in two versions
  each (flipped or not), so after the first epochs the classifier no longer runs.
  Inputs are recognised by a hash of their bytes, so any data set works.

The ``full-punks`` preset is ``beta-punks`` (same data, split, schedule, loss
and length) with the ``full`` architecture, so the two compare fairly.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

import torch

from .task import ColorizationTask

__all__ = [
    "TASK",
    "FusionTask",
    "load_beta_prior",
    "load_classifier_weights",
]

#: The ``TrainConfig.task`` string of :class:`FusionTask`.
TASK = "napari_colorize.training.fusion:FusionTask"
_OPTIONS = {"cache_embeddings", "cache_size", "prior"}


def load_classifier_weights(model, source) -> None:
    """Copy the weights of classifier ``source`` (a registered name or a file) into ``model``.

    Raises
    ------
    ValueError
        ``source`` is not an ``inception`` model, or its config differs from
        ``model.config.classifier`` (the message names the fields and the fix).
    """
    from ..checkpoint import load_checkpoint
    from ..models.inception import InceptionConfig

    path = Path(str(source)).expanduser()
    if not path.is_file():
        from ..registry import resolve_weights

        path = resolve_weights(str(source))
    ckpt = load_checkpoint(path)
    if ckpt.meta.arch != "inception":
        raise ValueError(
            f"the classifier source {source!r} is a {ckpt.meta.arch!r} model; the full model "
            "needs an 'inception' classifier such as inception-punks"
        )
    theirs = InceptionConfig(**ckpt.meta.config).to_dict()
    ours = model.classifier.config.to_dict()
    differ = sorted(k for k in ours if k != "dropout" and ours[k] != theirs.get(k))
    if differ:
        raise ValueError(
            f"the classifier {source!r} was built with "
            f"{ {k: theirs.get(k) for k in differ} } but this full model's classifier has "
            f"{ {k: ours[k] for k in differ} }; set model_config['classifier'] to the "
            "source's config (napari_colorize.checkpoint.read_metadata(path).config)"
        )
    model.load_classifier_state(ckpt.model_state)


def load_beta_prior(model, source) -> None:
    """Copy a trained ``beta`` model's weights into a full model's encoder and decoder.

    With ``FusionConfig.residual`` the full model then colours exactly as that
    beta until training teaches the fusion what the class vector adds.

    Raises
    ------
    ValueError
        ``source`` is not a ``beta`` model of the same configuration, or the full
        model does not fuse residually (its fusion would scramble the prior's
        features).
    """
    from ..checkpoint import load_checkpoint

    path = Path(str(source)).expanduser()
    if not path.is_file():
        from ..registry import resolve_weights

        path = resolve_weights(str(source))
    ckpt = load_checkpoint(path)
    ours = model.colorizer.state_dict()
    theirs = ckpt.model_state
    wrong = sorted(set(ours) ^ set(theirs)) + sorted(
        k for k in ours if k in theirs and tuple(ours[k].shape) != tuple(theirs[k].shape)
    )
    if ckpt.meta.arch != "beta" or wrong or not model.config.residual:
        raise ValueError(
            f"the prior {source!r} ({ckpt.meta.arch}) does not fit this full model"
            + (f" (keys {wrong[:4]})" if wrong else "")
            + "; a prior needs model_config['residual'] = True and a beta model of the same "
            "beta config (e.g. prior='beta-punks' for the full-punks preset)"
        )
    model.colorizer.load_state_dict({k: v.to(ours[k].dtype) for k, v in theirs.items()})


class FusionTask(ColorizationTask):
    """Train a :class:`~napari_colorize.models.full.FusionColorizer` on ``(l, ab)`` batches.

    Parameters
    ----------
    model : FusionColorizer
    config : TrainConfig
        ``loss`` as for the colorizers; ``task_config`` may set
        ``cache_embeddings`` (default True), ``cache_size`` (most cached
        inputs, default 200,000; the oldest are dropped first) and ``prior``
        (a ``beta`` model name or file whose weights start the encoder and
        decoder, see :func:`load_beta_prior`).
    """

    def __init__(self, model, config=None):
        super().__init__(model, getattr(config, "loss", "l1"))
        options = dict(getattr(config, "task_config", None) or {})
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ValueError(
                f"unknown task_config option(s) {unknown} for the full model; "
                f"use {', '.join(sorted(_OPTIONS))}"
            )
        self.cache_embeddings = bool(options.get("cache_embeddings", True))
        self.cache_size = int(options.get("cache_size", 200_000))
        self._cache: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self.hits = self.misses = 0
        if not int(model.classifier_ready):
            source = model.config.classifier_source
            if not source:
                raise ValueError(
                    "the full model's classifier has no trained weights and "
                    "model_config['classifier_source'] is empty; name a trained classifier "
                    "(e.g. 'inception-punks') or start from a full model checkpoint"
                )
            load_classifier_weights(model, source)
        if options.get("prior"):
            load_beta_prior(model, options["prior"])

    def embeddings(self, l_net: torch.Tensor) -> torch.Tensor:
        """The frozen classifier's class vectors of ``l_net`` (N,1,H,W), cached by content."""
        model = self.model
        if not (self.cache_embeddings and model.config.freeze_classifier):
            return model.embed(l_net)
        rows = l_net.detach().to("cpu", torch.float32).contiguous().numpy()
        keys = [hashlib.blake2b(r.tobytes(), digest_size=16).digest() for r in rows]
        missing = [i for i, k in enumerate(keys) if k not in self._cache]
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        if missing:
            fresh = model.embed(l_net[missing]).float().cpu()
            for i, e in zip(missing, fresh):
                self._cache[keys[i]] = e
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return torch.stack([self._cache[k] for k in keys]).to(l_net.device)

    def model_inputs(self, l_net: torch.Tensor) -> dict:
        """The cached class vectors, given to the model as ``embedding``."""
        return {"embedding": self.embeddings(l_net)}
