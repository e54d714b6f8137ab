"""Training data from layer arrays: pairing, splits, items, previews and bad selections."""

import numpy as np
import pytest

pytest.importorskip("torch")

from napari_colorize.color import ab_to_net, l_to_net, rgb_to_lab
from napari_colorize.data.layer_datasets import (
    LayerArray,
    LayerSource,
    layer_datasets,
    pair_layers,
    spec_datasets,
    split_regions,
)
from napari_colorize.sample_data import rgb_to_gray

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _rgb(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def test_rgb_layer_is_its_own_input_and_target():
    rgb = _rgb((32, 48))
    data = layer_datasets([LayerArray("photo", rgb, True)], 16, split="none")
    assert data.val is None
    assert len(data.train) == 6  # one patch per 16x16 of the image
    l_net, ab_net = data.train[0]
    assert l_net.shape == (1, 16, 16)
    assert ab_net.shape == (2, 16, 16)
    # the whole-image preview of a split-free run is the image's own L
    lab = rgb_to_lab(rgb)
    np.testing.assert_allclose(data.preview_l[0, 0], l_to_net(lab[..., 0]), atol=1e-5)


def test_gray_input_with_rgb_target():
    rgb = _rgb((3, 24, 24))
    gray = rgb_to_gray(rgb)
    sources = pair_layers(
        [
            LayerArray("scan truth", rgb, True),
            LayerArray("other", _rgb((24, 24), 1), True),
            LayerArray("scan", gray, False, (0, 255)),
        ]
    )
    paired = next(s for s in sources if s.gray is not None)
    assert paired.name == "scan truth"
    assert paired.gray_name == "scan"
    l_net, ab_net = paired.read(1, 0, 0, 24, 24)
    lab = rgb_to_lab(rgb[1])
    np.testing.assert_allclose(ab_net, np.moveaxis(ab_to_net(lab[..., 1:]), -1, 0), atol=1e-5)
    # L comes from the gray layer (here equal to the colour's L up to 8-bit rounding)
    np.testing.assert_allclose(l_net[0], l_to_net(lab[..., 0]), atol=0.02)
    # a gray layer's contrast limits set its black and white
    dim = LayerSource("t", rgb, gray // 2, gray_range=(0, 127.5))
    np.testing.assert_allclose(dim.read(1, 0, 0, 24, 24)[0], l_net, atol=0.03)


def test_region_split_of_one_image_does_not_overlap():
    train, val = split_regions([LayerSource("wide", _rgb((40, 100)))], 16, val_fraction=0.2)
    assert len(train) == len(val) == 1
    (t,), (v,) = train, val
    assert t.x + t.w == v.x
    assert v.x + v.w == 100
    assert v.w == 20
    assert t.h == v.h == 40
    train, val = split_regions([LayerSource("tall", _rgb((100, 30)))], 16, split="regions")
    (t,), (v,) = train, val
    assert t.y + t.h == v.y
    assert v.y + v.h == 100
    assert v.h == 20
    data = layer_datasets([LayerSource("wide", _rgb((40, 100)))], 16)
    assert data.preview_offset == (0, 80)
    assert data.preview_l.shape == (1, 1, 40, 20)
    assert len(data.val) == 2  # 16x16 tiles of the 40x20 strip
    # training crops stay left of the strip: same pixels as a crop of the training region
    for i in range(len(data.train)):
        l_net, _ = data.train[i]
        assert l_net.shape == (1, 16, 16)


def test_plane_split_of_a_stack_and_of_several_layers():
    stack = _rgb((5, 16, 16))
    train, val = split_regions([LayerSource("s", stack)], 8, split="planes", val_fraction=0.2)
    assert len(val) == 1
    assert len(train) == 4
    assert {r.plane for r in train}.isdisjoint({r.plane for r in val})
    sources = [LayerSource("a", _rgb((2, 16, 16))), LayerSource("b", _rgb((24, 40)))]
    data = layer_datasets(sources, 8, val_fraction=0.34)
    assert len(data.train.regions) + len(data.val.regions) == 3
    l_net, _ab_net = data.val[0]
    assert l_net.shape == (1, 8, 8)


def test_items_are_reproducible_and_change_with_the_epoch():
    data = layer_datasets([LayerSource("s", _rgb((2, 32, 32)))], 8, split="none", seed=4)
    again = layer_datasets([LayerSource("s", _rgb((2, 32, 32)))], 8, split="none", seed=4)
    assert all(np.array_equal(data.train[i][1], again.train[i][1]) for i in range(5))
    first = data.train[0][1].clone()
    data.train.set_epoch(1)
    assert not np.array_equal(first, data.train[0][1])


@pytest.mark.parametrize(
    ("layers", "patch", "match"),
    [
        ([], 8, "no layers are selected"),
        ([LayerArray("g", np.zeros((16, 16), np.uint8), False)], 8, "no colour to learn"),
        (
            [
                LayerArray("c", _rgb((2, 16, 16)), True),
                LayerArray("g", np.zeros((3, 16, 16), np.uint8), False),
            ],
            8,
            r"'g' \(shape \(3, 16, 16\)\) has no colour target",
        ),
        (
            [
                LayerArray("c", _rgb((16, 16)), True),
                LayerArray("g1", np.zeros((16, 16), np.uint8), False),
                LayerArray("g2", np.zeros((16, 16), np.uint8), False),
            ],
            8,
            "already paired",
        ),
        ([LayerArray("thin", _rgb((20, 3)), True)], 8, "'thin'.*3 pixels wide"),
        ([LayerArray("small", _rgb((20, 20)), True)], 32, "larger than layer 'small'"),
        ([LayerArray("strip", _rgb((20, 20)), True)], 16, "too small to hold out"),
        ([LayerArray("i", np.zeros((8, 8, 3), np.int64), True)], 8, "uint8, uint16 or float"),
    ],
)
def test_bad_selections_say_what_is_wrong(layers, patch, match):
    with pytest.raises(ValueError, match=match):
        layer_datasets(layers, patch)


def test_pair_of_different_shapes_is_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        LayerSource("c", _rgb((16, 16)), np.zeros((16, 17), np.uint8), gray_name="g")
    with pytest.raises(ValueError, match="single image"):
        split_regions([LayerSource("one", _rgb((16, 16)))], 8, split="planes")


def test_folder_and_image_specs(tmp_path):
    from skimage.io import imsave

    for i in range(5):
        imsave(tmp_path / f"{i}.png", _rgb((20, 20), i), check_contrast=False)
    data = spec_datasets(f"folder:{tmp_path}", 16, val_fraction=0.2)
    assert len(data.train) == 4
    assert len(data.val) == 1
    assert data.preview_l.shape == (1, 1, 16, 16)
    assert "4 train, 1 validation" in data.description
    one = spec_datasets(str(tmp_path / "0.png"), 8, val_fraction=0.3)
    assert one.val is not None
    assert one.preview_offset == (0, 12)
    with pytest.raises(ValueError, match="too few"):
        spec_datasets(f"folder:{tmp_path}", 16, val_fraction=0.99)
    with pytest.raises(ValueError, match="too small to hold out"):
        spec_datasets(str(tmp_path / "0.png"), 8, val_fraction=0.99)
