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
``inception-punks``
    An Inception v3 classifier of the punks' labels from gray (the class
    vector of ``full``).
``full-punks``, ``beta-punks-hints``, ``gan-punks``
    ``beta-punks`` with the ``inception-punks`` class vector fused in, with a
    local hint branch, and the U-Net GAN with its NoGAN schedule.

The punks presets fit on the first 8500 punks of the train split and validate
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

from ..data.punks import PUNKS_HOLDOUT
from ..data.subset import Subset

__all__ = [
    "GAN_PUNKS_GENERATOR",
    "GAN_PUNKS_STEPS",
    "PRESETS",
    "PUNKS_HOLDOUT",
    "Preset",
    "get_preset",
    "list_presets",
    "preset_run",
]

#: scikit-image's colour photos the alpha preset fits by name (``--image coffee``).
ALPHA_SAMPLES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")
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


def _punks_data(config, data=None, image=None):
    from ..data import PunksDataset, dataset_from_spec, parse_data_spec

    if image is not None:
        raise ValueError("--image is for the alpha preset; give --data SPEC for punks presets")
    if data is None or data == PUNKS_TRAIN:
        train = PunksDataset("train", seed=config.seed, flips=config.flips)
        n = len(train)
        val = PunksDataset("train", seed=config.seed, flips=False)
        cut = n - PUNKS_HOLDOUT
        config.data = PUNKS_DATA_NOTE
        return Subset(train, range(cut)), Subset(val, range(cut, n))
    if parse_data_spec(data).kind != "punks":  # the user's own images
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
        from ..data.spec import DataNotFoundError, parse_data_spec
        from ..image_files import read_rgb

        try:
            spec = parse_data_spec(source)
        except DataNotFoundError:
            raise FileNotFoundError(
                f"no image file {str(source)!r}; give the path of a colour photo or one of "
                f"scikit-image's samples: {', '.join(ALPHA_SAMPLES)}"
            ) from None
        if spec.kind == "folder":
            raise ValueError(_alpha_folder_message(spec.path))
        if spec.kind == "punks":
            raise ValueError(
                f"the alpha preset fits one photo, not {spec.text}: give --image PATH, or "
                f"train on the punks with --preset beta-punks"
            )
        rgb, name = read_rgb(spec.path), str(source)
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
    from ..image_files import READ_SUFFIXES, list_images

    if not list_images(path):
        return (
            f"{path} holds no images ({', '.join(READ_SUFFIXES)}); the alpha preset fits "
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
    from .config import TrainConfig

    return TrainConfig(
        arch="alpha", model_config={"width": 16, "lightness_table": True}, max_steps=1000,
        batch_size=16, lr=3e-3, optimizer="adamw", scheduler="onecycle", loss="l1", patch_size=64,
        checkpoint_every=250, preview_every=100, val_every=100, out="runs/alpha.safetensors",
    )  # fmt: skip


def _beta_original_config():
    from ..models.beta import beta_original_config
    from .config import TrainConfig

    return TrainConfig(
        arch="beta", model_config=beta_original_config().to_dict(), epochs=40, batch_size=32,
        lr=1e-3, optimizer="rmsprop", scheduler="constant", loss="mse", chroma_size=24,
        checkpoint_every=500, preview_every=500, val_every=0,
        out="runs/beta-original.safetensors",
    )  # fmt: skip


def _beta_punks_config():
    from .config import TrainConfig

    return TrainConfig(
        arch="beta", model_config={}, epochs=40, batch_size=32, lr=3e-3, weight_decay=1e-4,
        optimizer="adamw", scheduler="onecycle", loss="delta_e", chroma_size=24,
        bn_recalibrate=50, checkpoint_every=500, preview_every=500, val_every=0,
        out="runs/beta-punks.safetensors",
    )  # fmt: skip


def _inception_punks_config():
    """The :class:`~.trainer.TrainConfig` of the ``inception-punks`` preset.

    A quarter-width Inception v3 from scratch on gray punks enlarged to 99x99:
    6 epochs of 8,500 punks (with flips), batch 64, AdamW with a one-cycle
    schedule, the accessories' binary cross-entropy summed over the 87 labels.
    ``task_config["class_weights"] = "sqrt-balanced"`` weights the types'
    cross-entropy by ``1 / sqrt(frequency)`` (from the training data, see
    :func:`_punks_labels_data`) for the 9 aliens, 22 apes and 80 zombies among the
    8,500 punks; it raised the balanced type accuracy on the validation punks
    (0.66 -> 0.71) but lowered the accessories' mAP (0.58 -> 0.53), so the preset
    leaves it off.
    """
    from ..models.full import PUNKS_CLASSIFIER
    from .classification import TASK
    from .config import TrainConfig

    return TrainConfig(
        arch="inception", model_config=dict(PUNKS_CLASSIFIER), epochs=6, batch_size=64,
        lr=2e-3, weight_decay=1e-4, optimizer="adamw", scheduler="onecycle",
        checkpoint_every=500, preview_every=0, val_every=0, task=TASK,
        task_config={"sigmoid_reduction": "sum"},
        out="runs/inception-punks.safetensors",
    )  # fmt: skip


def _punks_labels_data(config, data=None, image=None):
    """The ``inception-punks`` data: train punks 0-8499 (flipped), 8500-8999 validate."""
    from ..data.labels import PunksLabelsDataset
    from ..data.punks import load_punks
    from .classification import sqrt_balanced_weights

    if image is not None or (data is not None and data != PUNKS_TRAIN):
        raise ValueError(
            "the inception-punks preset trains on the CryptoPunks labels only; leave out "
            "--data/--image (other labelled data: build a dataset yielding (l_net, targets))"
        )
    punks = load_punks("train")
    cut = len(punks) - PUNKS_HOLDOUT
    train = PunksLabelsDataset(
        "train", range(cut), flips=getattr(config, "flips", True), seed=config.seed, punks=punks
    )
    val = PunksLabelsDataset("train", range(cut, len(punks)), flips=False, punks=punks)
    config.data = PUNKS_DATA_NOTE + " (labels)"
    options = dict(config.task_config or {})
    if options.get("class_weights") in ("sqrt-balanced", "balanced"):
        power = 0.5 if options["class_weights"] == "sqrt-balanced" else 1.0
        options["class_weights"] = {"type": sqrt_balanced_weights(train.targets[:, :5], power)}
        config.task_config = options
    return train, val


def _full_punks_config():
    """The ``full-punks`` preset: ``beta-punks`` fine-tuned with the class vector fused in.

    A residual full model (:class:`~napari_colorize.models.full.FusionConfig`
    ``residual=True``) starts from the bundled ``beta-punks`` weights, so it
    starts out colouring exactly as ``beta-punks``; 10 epochs at a third of
    ``beta-punks``' learning rate (same data, loss, batch and one-cycle
    schedule) then teach it what the frozen ``inception-punks``
    probabilities add.
    """
    from .fusion import TASK

    base = _beta_punks_config()
    return dataclasses.replace(
        base, arch="full", model_config={"residual": True}, task=TASK, epochs=10,
        lr=base.lr / 3, task_config={"prior": "beta-punks"}, out="runs/full-punks.safetensors",
    )  # fmt: skip


def _beta_punks_hints_config():
    """The ``beta-punks-hints`` preset: ``beta-punks`` plus a local hint branch.

    The bundled ``beta-punks`` is the frozen prior (so with no hints the model
    colours exactly as ``beta-punks``); only the small
    :class:`~napari_colorize.models.beta.LocalHints` branch trains, 10 epochs
    of the punks train split with hints sampled from the truth (each one
    pixel's exact colour, as a user picks it on pixel art, whose colours change
    from one pixel to the next; half of them where the prior is wrong) and 30%
    of the images given a recoloured region to follow. The loss is the squared
    ab error, so that the few pixels a hint should fix outweigh the many the
    prior already gets right.
    """
    from ..hint_sampling import DEFAULT_HINT_P
    from .hints import TASK

    base = _beta_punks_config()
    return dataclasses.replace(
        base, model_config={"in_channels": 4, "local_hints": True}, epochs=10, task=TASK,
        bn_recalibrate=0,  # the prior keeps its own statistics
        loss="mse",  # large errors (a hint the prior misses) dominate, not the many right pixels
        task_config={
            "hint_p": DEFAULT_HINT_P, "hint_radius": [0, 0], "recolor": 0.3, "focus": 0.5,
            "prior": "beta-punks", "freeze_prior": True,
        },
        out="runs/beta-punks-hints.safetensors",
    )  # fmt: skip


#: The ``gan-punks`` schedule, in steps of 32 punks (8500 punks: 265 steps an epoch).
GAN_PUNKS_STEPS = {"pretrain_g_steps": 10600, "pretrain_d_steps": 400, "adversarial": 1500}
#: How the ``gan-punks`` generator differs from ``punks_config()``.
GAN_PUNKS_GENERATOR = {
    "spectral_norm": False, "attention": (), "widths": (48, 96, 192), "stem": 24,
}  # fmt: skip


def _gan_punks_config():
    """The ``gan-punks`` preset's :class:`~.trainer.TrainConfig` (the bundled ``gan-punks``).

    The generator of :func:`~napari_colorize.models.gan.punks_config` without
    spectral norm and self-attention and 1.5 times as wide (levels of 48, 96
    and 192 channels, a 24-channel stem; 1.09 M parameters:
    :data:`GAN_PUNKS_GENERATOR`), 3 spectrally normalised PatchGANs (width 32,
    2 strided layers) at 24, 12 and 6 pixels. 10600 steps (40 epochs) of
    generator pretraining (AdamW, one-cycle, peak learning rate 3e-3 as for
    ``beta-punks``), precise-BN recalibration of the generator over 50
    batches, 400 steps of discriminator pretraining, 1500 adversarial (LSGAN +
    feature matching + reconstruction) with the generator's BatchNorm
    statistics frozen (``generator_bn="frozen"``). The reconstruction loss is
    ``delta_e`` (the Euclidean ab distance, the loss of ``beta-punks`` and the
    quantity the evaluation's CIEDE2000 approximates) rather than pix2pix's
    per-channel L1, weighted 100 as pix2pix weights its L1. In channels_last
    (the CPU default).

    Frozen statistics decide the result (docs/benchmarks.md): the pretrained
    generator depends on the statistics of its batch, and with its stored
    ones it turns a few dozen punks into noise (seed 0: punks:test
    ``ciede2000_fg`` 1.76 in eval mode, 1.29 with batch statistics); training
    on in the adversarial phase with batch statistics kept it so (1.92), the
    frozen adversarial phase trains the deployed network and repairs them
    (1.17; seed 1: 1.19, beta-punks 1.36).
    """
    from ..models.gan import punks_config
    from .config import TrainConfig

    steps = GAN_PUNKS_STEPS
    return TrainConfig(
        arch="gan", model_config=punks_config(**GAN_PUNKS_GENERATOR).to_dict(), task="gan",
        max_steps=steps["pretrain_g_steps"] + steps["pretrain_d_steps"] + steps["adversarial"],
        batch_size=32, lr=3e-3, weight_decay=1e-4, optimizer="adamw", scheduler="onecycle",
        loss="delta_e", chroma_size=24, checkpoint_every=500, preview_every=500, val_every=0,
        bn_recalibrate=50, out="runs/gan-punks.safetensors",
        task_config={
            "gan_loss": "lsgan", "l1_weight": 100.0, "fm_weight": 10.0, "adv_weight": 1.0,
            "pretrain_g_steps": steps["pretrain_g_steps"],
            "pretrain_d_steps": steps["pretrain_d_steps"],
            "lr_d": 4e-4, "adv_lr_g": 1e-4, "betas": [0.5, 0.999], "generator_bn": "frozen",
            "discriminator": {"width": 32, "n_layers": 2, "num_scales": 3},
        },
    )  # fmt: skip


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
               _inception_punks_config, _punks_labels_data, PUNKS_TRAIN),
        Preset("full-punks", "beta-punks with the inception-punks class embedding (full)",
               _full_punks_config, _punks_data, PUNKS_TRAIN),
        Preset("beta-punks-hints", "beta-punks taking colour hints, trained with sampled hints",
               _beta_punks_hints_config, _punks_data, PUNKS_TRAIN),
        Preset("gan-punks", "U-Net GAN on punks, NoGAN schedule (the bundled gan-punks)",
               _gan_punks_config, _punks_data, PUNKS_TRAIN),
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
