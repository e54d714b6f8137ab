"""Inception v3: torchvision's layout, strict loading, small inputs, heads, class names."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_colorize.color import l_to_net, lab_to_rgb
from napari_colorize.models.inception import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TORCHVISION_SHA256_PREFIX,
    TORCHVISION_URL,
    InceptionConfig,
    InceptionOutputs,
    InceptionV3,
    convert_torchvision_state_dict,
    head_probabilities,
    imagenet_class_names,
    imagenet_config,
    l_to_imagenet_input,
    split_heads,
)

KEYS_FILE = Path(__file__).parents[1] / "data" / "inception_v3_torchvision_keys.json"
#: torchvision's documented parameter counts of inception_v3 (1000 classes).
PARAMS_WITH_AUX = 27_161_264
PARAMS_WITHOUT_AUX = 23_834_568
STATS = ("running_mean", "running_var", "num_batches_tracked")
PUNK_HEADS = (("type", "softmax", 5), ("accessories", "sigmoid", 87))


@pytest.fixture(scope="module", autouse=True)
def _no_onednn():
    """oneDNN's per-shape kernel set-up costs more than these tiny convolutions."""
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    yield
    torch.backends.mkldnn.enabled = before


@pytest.fixture(scope="module")
def reference() -> dict[str, list[int]]:
    """torchvision's inception_v3(aux_logits=True) state dict layout, in its key order."""
    return json.loads(KEYS_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def full_model() -> InceptionV3:
    torch.manual_seed(0)
    return InceptionV3().eval()


def _shapes(model) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def _n_params(shapes: dict, aux: bool = True) -> int:
    return sum(
        math.prod(s)
        for k, s in shapes.items()
        if not k.endswith(STATS) and (aux or not k.startswith("AuxLogits."))
    )


def _small(**kw) -> InceptionV3:
    torch.manual_seed(0)
    return InceptionV3(InceptionConfig(width=0.25, **kw)).eval()


# ----------------------------------------------------------------- layout


def test_reference_layout_counts(reference):
    assert len(reference) == 580
    # one BasicConv2d per num_batches_tracked: 5 stem, 3x7 A, 4 B, 4x10 C, 2 aux, 6 D, 2x9 E
    assert sum(k.endswith("num_batches_tracked") for k in reference) == 96
    assert _n_params(reference) == PARAMS_WITH_AUX
    assert _n_params(reference, aux=False) == PARAMS_WITHOUT_AUX


def test_state_dict_matches_torchvision_layout(reference):
    with torch.device("meta"):
        with_aux = InceptionV3(aux_logits=True)
        without = InceptionV3()
    assert list(_shapes(with_aux)) == list(reference)  # same keys, same order
    assert _shapes(with_aux) == reference
    assert _shapes(without) == {k: s for k, s in reference.items() if "AuxLogits" not in k}
    assert sum(p.numel() for p in with_aux.parameters()) == PARAMS_WITH_AUX
    assert sum(p.numel() for p in without.parameters()) == PARAMS_WITHOUT_AUX
    assert without.num_features == 2048


def test_basic_conv_is_biasless_conv_and_bn_eps(full_model):
    block = full_model.Mixed_7c.branch3x3dbl_3b
    assert block.conv.bias is None
    assert block.conv.kernel_size == (3, 1)
    assert block.conv.padding == (1, 0)
    assert block.bn.eps == pytest.approx(0.001)


def test_published_layout_loads_strictly(reference, full_model):
    # a state dict with exactly the published file's keys and shapes, distinct values
    state = {}
    for i, (key, shape) in enumerate(reference.items()):
        dtype = torch.long if key.endswith("num_batches_tracked") else torch.float32
        state[key] = torch.full(shape, i % 97, dtype=dtype)
    with torch.device("meta"):
        meta_aux = InceptionV3(aux_logits=True)
    meta_aux.load_state_dict(state, strict=True, assign=True)
    assert meta_aux.AuxLogits.fc.weight.shape == (1000, 768)

    original = {k: v.clone() for k, v in full_model.state_dict().items()}
    converted = convert_torchvision_state_dict(state)
    assert not any(k.startswith("AuxLogits.") for k in converted)
    assert len(converted) == len(state) - 14
    full_model.load_state_dict(converted, strict=True)
    assert torch.equal(full_model.fc.bias, state["fc.bias"])
    assert int(full_model.Mixed_5b.branch_pool.bn.num_batches_tracked) == (
        list(reference).index("Mixed_5b.branch_pool.bn.num_batches_tracked") % 97
    )
    with pytest.raises(RuntimeError, match="AuxLogits"):
        full_model.load_state_dict(state, strict=True)
    kept = convert_torchvision_state_dict(
        {f"module.{k}": v for k, v in state.items()}, aux_logits=True
    )
    assert list(kept) == list(reference)
    full_model.load_state_dict(original)


def test_torchvision_constants():
    assert TORCHVISION_URL.endswith(f"-{TORCHVISION_SHA256_PREFIX}.pth")
    assert len(TORCHVISION_SHA256_PREFIX) == 8


# ----------------------------------------------------------------- forward


def test_full_model_forward_75(full_model):
    torch.manual_seed(0)
    with torch.no_grad():
        logits = full_model(torch.randn(2, 3, 75, 75))
        features = full_model.features(torch.randn(1, 3, 75, 75))
    assert logits.shape == (2, 1000)
    assert features.shape == (1, 2048)
    assert torch.isfinite(logits).all()


def test_grayscale_punk_is_upsampled():
    model = _small(grayscale=True, num_classes=7)
    l_net = torch.rand(1, 1, 24, 24) * 2 - 1
    resized = model._resize(l_net)
    assert resized.shape[-2:] == (75, 75)
    with torch.no_grad():
        assert model(l_net).shape == (1, 7)
        # aspect ratio is kept: the shorter side becomes 75
        assert model._resize(torch.zeros(1, 1, 24, 48)).shape[-2:] == (75, 150)
        assert model.features(torch.zeros(2, 1, 24, 48)).shape == (2, model.num_features)
    fixed = _small(grayscale=True, input_size=139)
    assert fixed._resize(l_net).shape[-2:] == (139, 139)
    assert fixed._resize(torch.zeros(1, 1, 300, 200)).shape[-2:] == (139, 139)


def test_grayscale_input_is_imagenet_normalised_neutral_gray():
    lightness = np.array([0.0, 25.0, 50.0, 100.0], dtype=np.float32)
    lab = np.stack([lightness, np.zeros(4), np.zeros(4)], -1).astype(np.float32)
    gray = lab_to_rgb(lab)  # (4, 3), r = g = b
    expected = (gray - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    l_net = torch.from_numpy(l_to_net(lightness)).view(1, 1, 1, 4)
    got = l_to_imagenet_input(l_net)[0, :, 0, :].T
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-4)
    model = _small(grayscale=True)
    flat = model.prepare_input(torch.full((1, 1, 80, 80), float(l_to_net(50.0))))
    assert flat.shape == (1, 3, 80, 80)
    np.testing.assert_allclose(flat[0, :, 0, 0].numpy(), expected[2], atol=1e-4)


def test_transform_input_gives_minus_one_to_one():
    model = _small(transform_input=True)
    rgb = torch.rand(1, 3, 75, 75)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    got = model.prepare_input((rgb - mean) / std)
    torch.testing.assert_close(got, rgb * 2 - 1, atol=1e-5, rtol=0)


def test_grayscale_with_one_input_channel():
    model = _small(grayscale=True, in_channels=1, num_classes=3)
    assert model.Conv2d_1a_3x3.conv.weight.shape[1] == 1
    l_net = torch.rand(2, 1, 24, 24) * 2 - 1
    assert torch.equal(model.prepare_input(l_net), model._resize(l_net))
    with torch.no_grad():
        assert model(l_net).shape == (2, 3)


def test_aux_logits_in_training_mode():
    torch.manual_seed(0)
    config = InceptionConfig(width=0.125, aux_logits=True, num_classes=5, input_size=299)
    model = InceptionV3(config).train()
    out = model(torch.randn(2, 3, 32, 32))
    assert isinstance(out, InceptionOutputs)
    assert out.logits.shape == (2, 5)
    assert out.aux_logits.shape == (2, 5)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 5)


def test_aux_logits_need_299_in_training():
    model = _small(aux_logits=True).train()
    with pytest.raises(ValueError, match="input_size=299"):
        model(torch.randn(2, 3, 75, 75))


def test_bad_input_shape_names_the_fix():
    with pytest.raises(ValueError, match="grayscale=True"):
        _small()(torch.zeros(1, 1, 75, 75))
    with pytest.raises(ValueError, match=r"l_to_net\(L\)"):
        _small(grayscale=True)(torch.zeros(1, 3, 75, 75))


def test_width_is_opt_in():
    assert InceptionConfig().width == 1.0
    small = _small(num_classes=4)
    assert small.num_features == 512
    assert small.Conv2d_1a_3x3.conv.weight.shape == (8, 3, 3, 3)
    assert sum(p.numel() for p in small.parameters()) < PARAMS_WITHOUT_AUX / 10


# ----------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_input_size": 32}, "min_input_size must be >= 75"),
        ({"input_size": 24}, "input_size must be >= 75"),
        ({"in_channels": 2}, "in_channels must be 3"),
        ({"in_channels": 1}, "grayscale=True"),
        ({"in_channels": 1, "grayscale": True, "transform_input": True}, "in_channels=3"),
        ({"dropout": 1.0}, "dropout"),
        ({"width": 0}, "width"),
        ({"heads": (("type", "softmax", 5),), "num_classes": 6}, "leave num_classes out"),
        ({"heads": (("type", "softmax-ish", 5),)}, "'softmax'"),
        ({"heads": (("a", "softmax", 2), ("a", "sigmoid", 2))}, "unique"),
        ({"heads": (("a", "softmax"),)}, "name, kind, size"),
        ({"heads": ()}, "at least one head"),
    ],
)
def test_config_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InceptionConfig(**kwargs)


def test_config_json_round_trip_keeps_head_order():
    cfg = InceptionConfig(heads={"type": ("softmax", 5), "accessories": ("sigmoid", 87)})
    assert cfg.heads == PUNK_HEADS
    assert cfg.num_classes == 92
    again = InceptionConfig(**json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert asdict(imagenet_config()) == asdict(
        InceptionConfig(transform_input=True, grayscale=True, input_size=299)
    )


# ----------------------------------------------------------------- heads


def test_heads_split_into_probabilities():
    torch.manual_seed(0)
    logits = torch.randn(3, 92) * 4
    probs = head_probabilities(logits, PUNK_HEADS)
    parts = split_heads(probs, PUNK_HEADS)
    assert parts["type"].shape == (3, 5)
    assert parts["accessories"].shape == (3, 87)
    torch.testing.assert_close(parts["type"].sum(-1), torch.ones(3))
    torch.testing.assert_close(parts["accessories"], logits[:, 5:].sigmoid())
    torch.testing.assert_close(head_probabilities(logits), logits.softmax(-1))
    with pytest.raises(ValueError, match="add up to 92"):
        split_heads(torch.zeros(1, 91), PUNK_HEADS)


def test_model_predict_proba_with_heads():
    model = _small(grayscale=True, heads=PUNK_HEADS)
    with torch.no_grad():
        probs = model.predict_proba(torch.rand(2, 1, 24, 24) * 2 - 1)
    assert probs.shape == (2, 92)
    parts = model.split(probs)
    assert list(parts) == ["type", "accessories"]
    torch.testing.assert_close(parts["type"].sum(-1), torch.ones(2))
    plain = _small(num_classes=4)
    with torch.no_grad():
        p = plain.predict_proba(torch.rand(1, 3, 75, 75))
    torch.testing.assert_close(p.sum(-1), torch.ones(1))
    assert list(plain.split(p)) == ["classes"]


# ----------------------------------------------------------------- class names


def test_imagenet_class_names():
    names = imagenet_class_names()
    assert len(names) == 1000
    assert len(set(names)) == 1000
    assert names[:3] == ["tench", "goldfish", "great white shark"]
    assert names[134] == "crane bird"
    assert names[517] == "crane"
    assert names[639] == "maillot tank suit"
    assert names[-1] == "toilet tissue"
    assert all(n == n.strip() and "_" not in n for n in names)
    names.append("mutating the copy")
    assert len(imagenet_class_names()) == 1000
