import os
import pickle
import random
from dataclasses import dataclass

import numpy as np
import pytest
import safetensors.torch
import torch
from torch import nn

from napari_colorize import __version__, atomic, checkpoint, registry
from napari_colorize.checkpoint import (
    CheckpointMeta,
    atomic_write,
    flatten_state,
    load_checkpoint,
    load_state_into,
    read_metadata,
    save_checkpoint,
    save_model,
    unflatten_state,
)
from napari_colorize.errors import CheckpointError, UnknownModelError
from napari_colorize.models import architectures


@dataclass
class TinyConfig:
    width: int = 4
    kernels: tuple = (3,)


class TinyNet(nn.Module):
    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        self.conv = nn.Conv2d(1, config.width, config.kernels[0], padding=1)
        self.head = nn.Conv2d(config.width, 2, 1)

    def forward(self, x):
        return torch.tanh(self.head(torch.relu(self.conv(x))))


class OtherNet(nn.Module):
    def __init__(self, config: TinyConfig):
        super().__init__()
        self.body = nn.Linear(3, 3)


@pytest.fixture(autouse=True)
def tiny_arch(monkeypatch):
    monkeypatch.setattr(architectures, "_ARCHITECTURES", dict(architectures._ARCHITECTURES))
    registry.register_architecture("tiny-test", TinyNet, TinyConfig, "tiny test net")
    registry.register_architecture("tiny-other", OtherNet, TinyConfig, "another layout")
    return "tiny-test"


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = TinyNet(TinyConfig(width=4))
    path = save_model(
        tmp_path / "tiny.safetensors",
        model,
        arch="tiny-test",
        data="punks:train",
        metrics={"psnr": np.float32(21.5), "auc": 0.9},
        extra={"chroma_size": 24, "hints": False},
    )
    return path, model


def files_in(folder):
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------- round trip


def test_round_trip_keeps_tensors_and_metadata(tmp_path):
    state = {
        "w": torch.randn(3, 4),
        "half": torch.randn(2, dtype=torch.bfloat16),
        "scalar": torch.tensor(2.5),
        "count": torch.tensor([1, 2, 3]),
        "mask": torch.tensor([True, False]),
        "strided": torch.randn(4, 6)[:, ::2],  # not contiguous
    }
    train = {"optimizer/x": torch.ones(2)}
    path = save_checkpoint(
        tmp_path / "m.safetensors",
        state,
        arch="tiny-test",
        config=TinyConfig(width=8),
        data={"spec": "punks:train", "n": 9000},
        metrics={"ciede2000": 3.25},
        extra={"chroma_size": 32, "hints": True},
        training_state=train,
        training_meta={"step": 7, "epoch": 1},
    )
    ckpt = load_checkpoint(path)
    assert set(ckpt.model_state) == set(state)
    for k, v in state.items():
        assert ckpt.model_state[k].dtype == v.dtype
        assert torch.equal(ckpt.model_state[k], v)
    assert set(ckpt.training_state) == {"optimizer/x"}
    assert torch.equal(ckpt.training_state["optimizer/x"], train["optimizer/x"])
    assert ckpt.training_meta == {"step": 7, "epoch": 1}
    assert ckpt.meta == CheckpointMeta(
        arch="tiny-test",
        config={"width": 8, "kernels": [3]},
        data={"spec": "punks:train", "n": 9000},
        metrics={"ciede2000": 3.25},
        extra={"chroma_size": 32, "hints": True},
        version=__version__,
        format=checkpoint.FORMAT_VERSION,
    )
    assert read_metadata(path) == ckpt.meta
    assert ckpt.path == path


def test_save_model_and_load_state_into(saved):
    path, model = saved
    ckpt = load_checkpoint(path)
    assert ckpt.meta.metrics == {"psnr": 21.5, "auc": 0.9}
    assert ckpt.meta.config == {"width": 4, "kernels": [3]}
    assert ckpt.training_state == {}
    assert ckpt.training_meta is None
    fresh = TinyNet(TinyConfig(width=4))
    load_state_into(fresh, ckpt.model_state)
    x = torch.rand(1, 1, 8, 8)
    assert torch.equal(fresh(x), model(x))


def test_tied_and_view_tensors_are_saved(tmp_path):
    shared = torch.randn(4, 4)
    state = {"a": shared, "b": shared, "row": shared[1], "t": shared.t()}
    path = save_checkpoint(tmp_path / "tied.safetensors", state, arch="tiny-test")
    loaded = load_checkpoint(path).model_state
    for k, v in state.items():
        assert torch.equal(loaded[k], v)


def test_reserved_prefix_and_non_tensors_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"may not start with '_train/'"):
        save_checkpoint(tmp_path / "x.safetensors", {"_train/a": torch.ones(1)}, arch="a")
    with pytest.raises(TypeError, match=r"model_state\['n'\] is a int, not a tensor"):
        save_checkpoint(tmp_path / "x.safetensors", {"n": 3}, arch="a")
    with pytest.raises(ValueError, match=r"metrics cannot be stored as JSON"):
        save_checkpoint(tmp_path / "x.safetensors", {}, arch="a", metrics={"f": object()})
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------- training state


def assert_same(a, b):
    assert type(a) is type(b), (a, b)
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype
        assert torch.equal(a, b)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype
        assert np.array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


def test_flatten_adam_and_rng_state_round_trip(tmp_path):
    torch.manual_seed(1)
    model = TinyNet(TinyConfig())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.99), amsgrad=True)
    for _ in range(2):
        opt.zero_grad()
        model(torch.rand(2, 1, 8, 8)).square().mean().backward()
        opt.step()
    opt_state = opt.state_dict()
    rng = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.RandomState(3).get_state(),
        "python": random.Random(4).getstate(),
        "generator": np.random.default_rng(5).bit_generator.state,
    }
    odd = {1: "int key", "__tuple__": "marker-like key", "nan": float("nan"), "inf": -np.inf}

    tensors, meta_opt = flatten_state(opt_state, prefix="optimizer/")
    rng_tensors, meta_rng = flatten_state(rng, prefix="rng/")
    odd_tensors, meta_odd = flatten_state(odd, prefix="odd/")
    assert all(k.startswith("optimizer/") for k in tensors)
    path = save_checkpoint(
        tmp_path / "resume.safetensors",
        model.state_dict(),
        arch="tiny-test",
        training_state={**tensors, **rng_tensors, **odd_tensors},
        training_meta={"optimizer": meta_opt, "rng": meta_rng, "odd": meta_odd, "step": 2},
    )
    ckpt = load_checkpoint(path)
    meta = ckpt.training_meta
    restored = unflatten_state(ckpt.training_state, meta["optimizer"])
    assert_same(restored, opt_state)
    assert_same(unflatten_state(ckpt.training_state, meta["rng"]), rng)
    assert_same(unflatten_state(ckpt.training_state, meta["odd"]), odd)

    # resuming from the restored state takes exactly the same next step
    model2 = TinyNet(TinyConfig())
    model2.load_state_dict(ckpt.model_state)
    opt2 = torch.optim.Adam(model2.parameters())
    opt2.load_state_dict(restored)
    x = torch.rand(2, 1, 8, 8)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).square().mean().backward()
        o.step()
    for p, q in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, q)


def test_unflatten_names_a_missing_tensor():
    _tensors, meta = flatten_state({"a": torch.ones(1)})
    with pytest.raises(CheckpointError, match=r"lacks the tensor 'a'"):
        unflatten_state({}, meta)
    with pytest.raises(TypeError, match=r"cannot store a object"):
        flatten_state({"x": object()})


# ----------------------------------------------------------------- atomic save


def test_crash_during_save_keeps_previous_file(saved, monkeypatch):
    path, model = saved
    before = path.read_bytes()

    def crashing_save_file(tensors, filename, metadata=None):
        data = safetensors.torch.save(tensors, metadata=metadata)
        with open(filename, "wb") as f:
            f.write(data[: len(data) // 2])
        raise RuntimeError("simulated crash mid-write")

    monkeypatch.setattr(safetensors.torch, "save_file", crashing_save_file)
    with torch.no_grad():
        model.head.weight.add_(1)
    with pytest.raises(RuntimeError, match=r"simulated crash"):
        save_model(path, model, arch="tiny-test")
    assert path.read_bytes() == before
    assert files_in(path.parent) == [path.name]
    load_checkpoint(path)


def test_atomic_write_interrupted_or_rename_failing(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def partial(tmp):
        tmp.write_text("new but incompl")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, partial)
    assert target.read_text() == "old"
    assert files_in(tmp_path) == ["out.txt"]

    def broken_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match=r"disk gone"):
        atomic_write(target, lambda tmp: tmp.write_text("new"))
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert files_in(tmp_path) == ["out.txt"]

    atomic_write(tmp_path / "sub" / "new.txt", lambda tmp: tmp.write_text("fresh"))
    assert (tmp_path / "sub" / "new.txt").read_text() == "fresh"
    mode = (tmp_path / "sub" / "new.txt").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


# ----------------------------------------------------------------- bad inputs


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.safetensors' does not exist.*napari"):
        load_checkpoint(tmp_path / "nope.safetensors")
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        read_metadata(tmp_path / "nope.safetensors")


def test_directory(saved):
    path, _ = saved
    with pytest.raises(CheckpointError, match=r"is a directory.*holds tiny\.safetensors"):
        load_checkpoint(path.parent)


def test_truncated_file(saved, tmp_path):
    path, _ = saved
    data = path.read_bytes()
    half = tmp_path / "half.safetensors"
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"half.safetensors' is truncated.*again"):
        load_checkpoint(half)
    with pytest.raises(CheckpointError, match=r"is truncated"):
        read_metadata(half)
    head = tmp_path / "head.safetensors"
    head.write_bytes(data[:40])  # cut inside the header
    with pytest.raises(CheckpointError, match=r"is truncated: its header alone needs"):
        load_checkpoint(head)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"is empty or truncated"):
        load_checkpoint(empty)


def test_garbage_and_corrupted_files(saved, tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(CheckpointError, match=r"is not a safetensors model file"):
        load_checkpoint(garbage)
    text = tmp_path / "notes.safetensors"
    text.write_text("hello, these are not weights at all")
    with pytest.raises(CheckpointError, match=r"is not a safetensors model file"):
        load_checkpoint(text)
    bad_json = tmp_path / "badjson.safetensors"
    bad_json.write_bytes((10).to_bytes(8, "little") + b"{not json}" + b"\0" * 20)
    with pytest.raises(CheckpointError, match=r"is corrupted: its safetensors header"):
        load_checkpoint(bad_json)
    # a valid header over corrupted tensor bytes of the wrong length
    path, _ = saved
    data = bytearray(path.read_bytes())
    n = int.from_bytes(data[:8], "little")
    header = bytes(data[8 : 8 + n]).replace(b'"F32"', b'"F64"', 1)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(data[:8] + header + data[8 + n :])
    with pytest.raises(CheckpointError, match=r"is corrupted: its tensors cannot be read"):
        load_checkpoint(broken)


def test_foreign_safetensors(tmp_path):
    path = tmp_path / "foreign.safetensors"
    safetensors.torch.save_file({"w": torch.ones(2)}, str(path))
    with pytest.raises(
        CheckpointError, match=r"not a napari-colorize checkpoint.*save_checkpoint"
    ):
        load_checkpoint(path)
    safetensors.torch.save_file({"w": torch.ones(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"not a napari-colorize checkpoint"):
        read_metadata(path)


def test_newer_format_is_refused(tmp_path):
    path = tmp_path / "future.safetensors"
    meta = {"format": "napari-colorize", "format_version": "99", "arch": "tiny-test"}
    safetensors.torch.save_file({"w": torch.ones(2)}, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match=r"format '99'.*upgrade napari-colorize"):
        load_checkpoint(path)


def test_unknown_architecture(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", {"w": torch.ones(1)}, arch="nope")
    with pytest.raises(UnknownModelError, match=r"architecture 'nope'.*known: alpha, beta"):
        load_checkpoint(path)
    assert read_metadata(path).arch == "nope"  # listing still works
    assert load_checkpoint(path, check_arch=False).meta.arch == "nope"


def test_missing_unexpected_and_mismatched_keys(saved, tmp_path):
    path, _model = saved
    state = dict(load_checkpoint(path).model_state)
    del state["head.bias"]
    state["extra.weight"] = torch.ones(1)
    with pytest.raises(
        CheckpointError,
        match=r"do not fit architecture 'tiny-test'.*1 missing key\(s\): head\.bias; "
        r"1 unexpected key\(s\): extra\.weight",
    ):
        load_state_into(TinyNet(TinyConfig()), state, source=path, arch="tiny-test")

    wide = TinyNet(TinyConfig(width=6))
    with pytest.raises(
        CheckpointError,
        match=r"shape mismatch\(es\): conv\.weight: file \(4, 1, 3, 3\), model \(6, 1, 3, 3\)"
        r".*fit architecture 'tiny-test' with its default config",
    ):
        load_state_into(wide, load_checkpoint(path).model_state, arch="tiny-test-wide")


def test_weights_saved_under_the_wrong_arch_name(saved, tmp_path):
    _, model = saved
    path = save_checkpoint(tmp_path / "w.safetensors", model.state_dict(), arch="tiny-other")
    with pytest.raises(
        CheckpointError,
        match=r"'tiny-other'.*missing key\(s\): body\.weight, body\.bias.*"
        r"They fit architecture 'tiny-test'",
    ):
        registry.load_model(path)


def test_config_that_does_not_fit_the_weights(saved, tmp_path):
    _, model = saved
    path = save_checkpoint(
        tmp_path / "c.safetensors", model.state_dict(), arch="tiny-test", config={"width": 5}
    )
    with pytest.raises(CheckpointError, match=r'config \{"width": 5\}.*conv\.weight: file'):
        registry.load_model(path)
    path = save_checkpoint(
        tmp_path / "d.safetensors", model.state_dict(), arch="tiny-test", config={"depth": 5}
    )
    with pytest.raises(CheckpointError, match=r"unknown config field.*depth; valid fields: width"):
        registry.load_model(path)


# ----------------------------------------------------------------- .pt / .pth


def test_pth_state_dict_is_read_with_weights_only(saved, tmp_path):
    _, model = saved
    pth = tmp_path / "plain.pth"
    torch.save(model.state_dict(), pth)
    ckpt = load_checkpoint(pth)
    assert ckpt.meta.arch is None
    assert ckpt.meta.format == 0
    for k, v in model.state_dict().items():
        assert torch.equal(ckpt.model_state[k], v)
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, wrapped)
    assert set(load_checkpoint(wrapped).model_state) == set(model.state_dict())
    assert read_metadata(pth).arch is None


class Evil:
    def __reduce__(self):
        return (print, ("this would run on load",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickled_objects_are_refused(tmp_path):
    pt = tmp_path / "model.pt"
    with open(pt, "wb") as f:
        torch.save({"w": torch.ones(1), "obj": Evil()}, f)
    with pytest.raises(CheckpointError, match=r"holds pickled Python objects.*refused"):
        load_checkpoint(pt)
    raw = tmp_path / "raw.pth"
    raw.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError, match=r"refused|not a readable PyTorch file"):
        load_checkpoint(raw)
    torch.save({"w": torch.ones(1), "n": 3}, pt)
    with pytest.raises(CheckpointError, match=r"entries \['n'\] are not tensors"):
        load_checkpoint(pt)


def test_broken_pth_and_torch_file_with_wrong_suffix(saved, tmp_path):
    _, model = saved
    pth = tmp_path / "cut.pth"
    torch.save(model.state_dict(), pth)
    pth.write_bytes(pth.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"not a readable PyTorch file"):
        load_checkpoint(pth)
    misnamed = tmp_path / "model.safetensors"
    torch.save(model.state_dict(), misnamed)
    with pytest.raises(CheckpointError, match=r"PyTorch \(torch.save\) file.*\.pt or \.pth"):
        load_checkpoint(misnamed)
