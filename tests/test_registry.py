import hashlib
import socket
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from napari_colorize import registry, user_models
from napari_colorize.checkpoint import read_metadata, save_checkpoint
from napari_colorize.errors import CheckpointError, ColorizeError, DownloadError, UnknownModelError
from napari_colorize.models import architectures
from napari_colorize.registry import PretrainedModel


@dataclass
class TinyConfig:
    width: int = 4
    kernels: tuple = (3,)
    names: list = field(default_factory=list)


class TinyNet(nn.Module):
    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        self.conv = nn.Conv2d(1, config.width, config.kernels[0], padding=1)
        self.head = nn.Conv2d(config.width, 2, 1)

    def forward(self, x):
        return torch.tanh(self.head(torch.relu(self.conv(x))))


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """A private copy of the registry tables and private cache/data folders."""
    monkeypatch.setattr(architectures, "_ARCHITECTURES", dict(architectures._ARCHITECTURES))
    monkeypatch.setattr(registry, "_PRETRAINED", dict(registry._PRETRAINED))
    monkeypatch.setattr(user_models, "_user_models", None)
    monkeypatch.setenv("NAPARI_COLORIZE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NAPARI_COLORIZE_DATA", str(tmp_path / "data"))
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    registry.register_architecture("tiny-test", TinyNet, TinyConfig, "tiny test net")


@pytest.fixture
def tiny_file(tmp_path):
    torch.manual_seed(0)
    model = TinyNet(TinyConfig())
    path = save_checkpoint(
        tmp_path / "tiny.safetensors",
        model.state_dict(),
        arch="tiny-test",
        config=model.config,
        data="punks:train",
        metrics={"psnr": 20.0},
    )
    return path, model


# ----------------------------------------------------------------- architectures


def test_architecture_table():
    names = registry.architectures()
    for arch in ("alpha", "beta", "full", "gan", "inception", "eccv16", "siggraph17"):
        assert arch in names
    info = {d["name"]: d for d in registry.describe_architectures()}
    assert info["full"]["model"] == "napari_colorize.models.full:FusionColorizer"
    assert info["tiny-test"]["config"].endswith(":TinyConfig")


def test_build_model_and_config_coercion():
    model = registry.build_model("tiny-test", {"width": 6, "kernels": [5], "names": ["a"]})
    assert isinstance(model, TinyNet)
    assert model.config == TinyConfig(width=6, kernels=(5,), names=["a"])
    assert registry.build_model("tiny-test").config == TinyConfig()
    assert registry.build_model("tiny-test", TinyConfig(width=2)).conv.out_channels == 2


def test_build_model_errors():
    with pytest.raises(
        UnknownModelError, match=r"unknown architecture 'nope'; known.*alpha, beta"
    ):
        registry.build_model("nope", {})
    with pytest.raises(
        ValueError, match=r"unknown config field.*depth; valid fields: width, kern"
    ):
        registry.build_model("tiny-test", {"depth": 3})
    with pytest.raises(TypeError, match=r"must be a dict or a TinyConfig"):
        registry.build_model("tiny-test", 3)
    registry.register_architecture(
        "later", "napari_colorize.models.not_written_yet:Later", TinyConfig
    )
    with pytest.raises(ColorizeError, match=r"needs the module napari_colorize.models.not_wri"):
        registry.build_model("later")
    with pytest.raises(ValueError, match=r"already registered"):
        registry.register_architecture("tiny-test", TinyNet, TinyConfig)


# ----------------------------------------------------------------- named models


def test_builtin_entries_listing():
    rows = {m["name"]: m for m in registry.list_models()}
    for name in registry._BUNDLED:
        assert (name in rows) == (registry.WEIGHTS_DIR / f"{name}.safetensors").is_file()
    for name, size in (("eccv16", 128_976_165), ("siggraph17", 136_787_426)):
        row = rows[name]
        assert row["source"] == "url"
        assert row["arch"] == name
        assert row["size"] == size
        assert row["available"] is False
        assert row["url"].startswith("https://colorizers.s3.us-east-2.amazonaws.com/")
    entry = registry.get_model("eccv16")
    assert entry.sha256.startswith("9b330a0b")
    assert entry.convert.endswith(":convert_state_dict")


def test_register_and_load_by_name_and_path(tiny_file):
    path, model = tiny_file
    registry.register_model("my-tiny", path, description="test model")
    row = next(m for m in registry.list_models() if m["name"] == "my-tiny")
    card = row.pop("card")
    assert card == registry.model_card("my-tiny")
    assert card["purpose"] == "CryptoPunks 24x24 pixel art only"  # from its data
    assert card["figures"] == {"psnr": 20.0}
    assert row == {
        "name": "my-tiny",
        "arch": "tiny-test",
        "source": "path",
        "size": path.stat().st_size,
        "data": "punks:train",
        "metrics": {"psnr": 20.0},
        "available": True,
        "description": "test model",
        "path": str(path.resolve()),
        "url": None,
    }
    x = torch.rand(1, 1, 8, 8)
    for key in ("my-tiny", path, str(path)):
        loaded, meta = registry.load_model(key)
        assert not loaded.training
        assert meta.arch == "tiny-test"
        assert meta.data == "punks:train"
        assert torch.equal(loaded(x), model(x))
    assert registry.resolve_weights("my-tiny") == path.resolve()


def test_unknown_names_and_paths(tmp_path):
    with pytest.raises(UnknownModelError, match=r"unknown model 'nope'; registered models: .*"
                       "eccv16.*A checkpoint file path"):  # fmt: skip
        registry.load_model("nope")
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        registry.load_model(tmp_path / "missing.safetensors")
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        registry.load_model("some/dir/missing.safetensors")
    with pytest.raises(ValueError, match=r"invalid model name"):
        registry.register_model("bad name", tmp_path)
    with pytest.raises(ValueError, match=r"name of a built-in model"):
        registry.register_model("eccv16", tmp_path)


def test_register_refuses_foreign_files(tmp_path):
    pth = tmp_path / "plain.pth"
    torch.save(TinyNet(TinyConfig()).state_dict(), pth)
    with pytest.raises(CheckpointError, match=r"plain PyTorch state dict"):
        registry.register_model("plain", pth)
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        registry.register_model("gone", tmp_path / "gone.safetensors")


def test_persisted_user_models(tiny_file, monkeypatch):
    path, _ = tiny_file
    registry.register_model("kept", path, description="persisted", persist=True)
    registry.register_model("session-only", path)
    assert registry.user_models_file().is_file()
    monkeypatch.setattr(user_models, "_user_models", None)  # a new session
    names = registry.model_names()
    assert "kept" in names
    assert "session-only" not in names
    assert registry.get_model("kept").description == "persisted"

    moved = path.with_name("moved.safetensors")
    path.rename(moved)
    monkeypatch.setattr(user_models, "_user_models", None)
    with pytest.warns(UserWarning, match=r"'kept' points to .* no longer exists; skipped"):
        names = registry.model_names()
    assert "kept" not in names

    registry.unregister_model("kept")
    monkeypatch.setattr(user_models, "_user_models", None)
    assert "kept" not in registry.model_names()


def test_plain_pth_needs_an_arch(tmp_path):
    model = TinyNet(TinyConfig())
    pth = tmp_path / "weights.pth"
    torch.save(model.state_dict(), pth)
    with pytest.raises(CheckpointError, match=r"plain PyTorch state dict without an arch.*arch="):
        registry.load_model(pth)
    loaded, meta = registry.load_model(pth, arch="tiny-test", config={"width": 4})
    assert meta.arch == "tiny-test"
    x = torch.rand(1, 1, 8, 8)
    assert torch.equal(loaded(x), model(x))


# ----------------------------------------------------------------- downloads


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cached_files():
    folder = registry.cache_dir()
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_download_safetensors_then_reuse(server, tiny_file):
    root, url, requests = server
    src, model = tiny_file
    (root / "tiny-remote.safetensors").write_bytes(src.read_bytes())
    registry.register_pretrained(
        PretrainedModel(
            "tiny-remote", "tiny-test", "served locally", source="url",
            filename="tiny-remote.safetensors", url=f"{url}/tiny-remote.safetensors",
            sha256=sha256(src), size=src.stat().st_size,
        )
    )  # fmt: skip
    seen = []
    path = registry.resolve_weights("tiny-remote", progress=lambda d, t: seen.append((d, t)))
    assert path == registry.cache_dir() / "tiny-remote.safetensors"
    assert seen[-1] == (src.stat().st_size, src.stat().st_size)
    assert requests == ["/tiny-remote.safetensors"]
    loaded, meta = registry.load_model("tiny-remote", progressbar=False)
    assert meta.arch == "tiny-test"
    x = torch.rand(1, 1, 8, 8)
    assert torch.equal(loaded(x), model(x))
    assert len(requests) == 1  # reused from the cache
    row = next(m for m in registry.list_models() if m["name"] == "tiny-remote")
    assert row["available"] is True
    assert row["metrics"] == {"psnr": 20.0}


def test_pth_download_is_converted_once(server, tmp_path):
    root, url, requests = server
    model = TinyNet(TinyConfig())
    pth = root / "published-1234.pth"
    # a foreign layout: every key carries a "module." prefix (as DataParallel saves)
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, pth)
    calls = []

    def convert(state):
        calls.append(1)
        return {k.removeprefix("module."): v for k, v in state.items()}

    registry.register_pretrained(
        PretrainedModel(
            "published", "tiny-test", "foreign weights", source="url",
            filename="published-1234.pth", url=f"{url}/published-1234.pth",
            sha256=sha256(pth), size=pth.stat().st_size, convert=convert,
            data="somewhere", extra={"hints": False},
        )
    )  # fmt: skip
    first = registry.resolve_weights("published", progressbar=False)
    assert first == registry.cache_dir() / "published-1234.safetensors"
    meta = read_metadata(first)
    assert meta.arch == "tiny-test"
    assert meta.data == "somewhere"
    assert meta.extra["source"]["sha256"] == sha256(pth)
    assert registry.resolve_weights("published") == first
    loaded, _ = registry.load_model("published")
    x = torch.rand(1, 1, 8, 8)
    assert torch.equal(loaded(x), model(x))
    assert len(calls) == 1
    assert len(requests) == 1
    assert cached_files() == ["published-1234.pth", "published-1234.safetensors"]

    # a copy fetched elsewhere and loaded by path is recognised and converted too
    copy = tmp_path / "published-1234.pth"
    copy.write_bytes(pth.read_bytes())
    loaded, meta = registry.load_model(copy)
    assert meta.arch == "tiny-test"
    assert torch.equal(loaded(x), model(x))


def test_wrong_hash_is_refused_and_nothing_kept(server, tiny_file):
    root, url, requests = server
    src, _ = tiny_file
    (root / "tampered.safetensors").write_bytes(src.read_bytes())
    registry.register_pretrained(
        PretrainedModel(
            "tampered", "tiny-test", source="url", filename="tampered.safetensors",
            url=f"{url}/tampered.safetensors", sha256="0" * 64, size=src.stat().st_size,
        )
    )  # fmt: skip
    with pytest.raises(DownloadError, match=r"does not have the expected sha256 0{64}.*refused"):
        registry.resolve_weights("tampered", progressbar=False)
    assert requests == ["/tampered.safetensors"]
    assert cached_files() == []


def test_unreachable_url_gives_offline_advice():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/weights.pth"
    registry.register_pretrained(
        PretrainedModel(
            "offline", "tiny-test", source="url", filename="weights.pth", url=url,
            sha256="ab" * 32, size=10,
        )
    )  # fmt: skip
    with pytest.raises(
        DownloadError,
        match=rf"could not download .*'offline' from {url}.*fetch {url} on another one.*"
        r"copy it to .*weights\.pth.*--model PATH",
    ):
        registry.load_model("offline", progressbar=False)
    assert cached_files() == []


def test_every_model_has_a_card():
    """Bundled, downloadable and user models: purpose, training data, sizes, figures."""
    rows = registry.list_models()
    assert rows
    for row in rows:
        card = row["card"]
        for key in ("purpose", "trained_on", "input", "summary", "figures"):
            assert card[key] is not None, (row["name"], key)
        assert card["download_size"] or row["source"] == "path", row["name"]
    cards = {row["name"]: row["card"] for row in rows}
    eccv16 = cards["eccv16"]
    assert eccv16["purpose"].startswith("natural photographs")
    assert eccv16["needs_download"] is True
    assert eccv16["summary"].endswith("129.0 MB download")
    assert cards["inception-imagenet"]["download_size_approx"] is True
    if "beta-punks" in cards:  # bundled: its measured figures come from its file
        assert cards["beta-punks"]["figures"]["ciede2000_fg"] > 0
        assert cards["beta-punks"]["summary"].startswith("CryptoPunks 24x24 pixel art only; ")
    with pytest.raises(UnknownModelError, match="unknown model 'nope'"):
        registry.model_card("nope")
