"""The lightness lookup table of a training run: its fit, and its validation error.

A model trained on a user's images must not lose to the simplest thing those
images teach, the mean ab per lightness (``ab = table[L]``, see
:mod:`napari_colorize.models.lightness_table`). The trainer therefore

- fits that table to a sample of the training items (:func:`fit_dataset_table`)
  and gives it to a new model built with ``lightness_table=True``, which then
  starts as the table and learns a residual on it (:func:`install_table`);
- reports the table's validation error once, next to the model's, as
  ``val_table_delta_e`` (and ``val_table_loss``) in its validation metrics, so
  that a user sees what training bought (:func:`table_metrics`,
  :func:`describe_validation`);
- at the end of a run whose model still does worse than the table on the
  validation data, shrinks the residual until it does not
  (:func:`shrink_residual`): the table's ``residual_scale``, 1 while
  training, becomes the best of :data:`SHRINK_SCALES` (0 is the table itself).
  The scale is chosen on the validation data, as early stopping chooses a step.

Runs trained from layers, a folder or one photo turn the table on
(:func:`with_lightness_table`); the bundled checkpoints and any config that
says ``lightness_table: false`` keep it off.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from ..models.lightness_table import TABLE_BINS, LightnessTable, LightnessTableFit

__all__ = [
    "SHRINK_SCALES",
    "TABLE_ITEMS",
    "describe_validation",
    "fit_dataset_table",
    "is_colour_dataset",
    "prepare_table",
    "shrink_residual",
    "supports_lightness_table",
    "table_metrics",
    "wants_lightness_table",
    "with_lightness_table",
]

#: The table is fitted to at most this many training items, evenly spaced.
TABLE_ITEMS = 256
#: Residual scales tried, in this order, when a model ends worse than its table.
SHRINK_SCALES = (0.75, 0.5, 0.25, 0.0)


def _config_class(arch: str):
    import importlib

    from ..registry import describe_architectures

    for entry in describe_architectures():
        if entry["name"] == arch:
            module, _, name = entry["config"].partition(":")
            try:
                return getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError):
                return None
    return None


def supports_lightness_table(arch: str) -> bool:
    """Whether architecture ``arch``'s config has a ``lightness_table`` field."""
    config_class = _config_class(arch)
    if config_class is None or not dataclasses.is_dataclass(config_class):
        return False
    return any(f.name == "lightness_table" for f in dataclasses.fields(config_class))


def with_lightness_table(arch: str, model_config: dict | None = None) -> dict:
    """``model_config`` with ``lightness_table=True`` where ``arch`` supports it.

    A config that already says ``lightness_table`` (true or false) is kept as it is.
    """
    config = dict(model_config or {})
    if "lightness_table" not in config and supports_lightness_table(arch):
        config["lightness_table"] = True
    return config


def wants_lightness_table(model_config) -> bool:
    """Whether a model config (a dict or a config dataclass) asks for a lightness table."""
    if isinstance(model_config, dict):
        return bool(model_config.get("lightness_table", False))
    return bool(getattr(model_config, "lightness_table", False))


def _item(dataset, index: int):
    item = dataset[index]
    return np.asarray(item[0], dtype=np.float32), np.asarray(item[1], dtype=np.float32)


def is_colour_dataset(dataset) -> bool:
    """Whether ``dataset`` yields ``(l_net (1,h,w), ab_net (2,h,w), ...)`` (not class labels)."""
    if dataset is None or len(dataset) == 0:
        return False
    try:
        l_net, ab_net = _item(dataset, 0)
    except Exception:  # labels of another kind, or an unusual dataset: no table
        return False
    return l_net.ndim == 3 and l_net.shape[0] == 1 and ab_net.shape == (2, *l_net.shape[1:])


def fit_dataset_table(dataset, *, max_items: int = TABLE_ITEMS, bins: int = TABLE_BINS):
    """The lightness table ``(bins, 2)`` of ``dataset``'s pixels, from a sample of its items.

    Parameters
    ----------
    dataset : Dataset
        Yields ``(l_net (1,h,w), ab_net (2,h,w), ...)``.
    max_items : int
        Read at most this many items, evenly spaced over the dataset (all of a
        smaller one), of epoch 0 for datasets with ``set_epoch``.
    bins : int

    Returns
    -------
    numpy.ndarray
        float32 ``(bins, 2)`` in ab_to_net units.

    Raises
    ------
    ValueError
        An empty dataset, or items that are not ``(l_net, ab_net)`` pairs.
    """
    n = len(dataset)
    if n < 1:
        raise ValueError("cannot fit a lightness table to an empty dataset; give some images")
    if int(max_items) < 1:
        raise ValueError(f"max_items must be at least 1, got {max_items}")
    if hasattr(dataset, "set_epoch"):  # the same crops whatever epoch it was left at
        dataset.set_epoch(0)
    indices = np.unique(np.linspace(0, n - 1, min(n, int(max_items))).round().astype(int))
    fit = LightnessTableFit(bins)
    for i in indices:
        l_net, ab_net = _item(dataset, int(i))
        fit.add(l_net, ab_net)
    return fit.table()


def _table_module(model) -> LightnessTable | None:
    module = getattr(model, "lightness_table", None)
    return module if isinstance(module, LightnessTable) else None


def prepare_table(model, table=None) -> bool:
    """Ready ``model``'s table for training: set it to ``table`` (if given), residual scale 1.

    Returns False for a model without a :class:`LightnessTable`.
    """
    module = _table_module(model)
    if module is None:
        return False
    if table is not None:
        module.set_table(table)
    module.residual_scale.fill_(1.0)
    return True


def shrink_residual(model, metrics: dict, validate, scales=SHRINK_SCALES):
    """Make ``model`` no worse than its lightness table on the validation data.

    Parameters
    ----------
    model : torch.nn.Module
        A model with a :class:`LightnessTable` at residual scale 1 (others: None).
    metrics : dict
        Its validation metrics at scale 1, with ``val_delta_e`` and ``val_table_delta_e``.
    validate : callable
        ``validate() -> metrics`` of the model as it is now.
    scales : sequence of float
        The scales tried when the model is worse than the table; 0 is the table.

    Returns
    -------
    (float, dict) or None
        The scale kept and its metrics, when it is not 1; None when the model
        already does at least as well as the table (nothing is changed).
    """
    module = _table_module(model)
    error, table_error = metrics.get("val_delta_e"), metrics.get("val_table_delta_e")
    if module is None or error is None or table_error is None or error <= table_error:
        return None
    best = (error, 1.0, metrics)
    for scale in scales:
        module.residual_scale.fill_(float(scale))
        found = validate()
        if found.get("val_delta_e", math.inf) < best[0]:
            best = (found["val_delta_e"], float(scale), found)
    module.residual_scale.fill_(best[1])
    return None if best[1] == 1.0 else (best[1], best[2])


@torch.no_grad()
def table_metrics(table, dataset, *, loss_fn=None, device="cpu") -> dict[str, float]:
    """The table's mean validation ``table_delta_e`` (and ``table_loss``) over ``dataset``.

    Computed as :meth:`~napari_colorize.training.task.ColorizationTask.validation_step`
    computes the model's ``delta_e`` (mean CIE76 ab distance, Lab units) and
    ``loss``, so the two compare directly.

    Parameters
    ----------
    table : array-like ``(bins, 2)`` or None
        None (or no data) gives ``{}``.
    dataset : Dataset yielding ``(l_net, ab_net, ...)``
    loss_fn : callable, optional
        ``loss_fn(pred, target)``, the model's training loss.
    device : str or torch.device
    """
    if table is None or dataset is None or len(dataset) == 0:
        return {}
    from ..color import net_to_ab

    lookup = LightnessTable(len(table)).set_table(table).to(device)
    sums = {"table_delta_e": 0.0, "table_loss": 0.0}
    for i in range(len(dataset)):
        l_net, ab_net = (torch.as_tensor(a)[None].to(device) for a in _item(dataset, i))
        pred = lookup(l_net)
        distance = torch.sqrt(((net_to_ab(pred) - net_to_ab(ab_net)) ** 2).sum(1)).mean()
        sums["table_delta_e"] += float(distance)
        if loss_fn is not None:
            sums["table_loss"] += float(loss_fn(pred, ab_net))
    if loss_fn is None:
        del sums["table_loss"]
    return {k: v / len(dataset) for k, v in sums.items()}


def describe_validation(metrics: dict) -> str:
    """A short line comparing the model's validation error with the lookup table's.

    ``"val ΔE 3.90 (lookup table 5.10)"``; only the model's figure without a
    table's, ``""`` without either.
    """
    model = metrics.get("val_delta_e")
    table = metrics.get("val_table_delta_e")
    if model is None or not math.isfinite(model):
        return ""
    line = f"val ΔE {model:.2f}"
    if table is not None and math.isfinite(table):
        line += f" (lookup table {table:.2f})"
    return line
