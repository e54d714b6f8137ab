"""Training data from image layers, as plain arrays: what a viewer holds, made trainable.

Nothing here imports napari or Qt: the training widget hands over each selected
layer as a :class:`LayerArray` (name, data, whether it is RGB, its contrast
limits) and gets back datasets the :class:`~napari_colorize.training.Trainer`
takes.

What is learned from what
-------------------------
- An **RGB layer** (one image ``(H, W, 3)`` or a stack ``(..., H, W, 3)``; RGBA
  drops its alpha) is both input and target: the network sees its CIE L and
  learns its ab.
- A **grayscale layer paired with an RGB layer** of the same shape: the input L
  comes from the grayscale layer (its values mapped to [0, 100] through its
  contrast limits, as the Colorize widget does, so what is shown is what is
  learned), the target ab from the RGB layer's Lab. The RGB layer's own L is not
  used. A grayscale layer is paired with the selected RGB layer of exactly its
  shape; when several qualify, with the one whose name shares the longest
  start with its name (``"astronaut"`` with ``"astronaut truth"``).
- **Several layers** at once: all their planes are used; planes may differ in size.
- A folder on disk or the CryptoPunks: :func:`spec_datasets` (through
  :func:`~napari_colorize.data.dataset_from_spec`).

Train/validation split (:func:`split_regions`)
-----------------------------------------------
``"planes"`` holds out whole planes (evenly spaced over all planes);
``"regions"`` holds out a strip of every plane: the right-most columns (or the
bottom rows of a plane taller than wide), ``val_fraction`` of it but at least
one patch, so that training and validation pixels never overlap; ``"auto"`` is
``"planes"`` with at least two planes, else ``"regions"``; ``"none"`` has no
validation.

Training items are random ``patch_size`` crops (with left-right flips) of the
training regions, depending only on ``(seed, epoch, index)``; an epoch has about
one patch per ``patch_size**2`` pixels of each region, so it shows every pixel
about once. Validation items are the non-overlapping ``patch_size`` tiles of the
held-out regions (at most :data:`MAX_VAL_TILES`, evenly chosen), without flips.
Pixels are converted to Lab when an item is read, so nothing is copied up front
and dask or zarr layers stay lazy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..images import describe, intensity_range, plane_to_lightness
from .subset import Subset
from .transforms import RandomCropFlip, as_patch_size, check_rgb, crop_box, item_rng, rgb_to_net

__all__ = [
    "MAX_VAL_TILES",
    "SPLITS",
    "LayerArray",
    "LayerSource",
    "Region",
    "RegionDataset",
    "TrainingData",
    "layer_datasets",
    "pair_layers",
    "spec_datasets",
    "split_regions",
]

#: The train/validation split modes.
SPLITS = ("auto", "planes", "regions", "none")
#: At most this many validation tiles (evenly chosen over all of them).
MAX_VAL_TILES = 256
#: Longest side of the preview image (a larger held-out plane is centre-cropped).
MAX_PREVIEW = 512


@dataclass(frozen=True)
class LayerArray:
    """One selected layer: its name, data, whether it is RGB(A), and its display range.

    ``value_range`` (a grayscale layer's contrast limits) maps its values to
    black and white; ``None`` uses :func:`~napari_colorize.images.intensity_range`.
    """

    name: str
    data: Any
    rgb: bool
    value_range: tuple[float, float] | None = None


@dataclass(frozen=True)
class LayerSource:
    """One training source: a colour target and, optionally, a separate grayscale input.

    Attributes
    ----------
    name : str
        Shown in messages and stored as the model's training data.
    rgb : array-like
        The colour target, ``(..., H, W, 3|4)``.
    gray : array-like, optional
        The input, ``(..., H, W)``, the same shape as ``rgb`` without its colour axis.
    gray_range : (float, float)
        The gray values mapped to black and white (set for a ``gray``).
    """

    name: str
    rgb: Any
    gray: Any = None
    gray_range: tuple[float, float] | None = None
    gray_name: str | None = None
    leading_shape: tuple[int, ...] = field(init=False, default=())
    spatial_shape: tuple[int, int] = field(init=False, default=(0, 0))

    def __post_init__(self):
        try:
            layout = describe(self.rgb, rgb=True)
        except ValueError as exc:
            raise ValueError(f"layer {self.name!r}: {exc}") from None
        _check_colour_dtype(layout.dtype, self.name)
        object.__setattr__(self, "leading_shape", layout.leading_shape)
        object.__setattr__(self, "spatial_shape", layout.spatial_shape)
        if self.gray is None:
            return
        gray_name = self.gray_name or self.name
        try:
            gray_layout = describe(self.gray, rgb=False)
        except ValueError as exc:
            raise ValueError(f"layer {gray_name!r}: {exc}") from None
        if gray_layout.lightness_shape != layout.lightness_shape:
            raise ValueError(
                f"the grayscale layer {gray_name!r} (shape {gray_layout.shape}) and its colour "
                f"target {self.name!r} (shape {layout.shape}) differ in shape: "
                f"{gray_layout.lightness_shape} vs {layout.lightness_shape} without the colour "
                "axis; a pair needs the same planes and pixels (resize or crop one of them)"
            )
        value_range = self.gray_range
        if value_range is None:
            value_range = intensity_range(self.gray, gray_layout)
        object.__setattr__(self, "gray_range", tuple(float(v) for v in value_range))

    @property
    def n_planes(self) -> int:
        return math.prod(self.leading_shape)

    def plane_index(self, flat: int) -> tuple[int, ...]:
        """The stack index of plane number ``flat`` (``()`` for a single image)."""
        return tuple(int(i) for i in np.unravel_index(flat, self.leading_shape))

    def describe(self) -> str:
        shape = "x".join(str(n) for n in (*self.leading_shape, *self.spatial_shape))
        if self.gray is None:
            return f"{self.name} ({shape}, RGB)"
        return f"{self.gray_name} -> {self.name} ({shape}, gray input, RGB target)"

    def read(self, plane: int, y: int, x: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """``(l_net (1,h,w), ab_net (2,h,w))`` float32 of a window of plane ``plane``."""
        index = self.plane_index(plane)
        window = (slice(y, y + h), slice(x, x + w))
        rgb = np.asarray(self.rgb[(*index, *window)])[..., :3]
        rgb = check_rgb(np.ascontiguousarray(rgb), f"layer {self.name!r}")
        l_net, ab_net = rgb_to_net(rgb)
        if self.gray is not None:
            from ..color import l_to_net

            gray = np.asarray(self.gray[(*index, *window)])
            lightness = plane_to_lightness(gray, describe(gray, rgb=False), self.gray_range)
            l_net = l_to_net(lightness)[None].astype(np.float32, copy=False)
        return l_net, ab_net


def _check_colour_dtype(dtype: np.dtype, name: str) -> None:
    if dtype not in (np.uint8, np.uint16) and dtype.kind != "f":
        raise ValueError(
            f"layer {name!r} is an RGB layer of dtype {dtype}; colour targets must be uint8, "
            "uint16 or float in [0, 1] (convert it, e.g. with skimage.util.img_as_ubyte)"
        )


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def pair_layers(layers: Sequence[LayerArray]) -> list[LayerSource]:
    """Turn the selected layers into training sources.

    Every RGB layer is a source; every grayscale layer becomes the input of the
    RGB layer with exactly its shape (see the module notes for ties).

    Raises
    ------
    ValueError
        An empty selection, a grayscale layer without an RGB layer of its shape,
        two grayscale layers for one RGB layer, too small or non-numeric layers.
    """
    layers = list(layers)
    if not layers:
        raise ValueError(
            "no layers are selected; select an RGB layer (its L is the input and its "
            "colours the target), or a grayscale layer together with an RGB layer of the "
            "same shape"
        )
    colour = [layer for layer in layers if layer.rgb]
    gray = [layer for layer in layers if not layer.rgb]
    if not colour:
        names = ", ".join(repr(layer.name) for layer in gray)
        raise ValueError(
            f"only grayscale layers are selected ({names}): a grayscale layer has no colour "
            "to learn from; also select an RGB layer of the same shape as its colour target"
        )

    def lightness_shape(layer: LayerArray) -> tuple[int, ...]:
        try:
            return describe(layer.data, rgb=layer.rgb).lightness_shape
        except ValueError as exc:
            raise ValueError(f"layer {layer.name!r}: {exc}") from None

    colour_shapes = [lightness_shape(layer) for layer in colour]
    partner: dict[int, LayerArray] = {}
    for g in gray:
        shape = lightness_shape(g)
        candidates = [i for i, s in enumerate(colour_shapes) if s == shape]
        free = [i for i in candidates if i not in partner]
        if not free:
            if candidates:
                taken = colour[candidates[0]].name
                raise ValueError(
                    f"the grayscale layer {g.name!r} has no colour target of its own: the RGB "
                    f"layer of its shape, {taken!r}, is already paired with "
                    f"{partner[candidates[0]].name!r}; select one grayscale layer per RGB layer"
                )
            others = ", ".join(f"{layer.name!r} {s}" for layer, s in zip(colour, colour_shapes))
            raise ValueError(
                f"the grayscale layer {g.name!r} (shape {shape}) has no colour target: no "
                f"selected RGB layer has its shape (selected: {others}); select the RGB layer "
                "of the same planes and pixels, or leave the grayscale layer out"
            )
        best = max(free, key=lambda i: (_common_prefix(g.name, colour[i].name), -i))
        partner[best] = g
    sources = []
    for i, layer in enumerate(colour):
        g = partner.get(i)
        if g is None:
            sources.append(LayerSource(layer.name, layer.data))
        else:
            sources.append(
                LayerSource(layer.name, layer.data, g.data, g.value_range, gray_name=g.name)
            )
    return sources


@dataclass(frozen=True)
class Region:
    """A window ``[y, y+h) x [x, x+w)`` of plane ``plane`` of source ``source``."""

    source: int
    plane: int
    y: int
    x: int
    h: int
    w: int

    @property
    def area(self) -> int:
        return self.h * self.w


def _strip(h: int, w: int, fraction: float, patch: tuple[int, int]) -> tuple[Region, Region]:
    """Train and validation windows of one ``h x w`` plane (source/plane filled in later)."""
    if w >= h:  # hold out the right-most columns
        size = max(patch[1], round(w * fraction))
        return Region(0, 0, 0, 0, h, w - size), Region(0, 0, 0, w - size, h, size)
    size = max(patch[0], round(h * fraction))
    return Region(0, 0, 0, 0, h - size, w), Region(0, 0, h - size, 0, size, w)


def split_regions(
    sources: Sequence[LayerSource],
    patch_size,
    *,
    split: str = "auto",
    val_fraction: float = 0.2,
) -> tuple[list[Region], list[Region]]:
    """Training and validation regions of ``sources``; no pixel is in both.

    Parameters
    ----------
    sources : sequence of LayerSource
    patch_size : int or (int, int)
        Every training and validation region must hold at least one patch.
    split : {"auto", "planes", "regions", "none"}
        See the module notes.
    val_fraction : float
        Share of the planes (``"planes"``) or of each plane's width or height
        (``"regions"``) held out, in (0, 1); at least one plane or one patch.

    Raises
    ------
    ValueError
        Unknown split; a fraction outside (0, 1); a patch larger than an image or
        than what is left of it after holding out a strip; ``"planes"`` with a
        single plane.
    """
    patch = as_patch_size(patch_size)
    if patch is None:
        raise ValueError("patch_size is required to train on layers; e.g. 64")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    sources = list(sources)
    if not sources:
        raise ValueError("no training data: select at least one RGB layer")
    if split != "none" and not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    for s in sources:
        h, w = s.spatial_shape
        if h < patch[0] or w < patch[1]:
            raise ValueError(
                f"the patch size {patch[0]}x{patch[1]} is larger than layer {s.name!r} "
                f"({h}x{w} pixels); choose a patch size of at most {min(h, w)}"
            )
    planes = [(k, p) for k, s in enumerate(sources) for p in range(s.n_planes)]
    if split == "auto":
        split = "planes" if len(planes) >= 2 else "regions"

    def whole(k: int, p: int) -> Region:
        h, w = sources[k].spatial_shape
        return Region(k, p, 0, 0, h, w)

    if split == "none":
        return [whole(k, p) for k, p in planes], []
    if split == "planes":
        if len(planes) < 2:
            raise ValueError(
                f"cannot hold out planes: {sources[0].name!r} is a single image; use the "
                "'regions' split (a held-out strip of the image) or select more planes"
            )
        n_val = min(max(1, round(len(planes) * float(val_fraction))), len(planes) - 1)
        # evenly spaced, so that a drifting stack (time, depth) is validated all along
        chosen = set(np.linspace(0, len(planes) - 1, n_val + 2)[1:-1].round().astype(int))
        if len(chosen) < n_val:  # tiny stacks: fall back to the last planes
            chosen = set(range(len(planes) - n_val, len(planes)))
        train = [whole(k, p) for i, (k, p) in enumerate(planes) if i not in chosen]
        val = [whole(k, p) for i, (k, p) in enumerate(planes) if i in chosen]
        return train, val
    train, val = [], []
    for k, p in planes:
        h, w = sources[k].spatial_shape
        t, v = _strip(h, w, float(val_fraction), patch)
        if t.h < patch[0] or t.w < patch[1]:
            axis = "wide" if w >= h else "high"
            raise ValueError(
                f"layer {sources[k].name!r} ({h}x{w} pixels) is too small to hold out a "
                f"validation strip and still train on {patch[0]}x{patch[1]} patches: it must "
                f"be at least {2 * (patch[1] if w >= h else patch[0])} pixels {axis}; use a "
                "smaller patch size, the 'planes' split, or no validation"
            )
        train.append(Region(k, p, t.y, t.x, t.h, t.w))
        val.append(Region(k, p, v.y, v.x, v.h, v.w))
    return train, val


def _tiles(region: Region, patch: tuple[int, int]) -> list[Region]:
    ph, pw = patch
    return [
        Region(region.source, region.plane, region.y + i * ph, region.x + j * pw, ph, pw)
        for i in range(region.h // ph)
        for j in range(region.w // pw)
    ]


class RegionDataset:
    """Patches of regions of layer sources, as ``(l_net (1,h,w), ab_net (2,h,w))`` tensors.

    Parameters
    ----------
    sources : sequence of LayerSource
    regions : sequence of Region
    patch_size : int or (int, int)
    train : bool
        Random crops and flips (an epoch has ``sum(ceil(area / patch_area))``
        items); otherwise the fixed non-overlapping tiles of the regions.
    seed : int
    max_tiles : int
        Validation only: keep at most this many tiles, evenly chosen.
    """

    def __init__(
        self,
        sources,
        regions,
        patch_size,
        *,
        train: bool = True,
        seed: int = 0,
        max_tiles: int = MAX_VAL_TILES,
    ):
        self.sources = list(sources)
        self.regions = list(regions)
        self.patch_size = as_patch_size(patch_size)
        self.train = bool(train)
        self.seed = int(seed)
        self.epoch = 0
        self.spec = "layers: " + ", ".join(s.describe() for s in self.sources)
        if not self.regions:
            raise ValueError("no regions to take patches from")
        ph, pw = self.patch_size
        if self.train:
            counts = [max(1, math.ceil(r.area / (ph * pw))) for r in self.regions]
            self._region_of = np.repeat(np.arange(len(self.regions)), counts)
            self._transform = RandomCropFlip(self.patch_size, flips=True)
            self._tiles: list[Region] = []
        else:
            tiles = [t for r in self.regions for t in _tiles(r, self.patch_size)]
            if len(tiles) > max_tiles:
                keep = np.linspace(0, len(tiles) - 1, max_tiles).round().astype(int)
                tiles = [tiles[i] for i in keep]
            self._tiles = tiles

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random crops the training items use."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self._region_of) if self.train else len(self._tiles)

    def __getitem__(self, index):
        import torch

        n = len(self)
        index = int(index)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} items")
        index %= n
        if self.train:
            region = self.regions[self._region_of[index]]
            rng = item_rng(self.seed, self.epoch, index)
            y, x, h, w = crop_box(rng, (region.h, region.w), self.patch_size)
            flip = bool(rng.random() < 0.5)
            l_net, ab_net = self.sources[region.source].read(
                region.plane, region.y + y, region.x + x, h, w
            )
            if flip:
                l_net, ab_net = l_net[..., ::-1], ab_net[..., ::-1]
        else:
            t = self._tiles[index]
            l_net, ab_net = self.sources[t.source].read(t.plane, t.y, t.x, t.h, t.w)
        return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in (l_net, ab_net))


@dataclass
class TrainingData:
    """What a training run from the viewer uses.

    Attributes
    ----------
    train, val : dataset
        ``val`` is None without validation.
    preview_l : numpy.ndarray or None
        ``l_net`` ``(1, 1, H, W)`` float32 of the image whose colorization is previewed.
    preview_offset : (int, int)
        Where ``preview_l`` starts in its plane (y, x), to place the preview layer.
    preview_plane : tuple of int
        The stack index of that plane in its layer.
    preview_source : str or None
        The name of that layer.
    description : str
        What is trained on (stored in the checkpoint's metadata).
    """

    train: Any
    val: Any = None
    preview_l: np.ndarray | None = None
    preview_offset: tuple[int, int] = (0, 0)
    preview_plane: tuple[int, ...] = ()
    preview_source: str | None = None
    description: str = ""
    sources: list = field(default_factory=list)
    val_regions: list = field(default_factory=list)


def _preview_window(region: Region, limit: int = MAX_PREVIEW) -> Region:
    h, w = min(region.h, limit), min(region.w, limit)
    y = region.y + (region.h - h) // 2
    x = region.x + (region.w - w) // 2
    return Region(region.source, region.plane, y, x, h, w)


def layer_datasets(
    layers: Sequence[LayerArray] | Sequence[LayerSource],
    patch_size,
    *,
    split: str = "auto",
    val_fraction: float = 0.2,
    seed: int = 0,
    preview_index: int = 0,
) -> TrainingData:
    """Training and validation datasets (and the preview image) from selected layers.

    Parameters
    ----------
    layers : sequence of LayerArray (paired by :func:`pair_layers`) or of LayerSource
    patch_size : int or (int, int)
    split, val_fraction
        See :func:`split_regions`.
    seed : int
        Seed of the random crops and flips.
    preview_index : int
        Which held-out region (a plane, or a plane's strip) to preview; the first
        training region when there is no validation.

    Returns
    -------
    TrainingData

    Raises
    ------
    ValueError
        Any problem with the selection (see :func:`pair_layers`, :func:`split_regions`).
        Only shapes and dtypes are checked here; pixel values are read by the datasets.
    """
    layers = list(layers)
    if layers and all(isinstance(layer, LayerSource) for layer in layers):
        sources = layers
    else:
        sources = pair_layers(layers)
    train_regions, val_regions = split_regions(
        sources, patch_size, split=split, val_fraction=val_fraction
    )
    train = RegionDataset(sources, train_regions, patch_size, train=True, seed=seed)
    val = None
    if val_regions:
        val = RegionDataset(sources, val_regions, patch_size, train=False, seed=seed)
    shown = val_regions or train_regions
    if not 0 <= int(preview_index) < len(shown):
        raise ValueError(
            f"preview_index {preview_index} is out of range: there are {len(shown)} "
            f"{'validation' if val_regions else 'training'} images (0..{len(shown) - 1})"
        )
    window = _preview_window(shown[int(preview_index)])
    source = sources[window.source]
    preview_l, _ = source.read(window.plane, window.y, window.x, window.h, window.w)
    return TrainingData(
        train=train,
        val=val,
        preview_l=preview_l[None],
        preview_offset=(window.y, window.x),
        preview_plane=source.plane_index(window.plane),
        preview_source=source.name,
        description=train.spec,
        sources=sources,
        val_regions=val_regions,
    )


def spec_datasets(
    spec: str,
    patch_size=None,
    *,
    val_fraction: float = 0.1,
    max_val: int = 500,
    seed: int = 0,
) -> TrainingData:
    """Datasets from a folder, an image file or the CryptoPunks, with a held-out part.

    Parameters
    ----------
    spec : str
        ``"punks:train"``, ``"folder:PATH"``, a folder or an image path (see
        :func:`~napari_colorize.data.dataset_from_spec`).
    patch_size : int, optional
        Random crop size (required for folders of images of different sizes).
    val_fraction : float
        Share of the items held out for validation (0 for none); the last items,
        at most ``max_val`` of them. A single image file is split by a strip as
        in :func:`split_regions` instead.
    seed : int

    Raises
    ------
    ValueError, FileNotFoundError
        A bad spec, or too few items to hold some out.
    """
    from ..image_files import read_rgb
    from . import dataset_from_spec
    from .spec import parse_data_spec

    parsed = parse_data_spec(spec)
    text = parsed.text
    if parsed.kind == "file":
        rgb = read_rgb(parsed.path)
        source = LayerSource(parsed.path.name, rgb)
        split = "regions" if val_fraction > 0 else "none"
        data = layer_datasets(
            [source], patch_size or min(64, *rgb.shape[:2]), split=split,
            val_fraction=val_fraction or 0.2, seed=seed,
        )  # fmt: skip
        data.description = text
        return data
    train_all = dataset_from_spec(text, patch_size=patch_size, seed=seed, flips=True)
    n = len(train_all)
    n_val = min(round(n * val_fraction), int(max_val)) if val_fraction > 0 else 0
    if val_fraction > 0 and n_val < 1:
        n_val = 1
    if n_val >= n:
        raise ValueError(
            f"{text!r} holds {n} item(s): too few to hold out {val_fraction:.0%} for "
            "validation; add images or set the validation fraction to 0"
        )
    if n_val == 0:
        train, val = train_all, None
    else:
        val_all = dataset_from_spec(text, patch_size=patch_size, seed=seed, flips=False)
        train = Subset(train_all, range(n - n_val))
        val = Subset(val_all, range(n - n_val, n))
    shown = val if val is not None else train
    preview_l = np.asarray(shown[0][0])[None]
    return TrainingData(
        train=train,
        val=val,
        preview_l=preview_l,
        description=text if n_val == 0 else f"{text} ({n - n_val} train, {n_val} validation)",
    )
