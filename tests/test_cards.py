"""Model cards: training sizes, the auto working size, readable cards, domain checks."""

from __future__ import annotations

import numpy as np
import pytest

from napari_colorize import cards
from napari_colorize.cards import auto_working_size, build_card, card_lines, domain_warnings

DEFAULT = 256
PUNKS_DATA = "cryptopunks train split (9000)"


@pytest.fixture(autouse=True)
def no_method_cards(monkeypatch):
    monkeypatch.setattr(cards, "_METHOD_CARDS", {})


def test_training_image_size_recorded_or_inferred():
    assert cards.training_image_size({"image_size": 64, "chroma_size": 24}) == 64
    assert cards.training_image_size({}, PUNKS_DATA) == 24  # files from before image_size
    assert cards.training_image_size({"chroma_size": 48}, "folder:/x") == 48
    assert cards.training_image_size({}, "folder:/x") is None
    assert cards.training_image_size(None) is None
    assert cards.training_image_size({"image_size": "big"}) is None


@pytest.mark.parametrize(
    ("extra", "data", "shape", "expected"),
    [
        # a punks model: its 24 px near 24 px punks, the default on photos
        ({"chroma_size": 24}, PUNKS_DATA, (24, 24), 24),
        ({"chroma_size": 24}, PUNKS_DATA, (96, 96), 24),
        ({"chroma_size": 24}, PUNKS_DATA, (97, 40), DEFAULT),
        ({"chroma_size": 24}, PUNKS_DATA, (2048, 2048), DEFAULT),
        # a large stored size is kept at every size (alpha: the image's own size)
        ({"chroma_size": 512, "image_size": 64}, "one image", (4000, 3000), 512),
        # native-resolution patch training: full resolution, tiled
        ({"image_size": 64, "native_resolution": True}, "layers", (2048, 2048), None),
        # a stored working size wins over the native flag
        ({"image_size": 64, "native_resolution": True, "chroma_size": 32}, "x", (40, 40), 32),
        # no chroma_size, a recorded training size (punks trained with a large patch)
        ({"image_size": 24}, "punks:train", (48, 48), 24),
        ({"image_size": 24}, "punks:train", (500, 500), DEFAULT),
        # nothing known: the default
        ({}, None, (24, 24), DEFAULT),
        (None, None, (5000, 5000), DEFAULT),
    ],
)
def test_auto_working_size(extra, data, shape, expected):
    assert auto_working_size(extra, data, shape, DEFAULT) == expected


def test_working_size_in_words():
    assert cards.working_size_text({"chroma_size": 24}, PUNKS_DATA, DEFAULT) == (
        "24 px for images up to 96 px, else 256 px"
    )
    native = {"image_size": 64, "native_resolution": True}
    assert cards.working_size_text(native, "layers", DEFAULT) == "full resolution (tiled)"
    assert cards.working_size_text({}, None, DEFAULT) == "256 px"


def test_card_of_a_punks_model_reads_like_one():
    card = build_card(
        "beta-punks", arch="beta", source="bundled", data=PUNKS_DATA,
        extra={"chroma_size": 24, "hints": False},
        metrics={"ciede2000_fg": 1.3585, "psnr": float("nan"), "data": "punks:test",
                 "n_images": 1000},
        size=718_612,
    )  # fmt: skip
    assert card["purpose"] == "CryptoPunks 24x24 pixel art only"
    assert card["image_size"] == 24
    assert card["input"] == "24x24 images"
    assert card["figures"] == {"ciede2000_fg": 1.3585}  # NaN and counts are no figures
    assert card["figures_on"] == "punks:test, 1000 images"
    assert card["summary"] == "CryptoPunks 24x24 pixel art only; 718.6 KB"
    text = "\n".join(card_lines(card))
    assert "trained on: cryptopunks" in text
    assert "ciede2000_fg 1.36" in text
    assert "working size: 24 px for images up to 96 px, else 256 px" in text


def test_card_of_a_download_and_of_a_native_model():
    card = build_card(
        "photo", arch="eccv16", source="url", size=129_000_000, available=False,
        facts={"purpose": "natural photographs", "image_size": 256},
    )  # fmt: skip
    assert card["needs_download"] is True
    assert card["summary"] == "natural photographs; 129.0 MB download"
    assert "measured: no figures stored in its file" in card_lines(card)
    native = build_card(
        "mine", arch="beta", source="path", data="layers: tissue (3 regions)",
        extra={"image_size": 64, "native_resolution": True}, size=1000,
    )  # fmt: skip
    assert native["purpose"] == "images like its training data, at their own resolution"
    assert native["input"] == "patches of 64 px at the images' own resolution"
    assert native["working_size"] == "full resolution (tiled)"
    bare = build_card("old", arch="beta", source="path")
    assert bare["purpose"].startswith("unknown")


def test_method_cards_leave_room_for_training_free_methods():
    assert cards.method_cards() == {}
    card = cards.register_method_card(
        "propagate", purpose="any image, from a few colour hints", needs="colour hints"
    )
    assert card["kind"] == "method"
    assert cards.method_cards()["propagate"]["summary"] == (
        "any image, from a few colour hints; no weights"
    )
    assert "size: no weights, nothing to download" in card_lines(card)
    with pytest.raises(ValueError, match="non-empty name"):
        cards.register_method_card("", purpose="x", needs="y")


def test_domain_warnings_size_and_lightness():
    card = {"name": "inception-punks", "image_size": 24, "input": "24x24 images",
            "lightness": {"mean": [32, 66], "std": [10, 31]}}  # fmt: skip
    assert domain_warnings(card, (24, 24), 45.0, 20.0) == []
    reasons = domain_warnings(card, (512, 512), 25.0, 35.0)
    assert len(reasons) == 3
    assert reasons[0] == "it is 512x512 px (trained on 24x24 images)"
    assert reasons[1] == "its mean lightness is 25 (training images: 32-66)"
    assert reasons[2] == "its lightness spread is 35 (training images: 10-31)"
    # a classifier that resizes its input takes larger images, not tiny ones
    photos = {"name": "inception-imagenet", "image_size": 299, "any_larger_size": True}
    assert domain_warnings(photos, (4000, 3000)) == []
    assert domain_warnings(photos, (24, 24)) != []


def test_trained_files_record_their_size(tmp_path):
    """A patch-trained model colorizes at full resolution; whole images keep their size."""
    from napari_colorize.checkpoint import read_metadata
    from napari_colorize.training.trainer import TrainConfig, Trainer

    rgb = (np.random.default_rng(0).random((4, 16, 16, 3)) * 255).astype(np.uint8)
    base = {"arch": "beta", "model_config": {"widths": [4, 8]}, "max_steps": 1,
            "batch_size": 2, "device": "cpu"}  # fmt: skip
    patched = Trainer(TrainConfig(**base, patch_size=8, out=str(tmp_path / "p.safetensors")), rgb)
    for _ in patched.run():
        pass
    extra = read_metadata(tmp_path / "p.safetensors").extra
    assert extra["image_size"] == 8
    assert extra["native_resolution"] is True
    assert auto_working_size(extra, "layers", (3000, 3000), DEFAULT) is None

    whole = Trainer(TrainConfig(**base, chroma_size=16, out=str(tmp_path / "w.safetensors")), rgb)
    for _ in whole.run():
        pass
    extra = read_metadata(tmp_path / "w.safetensors").extra
    assert extra["image_size"] == 16
    assert "native_resolution" not in extra
    assert auto_working_size(extra, None, (64, 64), DEFAULT) == 16
    assert auto_working_size(extra, None, (65, 65), DEFAULT) == DEFAULT
