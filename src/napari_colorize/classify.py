"""Class probabilities of gray images: the logic behind the class-probabilities widget.

A :class:`Classifier` wraps an Inception v3 model (``arch="inception"``) with its
heads and class names: the bundled ``inception-punks`` (the five punk types as a
softmax, 87 accessories as independent sigmoids) or the ImageNet weights
published for torchvision (``inception-imagenet``, 1,000 classes, downloaded on
request). :func:`classify_plane` takes one plane of a user array to L, runs the
classifier and returns :class:`ClassScores`; :meth:`ClassScores.rows` turns them
into the rows of a bar chart (each softmax head's top classes, then the top
labels of each sigmoid head). :attr:`ClassScores.warning` says when the image is
unlike the classifier's training data (its size, its lightness statistics) or
the classifier is unsure, so that "male 100 %" for a photo is not taken at its word.

:func:`classifier_report` scores a classifier of the punks labels on a split
(type accuracy, accessory accuracy, mAP and F1), as stored in the bundled
model's metadata.

No Qt here; torch is imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ClassRow",
    "ClassScores",
    "Classifier",
    "available_classifiers",
    "average_precision",
    "classifier_report",
    "classify_plane",
    "plane_lightness",
]

#: Largest side a plane is read at for classification (pyramid levels are picked by it).
_READ_SIDE = 512
#: A softmax head whose entropy is at least this fraction of the largest possible
#: (all classes equally likely) is "unsure".
UNSURE_ENTROPY = 0.6


@dataclass(frozen=True)
class ClassRow:
    """One bar: ``label`` with ``probability`` in [0, 1], from ``head`` (a softmax or sigmoid)."""

    head: str
    kind: str
    label: str
    probability: float


@dataclass
class ClassScores:
    """The probabilities of one image, per head.

    Attributes
    ----------
    heads : list of (name, kind, class names, probabilities)
        ``kind`` is ``"softmax"`` (the probabilities sum to 1) or ``"sigmoid"``
        (each label on its own); ``probabilities`` is float ``(size,)``.
    warning : str or None
        Why these probabilities should not be trusted: the image is unlike the
        classifier's training data (size, lightness statistics) or the
        classifier is unsure (a softmax head close to uniform). None when
        nothing speaks against them.
    reasons : list of str
        The single reasons the warning is made of.
    """

    heads: list[tuple[str, str, list[str], np.ndarray]] = field(default_factory=list)
    warning: str | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def trusted(self) -> bool:
        """Whether nothing speaks against these probabilities (:attr:`warning` is None)."""
        return self.warning is None

    def head(self, name: str) -> dict[str, float]:
        """``{class name: probability}`` of head ``name``."""
        for n, _, names, p in self.heads:
            if n == name:
                return dict(zip(names, map(float, p)))
        raise KeyError(f"no head {name!r}; heads: {[h[0] for h in self.heads]}")

    def top(self, k: int = 5, head: str | None = None) -> list[ClassRow]:
        """The ``k`` most probable classes of one head (default: the first)."""
        if not self.heads:
            return []
        name, kind, names, p = next(
            (h for h in self.heads if head is None or h[0] == head), self.heads[0]
        )
        order = np.argsort(-p, kind="stable")[: max(int(k), 0)]
        return [ClassRow(name, kind, names[i], float(p[i])) for i in order]

    def rows(self, k: int = 5, k_labels: int | None = None) -> list[ClassRow]:
        """Rows of a bar chart: each softmax head's top ``k``, then each sigmoid head's top.

        Parameters
        ----------
        k : int
            Classes shown per softmax head (all of a head with ``k`` or fewer classes).
        k_labels : int, optional
            Labels shown per sigmoid head (default ``k``).
        """
        k_labels = k if k_labels is None else k_labels
        out = []
        for kind in ("softmax", "sigmoid"):
            for name, kind_, _, _ in self.heads:
                if kind_ == kind:
                    out += self.top(k if kind == "softmax" else k_labels, name)
        return out


def _names_for(heads, class_names) -> list[list[str]]:
    """Class names per head from ``class_names`` (dict per head, flat list, or None)."""
    out = []
    flat = None
    if isinstance(class_names, str) and class_names == "imagenet":
        from .models.inception import imagenet_class_names

        flat = imagenet_class_names()
    elif isinstance(class_names, (list, tuple)):
        flat = [str(n) for n in class_names]
    start = 0
    for name, _, size in heads:
        names = None
        if isinstance(class_names, dict) and name in class_names:
            names = [str(n) for n in class_names[name]]
        elif flat is not None and len(flat) >= start + size:
            names = flat[start : start + size]
        if names is None or len(names) != size:
            names = [f"{name} {i}" for i in range(size)]
        out.append(names)
        start += size
    return out


class Classifier:
    """An Inception v3 model with its heads and class names, ready to classify L images.

    Parameters
    ----------
    model : InceptionV3
        In eval mode (made so here).
    class_names : dict, list, "imagenet" or None
        ``{head: [names]}``, one flat list in output order, or ``"imagenet"`` for the
        1,000 ImageNet names; missing names become ``"<head> <i>"``.
    name : str, optional
        What to call it in messages.
    card : dict, optional
        Its model card (:func:`napari_colorize.registry.model_card`): the training
        image size (``image_size``, ``any_larger_size``) and lightness statistics
        (``lightness``) that :meth:`scores` compares an image with.
    """

    def __init__(self, model, class_names=None, name: str | None = None, card=None):
        cfg = model.config
        self.model = model.eval()
        self.name = name or type(model).__name__
        self.card = dict(card or {})
        if cfg.heads is None and class_names is None and cfg.num_classes == 1000:
            class_names = "imagenet"  # a 1000-way softmax is the ImageNet head
        self.heads = tuple(cfg.heads or (("classes", "softmax", cfg.num_classes),))
        self.class_names = _names_for(self.heads, class_names)

    @classmethod
    def load(cls, name_or_path, device="cpu", **kwargs) -> Classifier:
        """Load a registered classifier (or checkpoint file) with the registry.

        ``kwargs`` go to :func:`napari_colorize.registry.load_model` (``progress``).

        Raises
        ------
        ValueError
            The model is not a classifier (``arch`` other than ``"inception"``).
        """
        from .registry import load_model

        model, meta = load_model(name_or_path, device=device, **kwargs)
        if meta.arch != "inception":
            raise ValueError(
                f"{name_or_path!r} is a {meta.arch!r} model, not a classifier; choose an "
                "'inception' model such as inception-punks"
            )
        names = (meta.extra or {}).get("class_names")
        return cls(model, names, name=str(name_or_path), card=_card_of(name_or_path, meta))

    @property
    def device(self):
        return next(self.model.parameters()).device

    def probabilities(self, lightness) -> np.ndarray:
        """Probabilities ``(N, num_classes)`` of L ``(N, H, W)`` or ``(H, W)`` in [0, 100]."""
        import torch

        from .color import l_to_net

        lightness = np.asarray(lightness, dtype=np.float32)
        if lightness.ndim == 2:
            lightness = lightness[None]
        if lightness.ndim != 3:
            raise ValueError(f"expected L as (H, W) or (N, H, W), got shape {lightness.shape}")
        x = torch.from_numpy(np.ascontiguousarray(l_to_net(lightness)))[:, None]
        with torch.inference_mode():
            p = self.model.predict_proba(x.to(self.device))
        return p.float().cpu().numpy()

    def scores(self, lightness, image_shape=None) -> ClassScores:
        """:class:`ClassScores` of one L image ``(H, W)``, with a warning where due.

        Parameters
        ----------
        lightness : array-like
            L ``(H, W)`` in [0, 100].
        image_shape : (int, int), optional
            The image's size at full resolution, when ``lightness`` was read
            from a smaller pyramid level; default ``lightness.shape``.
        """
        lightness = np.asarray(lightness, dtype=np.float32)
        p = self.probabilities(lightness)[0]
        out, start = ClassScores(), 0
        for (name, kind, size), names in zip(self.heads, self.class_names):
            out.heads.append((name, kind, names, p[start : start + size]))
            start += size
        shape = tuple(image_shape)[-2:] if image_shape is not None else lightness.shape[-2:]
        out.reasons, out.warning = self.check(lightness, shape, out)
        return out

    def check(self, lightness, image_shape, scores: ClassScores) -> tuple[list[str], str | None]:
        """Why ``scores`` of an image should not be trusted: ``(reasons, warning)``.

        The image's size and its lightness mean, spread and number of levels are
        compared with the classifier's training data (from its card, see
        :func:`napari_colorize.cards.domain_warnings`), and each softmax head's
        entropy with :data:`UNSURE_ENTROPY` of the largest possible.
        """
        from .cards import domain_warnings

        finite = lightness[np.isfinite(lightness)]
        mean = float(finite.mean()) if finite.size else None
        std = float(finite.std()) if finite.size else None
        levels = len(np.unique(np.round(finite))) if finite.size else None
        unlike = domain_warnings({"name": self.name, **self.card}, image_shape, mean, std, levels)
        unsure = []
        for name, kind, names, p in scores.heads:
            if kind != "softmax" or len(p) < 2:
                continue
            q = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1.0)
            entropy = float(-(q * np.log(q)).sum() / np.log(len(q)))
            if entropy >= UNSURE_ENTROPY:
                top = int(np.argmax(p))
                unsure.append(
                    f"it is unsure of the {name}: the most likely, {names[top]!r}, has "
                    f"{100 * float(p[top]):.0f} % (entropy {entropy:.0%} of the largest)"
                )
        reasons = unlike + unsure
        if not reasons:
            return [], None
        who = str(self.name).replace("\\", "/").rsplit("/", 1)[-1]  # a file: its name
        if unlike:
            text = (
                f"Unlike the images {who} was trained on: "
                + "; ".join(reasons)
                + ". Its probabilities say little about this image."
            )
        else:
            text = f"{who} is unsure: " + "; ".join(reasons) + "."
        return reasons, text


def plane_lightness(
    data: Any,
    *,
    ndim: int,
    rgb: bool = False,
    multiscale: bool = False,
    plane=None,
    value_range=None,
) -> np.ndarray:
    """L ``(H, W)`` in [0, 100] of one plane of a layer's data (read now).

    Parameters
    ----------
    data : array-like or list of array-like
        A layer's data (a pyramid, largest level first, when ``multiscale``).
    ndim : int
        The layer's axes without the colour axis.
    rgb : bool
        Whether the last axis is colour (RGB/RGBA).
    multiscale : bool
    plane : tuple of int, optional
        The plane's index along the ``ndim - 2`` stack axes (level-0 pixels); the
        first plane when omitted.
    value_range : (float, float), optional
        The values shown as black and white (e.g. the layer's contrast limits);
        from the data (:func:`napari_colorize.images.intensity_range`) when omitted.
    """
    from .images import describe, intensity_range, plane_to_lightness
    from .layers import select_source

    levels = list(data) if multiscale else [data]
    level = 0
    for i, arr in enumerate(levels):  # the smallest level still read at _READ_SIDE
        if max(arr.shape[ndim - 2 : ndim]) >= _READ_SIDE:
            level = i
    n_stack = ndim - 2
    if plane is None and n_stack > 0:
        plane = (0,) * n_stack
    selection = select_source(data, ndim=ndim, multiscale=multiscale, level=level, plane=plane)
    array = np.asarray(selection.array)
    array = array.reshape(array.shape[n_stack:])  # the stack axes have length 1 now
    layout = describe(array, rgb=rgb)
    if value_range is None:
        value_range = intensity_range(array, layout)
    return plane_to_lightness(array, layout, value_range)


def classify_plane(classifier: Classifier, data, **kwargs) -> ClassScores:
    """:class:`ClassScores` of a layer plane; ``kwargs`` as :func:`plane_lightness`.

    The warning (:attr:`ClassScores.warning`) judges the plane's full-resolution size.
    """
    ndim = kwargs["ndim"]
    level0 = data[0] if kwargs.get("multiscale") else data
    shape = tuple(int(n) for n in level0.shape[ndim - 2 : ndim])
    return classifier.scores(plane_lightness(data, **kwargs), image_shape=shape)


def _card_of(name_or_path, meta) -> dict:
    """The card of a registered classifier, or one built from a file's metadata."""
    from .cards import build_card
    from .registry import model_card, model_names

    if isinstance(name_or_path, str) and name_or_path in model_names():
        return model_card(name_or_path)
    return build_card(
        str(name_or_path), arch=meta.arch or "inception", source="path", data=meta.data,
        extra=meta.extra, metrics=meta.metrics,
    )  # fmt: skip


def available_classifiers() -> list[dict]:
    """The registered classifiers (``arch == "inception"``), usable or not.

    Returns
    -------
    list of dict
        ``name``, ``available`` (its weights are on this machine), ``description``,
        ``metrics`` and ``advice`` (how to get the weights, for unavailable ones).
    """
    from .registry import cache_dir, list_models

    out = []
    for m in list_models():
        if m.get("arch") != "inception":
            continue
        advice = ""
        if not m.get("available"):
            if m.get("source") == "url":
                advice = (
                    f"{m['name']} is downloaded on first use from {m.get('url')} (about "
                    f"{(m.get('size') or 104_000_000) / 1e6:.0f} MB) into {cache_dir()}; "
                    "press Download weights (or call napari_colorize.registry.resolve_weights"
                    f"({m['name']!r})), or copy the file there on an offline machine"
                )
            else:
                advice = m.get("error") or "its weights file is missing; reinstall napari-colorize"
        out.append(
            {
                "name": m["name"],
                "available": bool(m.get("available")),
                "source": m.get("source"),
                "description": m.get("description", ""),
                "metrics": m.get("metrics") or {},
                "advice": advice,
            }
        )
    return out


# ------------------------------------------------------------------ evaluation


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Average precision of one label: mean precision at each positive's rank (NaN without any)."""
    positives = np.asarray(positives, dtype=bool)
    n_pos = int(positives.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    hits = positives[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].sum() / n_pos)


def classifier_report(
    model, split: str = "test", batch_size: int = 256, indices=None, *, punks=None
) -> dict:
    """Scores of a punks classifier (types softmax + accessories sigmoid) on a punks split.

    Parameters
    ----------
    model : InceptionV3, Classifier, str or path
        A model with the heads ``type`` (5) and ``accessories`` (87), or its name/file.
    split : {"train", "test"}
    indices : sequence of int, optional
        Only these punks of the split (e.g. the validation hold-out).
    punks : PunksSplit, optional
        The split already loaded (else :func:`~napari_colorize.data.punks.load_punks`).

    Returns
    -------
    dict
        ``type_accuracy``, ``type_balanced_accuracy`` (mean recall over the types
        present), ``accessory_accuracy`` (mean over the 87 labels at threshold 0.5),
        ``accessory_map`` (mean average precision over labels present),
        ``accessory_f1_micro``, ``accessory_f1_macro`` (labels present),
        ``exact_match`` (all 92 labels right), ``n_images``, ``data``.
    """
    from .data.labels import PunksLabelsDataset

    clf = model if isinstance(model, Classifier) else None
    if clf is None:
        clf = Classifier.load(model) if isinstance(model, str) or hasattr(model, "__fspath__") \
            else Classifier(model)  # fmt: skip
    data = PunksLabelsDataset(split, indices, flips=False, punks=punks)
    expected = [("softmax", 5), ("sigmoid", len(data.accessory_names))]
    if [(kind, size) for _, kind, size in clf.heads] != expected:
        raise ValueError(
            f"expected the punks heads (type: softmax 5, accessories: sigmoid "
            f"{len(data.accessory_names)}), got {list(clf.heads)}"
        )
    import torch

    probs = []
    was_training = clf.model.training
    clf.model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(data), batch_size):
                x = torch.from_numpy(data.l_net[start : start + batch_size]).to(clf.device)
                probs.append(clf.model.predict_proba(x).float().cpu().numpy())
    finally:
        clf.model.train(was_training)
    p = np.concatenate(probs)
    y = data.targets > 0.5
    types_true, types_pred = y[:, :5].argmax(1), p[:, :5].argmax(1)
    recalls = [
        float(np.mean(types_pred[types_true == t] == t))
        for t in range(5)
        if np.any(types_true == t)
    ]
    acc_true, acc_pred = y[:, 5:], p[:, 5:] >= 0.5
    present = acc_true.any(0)
    tp = (acc_true & acc_pred).sum(0)
    fp = (~acc_true & acc_pred).sum(0)
    fn = (acc_true & ~acc_pred).sum(0)
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    aps = [average_precision(p[:, 5 + j], acc_true[:, j]) for j in np.flatnonzero(present)]
    exact = (types_pred == types_true) & np.all(acc_pred == acc_true, axis=1)
    return {
        "type_accuracy": float(np.mean(types_pred == types_true)),
        "type_balanced_accuracy": float(np.mean(recalls)),
        "accessory_accuracy": float(np.mean(acc_pred == acc_true)),
        "accessory_map": float(np.mean(aps)),
        "accessory_f1_micro": float(2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)),
        "accessory_f1_macro": float(np.mean(f1[present])),
        "exact_match": float(np.mean(exact)),
        "n_images": len(data),
        "data": f"punks:{split}" + ("" if indices is None else f" ({len(data)} selected)"),
    }
