"""Named training recipes: a :class:`TrainConfig` plus the data it trains and validates on.

``alpha``
    The originating project's first version: a tiny network fit to one photo
    (scikit-image's astronaut, ``image=PATH`` or another of
    :data:`ALPHA_SAMPLES`), on random 64x64 patches of it, validated on the
    whole photo. A few minutes on a laptop CPU.
``beta-original``
    The originating project's beta network, loss (MSE) and optimizer (RMSprop,
    constant learning rate) on the CryptoPunks, for comparison.
``beta-punks``
    Our beta (see :mod:`napari_colorize.models.beta`) on the CryptoPunks: the
    bundled ``beta-punks`` model is this preset's output.

Both punks presets fit on the first 8500 punks of the train split and validate
on its last 500 (ids 8500-8999), so nothing is ever tuned on ``punks:test``.
Passing another ``data`` spec trains on all of it, without validation.

Runs on the user's own images (the alpha preset, any preset given a folder or
an image as ``data``) use a model with ``lightness_table=True``: it starts as
the lightness lookup table of its training data and learns a residual on it
(see :mod:`napari_colorize.training.baseline`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PRESETS", "PUNKS_HOLDOUT", "Preset", "get_preset", "list_presets", "preset_run"]

#: scikit-image's colour photos the alpha preset fits by name (``--image coffee``).
ALPHA_SAMPLES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")
#: The last PUNKS_HOLDOUT punks of the train split validate the punks presets.
PUNKS_HOLDOUT = 500
PUNKS_TRAIN = "punks:train"
PUNKS_DATA_NOTE = "cryptopunks train split (9000): ids 0-8499 fit, 8500-8999 validation"


@dataclass(frozen=True)
class Preset:
    """A named recipe: ``config()`` builds its :class:`TrainConfig`, ``data(...)`` its datasets."""

    name: str
    description: str
    config: Callable
    data: Callable
    default_data: str | None = None


class HoldoutSubset:
    """Items ``indices`` of ``dataset``, forwarding ``set_epoch`` (torch's Subset does not)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = list(indices)
        self.spec = getattr(dataset, "spec", None)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[self.indices[i]]


def _punks_data(config, data=None, image=None):
    from ..data import PunksDataset, dataset_from_spec

    if image is not None:
        raise ValueError("--image is for the alpha preset; give --data SPEC for punks presets")
    if data is None or data == PUNKS_TRAIN:
        train = PunksDataset("train", seed=config.seed, flips=config.flips)
        n = len(train)
        val = PunksDataset("train", seed=config.seed, flips=False)
        cut = n - PUNKS_HOLDOUT
        config.data = PUNKS_DATA_NOTE
        return HoldoutSubset(train, range(cut)), HoldoutSubset(val, range(cut, n))
    if not str(data).startswith("punks:"):  # the user's own images
        from .baseline import with_lightness_table

        config.model_config = with_lightness_table(config.arch, config.model_config)
    train = dataset_from_spec(
        data, patch_size=config.patch_size, seed=config.seed, flips=config.flips
    )
    return train, None


def _alpha_data(config, data=None, image=None):
    from ..data import ArrayDataset

    if data is not None and image is not None:
        raise ValueError("give either --image or --data for the alpha preset, not both")
    source = image or data
    if source is None:
        source = "astronaut"
    if str(source) in ALPHA_SAMPLES and not Path(str(source)).exists():
        import skimage.data

        rgb, name = getattr(skimage.data, str(source))(), f"skimage.data.{source}()"
    else:
        from ..data import read_rgb

        path = Path(str(source).removeprefix("folder:")).expanduser()
        if path.is_dir():
            raise ValueError(_alpha_folder_message(path))
        if not path.exists():
            raise FileNotFoundError(
                f"no image file {str(source)!r}; give the path of a colour photo or one of "
                f"scikit-image's samples: {', '.join(ALPHA_SAMPLES)}"
            )
        rgb, name = read_rgb(path), str(source)
    h, w = rgb.shape[:2]
    config.patch_size = patch = _alpha_patch(config.patch_size, h, w)
    config.data = f"one image: {name} ({h}x{w})"
    if config.chroma_size is None:
        config.chroma_size = int(min(max(h, w), 512))
    samples = config.batch_size * 100  # an 'epoch' of 100 steps: validated that often
    train = ArrayDataset(
        rgb, patch_size=patch, flips=config.flips, seed=config.seed, samples_per_epoch=samples
    )
    val = ArrayDataset(rgb, patch_size=None, flips=False, samples_per_epoch=1)
    return train, val


def _alpha_folder_message(path: Path) -> str:
    from ..data.folder import IMAGE_EXTENSIONS, list_images

    if not list_images(path):
        return (
            f"{path} holds no images ({', '.join(IMAGE_EXTENSIONS)}); the alpha preset fits "
            "one colour photo: give its file with --image PATH"
        )
    return (
        f"{path} is a folder, and the alpha preset fits one photo: give one file with "
        f"--image PATH, or train on the folder with --preset beta-punks --data {path}"
    )


def _alpha_patch(asked, h: int, w: int) -> int:
    """The patch size alpha trains at on an ``h`` x ``w`` image; a warning if it is not ``asked``.

    Patches are multiples of 8 (the network halves them three times), at least 8
    and at most the image; a smaller image is used whole.
    """
    import numbers
    import warnings

    if asked is not None and (not isinstance(asked, numbers.Integral) or asked < 1):
        raise ValueError(f"--patch-size must be a positive number of pixels, got {asked!r}")
    wanted = 64 if asked is None else int(asked)
    patch = min(wanted, h, w)
    patch = max(8, patch - patch % 8) if min(h, w) >= 8 else min(h, w)
    if patch != wanted:
        if wanted > min(h, w):
            why = f"is larger than the image ({h}x{w})"
        else:
            why = "is not a multiple of 8" if wanted >= 8 else "is below 8"
        name = f"patch size {wanted}"
        warnings.warn(f"{name} {why}: training on {patch}x{patch} patches", stacklevel=3)
    return patch


def _alpha_config():
    from .trainer import TrainConfig

    return TrainConfig(
        arch="alpha", model_config={"width": 16, "lightness_table": True}, max_steps=1000,
        batch_size=16, lr=3e-3, optimizer="adamw", scheduler="onecycle", loss="l1", patch_size=64,
        checkpoint_every=250, preview_every=100, val_every=100, out="runs/alpha.safetensors",
    )  # fmt: skip


def _beta_original_config():
    from ..models.beta import beta_original_config
    from .trainer import TrainConfig

    return TrainConfig(
        arch="beta", model_config=beta_original_config().to_dict(), epochs=40, batch_size=32,
        lr=1e-3, optimizer="rmsprop", scheduler="constant", loss="mse", chroma_size=24,
        checkpoint_every=500, preview_every=500, val_every=0,
        out="runs/beta-original.safetensors",
    )  # fmt: skip


def _beta_punks_config():
    from .trainer import TrainConfig

    return TrainConfig(
        arch="beta", model_config={}, epochs=40, batch_size=32, lr=3e-3, weight_decay=1e-4,
        optimizer="adamw", scheduler="onecycle", loss="delta_e", chroma_size=24,
        bn_recalibrate=50, checkpoint_every=500, preview_every=500, val_every=0,
        out="runs/beta-punks.safetensors",
    )  # fmt: skip


def _lazy(spec: str) -> Callable:
    """``"module:function"`` of this package, imported when called."""

    def call(*args, **kwargs):
        import importlib

        module, _, attr = spec.partition(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), attr)(*args, **kwargs)

    return call


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("alpha", "tiny net fit to one photo (astronaut, or --image PATH)",
               _alpha_config, _alpha_data, None),
        Preset("beta-original", "the originating project's beta net, MSE, RMSprop, on punks",
               _beta_original_config, _punks_data, PUNKS_TRAIN),
        Preset("beta-punks", "our U-Net beta on punks (the bundled beta-punks model)",
               _beta_punks_config, _punks_data, PUNKS_TRAIN),
        Preset("inception-punks", "Inception v3 classifier of the punk labels from gray",
               _lazy("classification:inception_punks_config"),
               _lazy("classification:punks_labels_data"), PUNKS_TRAIN),
        Preset("full-punks", "beta-punks with the inception-punks class embedding (full)",
               _lazy("fusion:full_punks_config"), _punks_data, PUNKS_TRAIN),
        Preset("beta-punks-hints", "beta-punks taking colour hints, trained with sampled hints",
               _lazy("hints:beta_punks_hints_config"), _punks_data, PUNKS_TRAIN),
        Preset("gan-punks", "U-Net GAN on punks, NoGAN schedule (the bundled gan-punks)",
               _lazy("gan:gan_punks_config"), _punks_data, PUNKS_TRAIN),
    )
}  # fmt: skip


def list_presets() -> list[dict]:
    """Name, description and default data of each preset."""
    return [
        {"name": p.name, "description": p.description, "data": p.default_data}
        for p in PRESETS.values()
    ]


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ValueError listing the known ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def preset_run(name: str, *, data=None, image=None, config=None, **overrides):
    """``(config, train_data, val_data)`` of preset ``name``.

    Parameters
    ----------
    name : str
    data : str, optional
        Another dataset spec to train on (no validation then, except for alpha).
    image : str, optional
        The photo the alpha preset fits.
    config : TrainConfig, optional
        Start from this config instead of the preset's (e.g. a resumed run's).
    **overrides
        :class:`TrainConfig` fields to change (``epochs``, ``max_steps``, ``out``,
        ``device``, ``batch_size``, ``lr``, ...); ``None`` values are ignored.
        Giving ``max_steps`` alone drops the preset's ``epochs`` (and vice versa).
    """
    preset = get_preset(name)
    config = preset.config() if config is None else config
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if "max_steps" in overrides and "epochs" not in overrides:
        overrides["epochs"] = None
    if "epochs" in overrides and "max_steps" not in overrides:
        overrides["max_steps"] = None
    config = dataclasses.replace(config, **overrides)
    train, val = preset.data(config, data=data, image=image)
    return config, train, val
