"""The Zhang et al. colorizers: published layouts, scalings, decodings, hints, download.

``tests/data/zhang_*_keys.json`` record the state dict layout (key -> shape) of
the authors' published files, transcribed from their ``colorizers/eccv16.py`` and
``colorizers/siggraph17.py`` (``ECCVGenerator`` / ``SIGGRAPHGenerator`` with
``nn.BatchNorm2d``), not generated from our module. The networks have their true
size (32 M / 34 M parameters), so each test runs as few forwards as it can, on
8-24 px inputs.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import math
import threading
from pathlib import Path

import pytest
import torch

from napari_colorize import registry, user_models
from napari_colorize.color import AB_SCALE
from napari_colorize.errors import CheckpointError, DownloadError
from napari_colorize.models.hint_format import check_hints, empty_hints
from napari_colorize.models.zhang import (
    AB_NORM,
    ECCV16Colorizer,
    ECCV16Config,
    SIGGRAPH17Colorizer,
    SIGGRAPH17Config,
    convert_state_dict,
)
from napari_colorize.registry import PretrainedModel

DATA = Path(__file__).parents[1] / "data"
CLASSES = {"eccv16": ECCV16Colorizer, "siggraph17": SIGGRAPH17Colorizer}
#: Sizes of the published files (bytes) and their float32 payloads (elements).
PUBLISHED_BYTES = {"eccv16": 128_976_165, "siggraph17": 136_787_426}
FLOAT_ELEMENTS = {"eccv16": 32_241_003, "siggraph17": 34_192_787}
NBT = "num_batches_tracked"


def layout(arch: str) -> dict[str, tuple[int, ...]]:
    with open(DATA / f"zhang_{arch}_keys.json") as f:
        return {k: tuple(v) for k, v in json.load(f).items()}


def published_state(arch: str, seed: int | None = 0) -> dict[str, torch.Tensor]:
    """Weights in the published layout: random (small, positive variances) or, with
    ``seed=None``, uninitialised (fast, for tests of keys and shapes only)."""
    g = torch.Generator().manual_seed(seed or 0)
    state = {}
    for key, shape in layout(arch).items():
        if key.endswith(NBT):
            state[key] = torch.tensor(1000, dtype=torch.int64)
        elif seed is None:
            state[key] = torch.empty(shape)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith(("running_mean", "bias")):
            state[key] = torch.randn(shape, generator=g) * 0.01
        elif key.endswith("weight") and len(shape) == 1:  # BatchNorm scale
            state[key] = torch.ones(shape)
        else:
            fan_in = math.prod(shape[1:])
            state[key] = torch.randn(shape, generator=g) * math.sqrt(2.0 / fan_in)
    return state


@pytest.fixture(scope="module")
def eccv16():
    torch.manual_seed(0)
    return ECCV16Colorizer().eval()


@pytest.fixture(scope="module")
def siggraph17():
    torch.manual_seed(0)
    return SIGGRAPH17Colorizer().eval()


def l_input(n=1, h=16, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, 1, h, w), generator=g) * 2 - 1


# ----------------------------------------------------------------- layouts


@pytest.mark.parametrize("arch", ["eccv16", "siggraph17"])
def test_layout_is_the_published_one(arch):
    with torch.device("meta"):
        model = CLASSES[arch]()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert list(ours.items()) == list(layout(arch).items())  # same keys, shapes and order


@pytest.mark.parametrize("arch", ["eccv16", "siggraph17"])
def test_parameter_totals_fit_the_published_file_sizes(arch):
    with torch.device("meta"):
        model = CLASSES[arch]()
    floats = sum(v.numel() for v in model.state_dict().values() if v.is_floating_point())
    recorded = sum(math.prod(s) for k, s in layout(arch).items() if not k.endswith(NBT))
    assert floats == recorded == FLOAT_ELEMENTS[arch]
    # float32 payload plus a pickle overhead of ~150 bytes per tensor
    size = registry.get_model(arch).size
    assert size == PUBLISHED_BYTES[arch]
    overhead = size - 4 * floats
    assert 0 < overhead < 200 * len(layout(arch))
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == {"eccv16": 32_236_011, "siggraph17": 34_187_027}[arch]


@pytest.mark.parametrize("arch", ["eccv16", "siggraph17"])
def test_published_layout_loads_strictly_and_converts(arch):
    state = published_state(arch, seed=None)
    with torch.device("meta"):
        model = CLASSES[arch]()
    model.load_state_dict(state, strict=True, assign=True)

    # as saved from nn.DataParallel by an old PyTorch: prefixes, no BatchNorm counters
    wrapped = {f"module.{k}": v for k, v in state.items() if not k.endswith(NBT)}
    first = next(iter(wrapped))
    wrapped[first] = wrapped[first].half()
    converted = convert_state_dict(wrapped)  # the architecture is found from the keys
    assert list(converted) == list(layout(arch))
    assert all(v.dtype == torch.float32 for k, v in converted.items() if not k.endswith(NBT))
    assert all(v.dtype == torch.int64 and v.item() == 0 for k, v in converted.items()
               if k.endswith(NBT))  # fmt: skip
    model.load_state_dict(converted, strict=True, assign=True)


def test_convert_names_missing_unexpected_and_misshaped_keys():
    state = {k: torch.empty(s) for k, s in layout("eccv16").items()}
    del state["model3.2.weight"]
    state["model9.0.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"closest: eccv16.*missing keys: model3\.2\.weight"
                       r".*unexpected keys: model9\.0\.weight"):  # fmt: skip
        convert_state_dict(state)

    state = {k: torch.empty(s) for k, s in layout("siggraph17").items()}
    state["model_out.0.weight"] = torch.zeros(3, 128, 1, 1)
    with pytest.raises(
        CheckpointError, match=r"wrong shapes: model_out\.0\.weight \(3, 128, 1, 1\)"
    ):
        convert_state_dict(state, arch="siggraph17")
    with pytest.raises(CheckpointError, match="does not fit the eccv16 architecture"):
        convert_state_dict(state, arch="eccv16")
    with pytest.raises(CheckpointError, match="non-tensor"):
        convert_state_dict({"model1.0.weight": [1.0]})


# ----------------------------------------------------------------- ECCV16


def test_eccv16_matches_the_release_pipeline(eccv16):
    """Our scaling in and out equals the release's (L-50)/100 ... x110 pipeline."""
    l_net = l_input(h=16, w=24)
    lightness = (l_net + 1) * 50
    with torch.no_grad():
        ours = eccv16(l_net) * AB_SCALE
        x = (lightness - 50) / 100
        for i in range(1, 9):
            x = getattr(eccv16, f"model{i}")(x)
        release = eccv16.upsample4(eccv16.model_out(eccv16.softmax(x))) * 110
    assert ours.shape == (1, 2, 16, 24)
    torch.testing.assert_close(ours, release, rtol=1e-4, atol=1e-4)


def test_eccv16_odd_sizes_and_probabilities(eccv16):
    with torch.no_grad():
        ab = eccv16(l_input(h=5, w=7))
        probs = eccv16.bin_probabilities(l_input(h=5, w=7))
    assert ab.shape == (1, 2, 5, 7)
    assert probs.shape == (1, 313, 2, 2)  # a quarter of the size padded to 8
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 2, 2))
    assert eccv16.bin_centers.shape == (313, 2)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        eccv16(torch.zeros(1, 3, 16, 16))


def test_annealed_mean_between_mean_and_mode(eccv16):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn((2, 313, 3, 3), generator=g) * 3
    centers = eccv16.bin_centers  # (313, 2), Lab units
    with torch.no_grad():
        mean = eccv16.decode(logits, "expectation")
        t1 = eccv16.decode(logits, "annealed_mean", temperature=1.0)
        sharp = eccv16.decode(logits, "annealed_mean", temperature=1e-3)
        default = eccv16.decode(logits, "annealed_mean")  # T = 0.38
    torch.testing.assert_close(t1, mean)
    expected_mean = torch.einsum("nqhw,qc->nchw", logits.softmax(1), centers) / AB_SCALE
    torch.testing.assert_close(mean, expected_mean, rtol=1e-4, atol=1e-5)
    mode = centers[logits.argmax(1)].permute(0, 3, 1, 2) / AB_SCALE
    torch.testing.assert_close(sharp, mode, rtol=1e-4, atol=1e-4)
    # 0.38 lies between: closer to the mode than the mean is
    assert (default - mode).abs().mean() < (mean - mode).abs().mean()
    with pytest.raises(ValueError, match="temperature must be > 0"):
        eccv16.decode(logits, "annealed_mean", temperature=0.0)
    with pytest.raises(ValueError, match="decoding must be one of"):
        eccv16.decode(logits, "mode")


def test_eccv16_config_and_registry_build():
    with pytest.raises(ValueError, match="decoding must be one of"):
        ECCV16Config(decoding="median")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        ECCV16Config(temperature=0)
    with torch.device("meta"):
        model = registry.build_model("eccv16", {"decoding": "annealed_mean", "temperature": 0.5})
    assert isinstance(model, ECCV16Colorizer)
    assert (model.decoding, model.temperature) == ("annealed_mean", 0.5)
    assert model.config.to_dict() == {"decoding": "annealed_mean", "temperature": 0.5}
    model.decoding, model.temperature = "expectation", 0.3  # e.g. after loading by name
    assert model.config == ECCV16Config("expectation", 0.3)
    with pytest.raises(ValueError, match="decoding must be one of"):
        model.decoding = "mode"
    with torch.device("meta"):
        sig = registry.build_model("siggraph17", {"mask_center": 0.5})
    assert isinstance(sig, SIGGRAPH17Colorizer)
    assert sig.config == SIGGRAPH17Config(mask_center=0.5)


# ----------------------------------------------------------------- SIGGRAPH17 and hints


def test_hint_format_helpers():
    l_net = l_input(n=2, h=8, w=8)
    assert empty_hints(l_net).shape == (2, 3, 8, 8)
    hints = torch.zeros(2, 3, 8, 8)
    hints[:, :2] = 0.5  # ab everywhere, but a hint only at one pixel
    hints[0, 2, 1, 1] = 1
    checked = check_hints(hints, l_net)
    assert checked[:, :2].abs().sum() == 2 * 0.5  # only the masked pixel of image 0
    assert torch.equal(check_hints(None, l_net), empty_hints(l_net))
    with pytest.raises(ValueError, match=r"hints must be a tensor of shape \(2, 3, 8, 8\)"):
        check_hints(torch.zeros(2, 2, 8, 8), l_net)
    bad = torch.zeros(2, 3, 8, 8)
    bad[0, 2, 0, 0] = 2
    with pytest.raises(ValueError, match=r"mask .* must lie in \[0, 1\]"):
        check_hints(bad, l_net)


def test_siggraph17_release_input_scaling():
    model = SIGGRAPH17Colorizer.__new__(SIGGRAPH17Colorizer)  # no weights needed
    torch.nn.Module.__init__(model)
    model.config = SIGGRAPH17Config()
    l_net = torch.full((1, 1, 2, 2), 0.5)  # L = 75
    hints = torch.zeros(1, 3, 2, 2)
    hints[0, :2, 0, 0] = torch.tensor([55.0, -22.0]) / AB_SCALE
    hints[0, 2, 0, 0] = 1
    x = model.release_input(l_net, hints)
    torch.testing.assert_close(x[0, 0], torch.full((2, 2), (75 - 50) / 100))
    torch.testing.assert_close(x[0, 1:3, 0, 0], torch.tensor([55.0, -22.0]) / AB_NORM)
    assert x[0, 3].tolist() == [[1.0, 0.0], [0.0, 0.0]]  # the release feeds the 0/1 mask
    model.config = SIGGRAPH17Config(mask_center=0.5)
    assert model.release_input(l_net, hints)[0, 3].tolist() == [[0.5, -0.5], [-0.5, -0.5]]


def test_siggraph17_forward_and_hints(siggraph17):
    l_net = l_input(h=8, w=8).expand(3, 1, 8, 8)
    hints = torch.zeros(3, 3, 8, 8)
    hints[1, :2, 2:4, 2:4] = torch.tensor([0.6, -0.4])[:, None, None]
    hints[1, 2, 2:4, 2:4] = 1
    hints[2, :2] = 0.6  # ab without a mask is no hint
    with torch.no_grad():
        out = siggraph17(l_net, hints)
        plain = siggraph17(l_net[:1])
    assert out.shape == (3, 2, 8, 8)
    torch.testing.assert_close(out[0], plain[0], rtol=1e-4, atol=1e-5)  # zero hints == None
    torch.testing.assert_close(out[2], out[0], rtol=1e-4, atol=1e-5)
    assert (out[1] - out[0]).abs().max() > 1e-4  # a hint changes the colours
    assert out.abs().max() <= AB_NORM / AB_SCALE  # tanh output x 110 in ab/128 units


def test_siggraph17_odd_size_matches_release_pipeline(siggraph17):
    l_net = l_input(h=5, w=7, seed=3)
    with torch.no_grad():
        out = siggraph17(l_net)
        # the release on the replicate-padded input, cropped: what our padding promises
        padded = torch.nn.functional.pad(l_net, (0, 1, 0, 3), mode="replicate")
        x = torch.cat([padded / 2, torch.zeros(1, 3, 8, 8)], dim=1)
        m = siggraph17
        c1 = m.model1(x)
        c2 = m.model2(c1[:, :, ::2, ::2])
        c3 = m.model3(c2[:, :, ::2, ::2])
        y = m.model7(m.model6(m.model5(m.model4(c3[:, :, ::2, ::2]))))
        y = m.model8(m.model8up(y) + m.model3short8(c3))
        y = m.model9(m.model9up(y) + m.model2short9(c2))
        y = m.model10(m.model10up(y) + m.model1short10(c1))
        release = m.model_out(y) * 110
    assert out.shape == (1, 2, 5, 7)
    torch.testing.assert_close(out * AB_SCALE, release[..., :5, :7], rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------- download


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def published_eccv16_file(tmp_path_factory):
    """An ECCV16 ``.pth`` with the published layout and random weights, its sha256
    and a few of its tensors."""
    root = tmp_path_factory.mktemp("zhang_served")
    path = root / "colorization_release_v2-test.pth"
    state = published_state("eccv16", seed=5)
    torch.save(state, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    samples = {
        k: state[k] for k in ("model1.0.weight", "model5.6.running_var", "model_out.weight")
    }
    return path, digest, samples


@pytest.fixture
def served(published_eccv16_file, monkeypatch, tmp_path):
    """Serve the file's folder on 127.0.0.1; private registry tables and cache."""
    monkeypatch.setattr(registry, "_PRETRAINED", dict(registry._PRETRAINED))
    monkeypatch.setattr(user_models, "_user_models", None)
    monkeypatch.setenv("NAPARI_COLORIZE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NAPARI_COLORIZE_DATA", str(tmp_path / "data"))
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    path, digest, samples = published_eccv16_file
    handler = functools.partial(_QuietHandler, directory=str(path.parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield path, digest, f"http://127.0.0.1:{httpd.server_address[1]}/{path.name}", samples
    httpd.shutdown()
    httpd.server_close()


def _entry(name, url, path, digest, **kw):
    published = registry.get_model("eccv16")
    return PretrainedModel(
        name, "eccv16", "test copy of the ECCV16 download", source="url",
        filename=path.name, url=url, sha256=digest, size=path.stat().st_size,
        convert=published.convert, data=published.data, **kw,
    )  # fmt: skip


def test_download_hash_convert_load_forward(served, tmp_path):
    path, digest, url, samples = served
    registry.register_pretrained(_entry("eccv16-local", url, path, digest))
    model, meta = registry.load_model("eccv16-local", progressbar=False)
    assert isinstance(model, ECCV16Colorizer)
    assert meta.arch == "eccv16"
    cache = tmp_path / "cache"
    assert sorted(p.name for p in cache.iterdir()) == [
        "colorization_release_v2-test.pth",
        "colorization_release_v2-test.safetensors",
    ]
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in samples.items())
    with torch.no_grad():
        ab = model(l_input(h=16, w=16))
    assert ab.shape == (1, 2, 16, 16)
    assert torch.isfinite(ab).all()


def test_wrong_hash_is_refused_and_nothing_kept(served, tmp_path):
    path, _, url, _ = served
    registry.register_pretrained(_entry("eccv16-bad", url, path, "0" * 64))
    with pytest.raises(DownloadError, match="does not have the expected sha256"):
        registry.load_model("eccv16-bad", progressbar=False)
    cache = tmp_path / "cache"
    assert not cache.exists() or list(cache.rglob("*")) == []


def test_annealed_entry_shares_the_download_and_decodes_as_the_paper(served, tmp_path):
    path, digest, url, _ = served
    registry.register_pretrained(
        _entry("eccv16-plain", url, path, digest, config={"decoding": "expectation"})
    )
    registry.register_pretrained(
        _entry(
            "eccv16-warm", url, path, digest,
            config={"decoding": "annealed_mean", "temperature": 0.38},
        )
    )  # fmt: skip
    plain, _ = registry.load_model("eccv16-plain", progressbar=False)
    assert not registry.needs_download("eccv16-warm")  # one file serves both
    warm, meta = registry.load_model("eccv16-warm", progressbar=False)
    assert (plain.decoding, warm.decoding) == ("expectation", "annealed_mean")
    assert warm.temperature == pytest.approx(0.38)
    assert meta.config["decoding"] == "annealed_mean"
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 1
    with torch.no_grad():
        x = l_input(h=16, w=16)
        assert not torch.allclose(plain(x), warm(x))
    published = registry.get_model("eccv16-annealed")
    assert published.url == registry.get_model("eccv16").url
    assert published.config == {"decoding": "annealed_mean", "temperature": 0.38}
