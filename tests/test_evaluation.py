import json
import sys
import types
from dataclasses import dataclass

import numpy as np
import pytest
import tifffile
import torch
from skimage.io import imsave

from napari_colorize import cli, color, metrics
from napari_colorize.evaluation import EvaluationDone, EvaluationProgress, evaluate, run_evaluation

TYPES = ("alien", "ape", "zombie", "female", "male")


@dataclass
class FakeSplit:
    rgb: np.ndarray
    alpha: np.ndarray
    labels: np.ndarray
    label_names: list
    ids: np.ndarray


def _pattern(h=8, w=8):
    """One fixed colourful image: a different colour in each quadrant."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = (200, 40, 40)
    img[: h // 2, w // 2 :] = (40, 160, 60)
    img[h // 2 :, : w // 2] = (50, 60, 190)
    img[h // 2 :, w // 2 :] = (0x63, 0x85, 0x96)
    return img


@pytest.fixture
def fake_punks(monkeypatch):
    """punks:train and punks:test of identical 8x8 images; 'cap' is a non-type label."""
    n = {"train": 6, "test": 5}
    names = [*TYPES, "cap"]

    def load_punks(split, sdist=None):
        k = n[split]
        rgb = np.repeat(_pattern()[None], k, axis=0)
        alpha = np.zeros((k, 8, 8), np.uint8)
        alpha[:, 1:4, 1:4] = 255  # inside the red quadrant
        labels = np.zeros((k, len(names)), bool)
        labels[np.arange(k), np.arange(k) % 2 + 3] = True  # female, male alternate
        labels[:, 5] = True
        return FakeSplit(rgb, alpha, labels, names, np.arange(k))

    module = types.ModuleType("napari_colorize.data.punks")
    module.load_punks = load_punks
    module.PUNK_TYPES = TYPES
    monkeypatch.setitem(sys.modules, "napari_colorize.data.punks", module)
    return load_punks


class ConstantAB(torch.nn.Module):
    """Predicts the same ab everywhere, and records what it was given."""

    def __init__(self, ab):
        super().__init__()
        self.register_buffer("ab_net", torch.tensor(color.ab_to_net(np.asarray(ab, np.float32))))
        self.seen = []

    def forward(self, x):
        self.seen.append((tuple(x.shape), float(x.min()), float(x.max()), torch.is_grad_enabled()))
        n, _, h, w = x.shape
        return self.ab_net.view(1, 2, 1, 1).expand(n, 2, h, w)


class PerfectPunk(torch.nn.Module):
    """Predicts the true ab of the fake punk pattern (tiny conv net + fixed output)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)
        ab = color.rgb_to_lab(_pattern())[..., 1:]
        self.register_buffer("ab_net", torch.from_numpy(color.ab_to_net(ab)).permute(2, 0, 1))

    def forward(self, x):
        return self.ab_net.expand(x.shape[0], -1, -1, -1) + 0.0 * self.conv(x)


def test_model_on_punks_recombines_with_true_l(fake_punks):
    model = PerfectPunk()
    model.train()
    report = evaluate(model, "punks:test", batch_size=2, device="cpu")
    assert report["ciede2000"] < 0.05
    assert report["auc"] > 0.99
    assert report["n_images"] == 5
    assert report["data"] == "punks:test"
    assert model.training  # left as it was
    for key in metrics.REPORT_KEYS:
        assert isinstance(report[key], float)
    assert set(report["by_type"]) == {"female", "male"}  # only types present, no 'cap'
    assert report["by_type"]["female"]["n_images"] == 3


def test_model_input_scaling_and_inference_mode(fake_punks):
    model = ConstantAB((0.0, 0.0))
    events = list(run_evaluation(model, "punks:test", batch_size=2, device="cpu"))
    assert [e.done for e in events[:-1]] == [2, 4, 5]
    assert all(isinstance(e, EvaluationProgress) and e.total == 5 for e in events[:-1])
    assert isinstance(events[-1], EvaluationDone)
    shape, lo, hi, grad = model.seen[0]
    assert shape == (2, 1, 8, 8)
    assert -1.0 <= lo < hi <= 1.0  # l_to_net(L)
    assert not grad
    # ab = 0 from a model is the gray baseline
    gray = evaluate(baseline="gray", data="punks:test")
    assert events[-1].report["ciede2000"] == pytest.approx(gray["ciede2000"], rel=1e-5)


def test_baselines_on_punks(fake_punks):
    gray = evaluate(baseline="gray", data="punks:test")
    mean = evaluate(baseline="mean", data="punks:test")
    # not exactly 0: skimage's sRGB matrix maps the D65 white to RGB 1 only to ~1e-4
    assert gray["colorfulness"] == pytest.approx(0.0, abs=0.01)
    assert gray["ciede2000"] > 10
    # train and test hold the same image: its per-pixel mean is exact
    assert mean["ciede2000"] < 0.05
    assert mean["ciede2000_fg"] < 0.05
    assert mean["auc"] > 0.99
    assert gray["ciede2000_fg"] != gray["ciede2000"]
    assert gray["model"] is None
    assert gray["baseline"] == "gray"


def test_bad_arguments(fake_punks, tmp_path):
    with pytest.raises(ValueError, match="neither"):
        evaluate(data="punks:test")
    with pytest.raises(ValueError, match="both"):
        evaluate(ConstantAB((0, 0)), baseline="gray")
    with pytest.raises(ValueError, match="unknown baseline"):
        evaluate(baseline="median")
    with pytest.raises(ValueError, match="punks split"):
        evaluate(baseline="gray", data="punks:val")
    with pytest.raises(FileNotFoundError, match="existing folder"):
        evaluate(baseline="gray", data=str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="no images"):
        evaluate(baseline="gray", data=str(tmp_path))


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    imsave(folder / "a.png", _pattern(), check_contrast=False)
    imsave(folder / "b.png", _pattern()[::-1].copy(), check_contrast=False)
    imsave(folder / "sub" / "big.png", rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
    rgba = np.concatenate([_pattern(12, 10), np.full((12, 10, 1), 255, np.uint8)], axis=-1)
    imsave(folder / "sub" / "rgba.png", rgba, check_contrast=False)
    tifffile.imwrite(folder / "deep16.tif", _pattern().astype(np.uint16) * 257)
    imsave(folder / "gray.png", rng.integers(0, 256, (9, 9), dtype=np.uint8))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_folder_baselines_and_model(image_folder):
    gray = evaluate(baseline="gray", data=str(image_folder), batch_size=4)
    assert gray["n_images"] == 6
    assert "by_type" not in gray
    assert gray["ciede2000_fg"] == gray["ciede2000"]
    mean = evaluate(baseline="mean", data=f"folder:{image_folder}")
    assert mean["n_images"] == 6
    assert mean["ciede2000"] != gray["ciede2000"]

    model = ConstantAB((20.0, -10.0))
    report = evaluate(model, str(image_folder), batch_size=4, device="cpu", chroma_size=16)
    assert report["n_images"] == 6
    shapes = {s for s, *_ in model.seen}
    assert (1, 1, 16, 12) in shapes  # the 40x30 image ran at the working size
    assert (3, 1, 8, 8) in shapes or (2, 1, 8, 8) in shapes  # same-size images share a batch
    assert report["colorfulness"] > 0


def test_model_by_name_uses_registry(fake_punks, monkeypatch):
    calls = []

    def load_model(name, device="cpu"):
        calls.append((name, str(device)))
        return PerfectPunk(), types.SimpleNamespace(extra={"chroma_size": 64})

    module = types.ModuleType("napari_colorize.registry")
    module.load_model = load_model
    monkeypatch.setitem(sys.modules, "napari_colorize.registry", module)
    report = evaluate("tiny", "punks:test", device="cpu")
    assert calls == [("tiny", "cpu")]
    assert report["model"] == "tiny"
    assert report["ciede2000"] < 0.05


def test_cli_evaluate_writes_json(image_folder, tmp_path, capsys):
    out = tmp_path / "report.json"
    status = cli.main(
        ["evaluate", "--baseline", "gray", "--data", str(image_folder), "--json", str(out)]
    )
    assert status == 0
    data = json.loads(out.read_text())
    assert set(metrics.REPORT_KEYS) <= set(data)
    assert data["n_images"] == 6
    printed = capsys.readouterr().out
    for key in metrics.REPORT_KEYS:
        assert key in printed


def test_cli_evaluate_needs_model_or_baseline(capsys):
    assert cli.main(["evaluate", "--data", "punks:test"]) == 2
    assert "--model NAME_OR_PATH or --baseline" in capsys.readouterr().err


def test_scores_on_the_cpu_are_float32_on_every_cpu(monkeypatch):
    """ "auto" takes bf16 on CPUs with AMX; evaluation must not depend on the CPU it runs on."""
    from torch import nn

    from napari_colorize.evaluation import _ColorizerPredictor

    monkeypatch.setattr("napari_colorize.inference.colorizer.cpu_has_fast_bf16", lambda: True)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh())
    predictor = _ColorizerPredictor(net, "cpu", None, 4)
    try:
        assert predictor.colorizer.precision == "fp32"
        assert predictor.colorizer.autocast_dtype is None
    finally:
        predictor.close()
