"""The speed levers of training: channels-last, fused optimizers, bf16 autocast, torch.compile."""

import os

import numpy as np
import pytest
import torch

from napari_colorize.registry import load_model
from napari_colorize.training import speed
from napari_colorize.training.events import StartEvent, StepEvent
from napari_colorize.training.task import Optim, make_optimizer
from napari_colorize.training.trainer import TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"widths": [4, 8]}


def tiny_config(out=None, **kw):
    base = {"arch": "beta", "model_config": TINY, "max_steps": 3, "batch_size": 4, "out": out}
    return TrainConfig(**{**base, "seed": 3, **kw})


def losses(trainer):
    return [e.loss for e in trainer.run() if isinstance(e, StepEvent)]


def _conv_params(channels_last: bool):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3)
    if channels_last:
        conv.to(memory_format=torch.channels_last)
    return conv


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_and_unfused_optimizers_agree(name, channels_last):
    x = torch.randn(2, 3, 6, 6)
    after = []
    for fused in (False, True):
        conv = _conv_params(channels_last)
        opt = make_optimizer(name, conv.parameters(), lr=1e-2, weight_decay=0.1, fused=fused)
        assert bool(opt.param_groups[0].get("fused")) is fused
        for _ in range(2):
            conv(x).square().mean().backward()
            opt.step()
            opt.zero_grad()
        after.append([p.detach().clone() for p in conv.parameters()])
    for a, b in zip(*after):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_fused_is_automatic_on_the_cpu_and_refused_where_missing():
    conv = _conv_params(False)
    assert make_optimizer("adamw", conv.parameters(), lr=1e-3).param_groups[0]["fused"]
    assert not make_optimizer("rmsprop", conv.parameters(), lr=1e-3).param_groups[0].get("fused")
    with pytest.raises(ValueError, match=r"no fused rmsprop.*fused_optimizer"):
        make_optimizer("rmsprop", conv.parameters(), lr=1e-3, fused=True)


def test_loaded_moments_get_the_channels_last_layout_back():
    # checkpoints hold contiguous tensors; torch's fused CPU kernels would mix up the
    # elements of a channels-last parameter and a contiguous moment
    x = torch.randn(2, 3, 6, 6)
    results = []
    for interrupted in (False, True):
        conv = _conv_params(True)
        params = list(conv.parameters())
        opt = make_optimizer("adamw", params, lr=1e-2, fused=True)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        o = Optim(opt, sched, params)
        for step in range(3):
            if interrupted and step == 1:
                state = o.state_dict()
                for s in state["optimizer"]["state"].values():
                    for k, v in s.items():
                        s[k] = v.contiguous()
                o.load_state_dict(state)
            conv(x).square().mean().backward()
            opt.step()
            opt.zero_grad()
        results.append(conv.weight.detach().clone())
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=0)


def test_channels_last_trains_like_contiguous(rgb):
    runs = {}
    for cl in (False, True):
        trainer = Trainer(tiny_config(channels_last=cl, fused_optimizer=False), rgb)
        runs[cl] = losses(trainer)
        weight = next(p for p in trainer.model.parameters() if p.dim() == 4)
        assert (
            weight.is_contiguous(memory_format=torch.channels_last) is cl or weight.shape[1] == 1
        )
        assert trainer.channels_last is cl
    np.testing.assert_allclose(runs[True], runs[False], rtol=1e-4)


def test_the_defaults_are_channels_last_and_fused_on_the_cpu(rgb):
    trainer = Trainer(tiny_config(max_steps=1, device="cpu"), rgb)
    trainer.fit()
    assert trainer.channels_last
    assert trainer.optims["model"].optimizer.param_groups[0]["fused"]
    assert trainer.amp_dtype is None  # amp=True: float32 on the CPU


def test_bf16_autocast_is_an_opt_in_on_the_cpu(rgb, tmp_path):
    trainer = Trainer(tiny_config(tmp_path / "bf16.safetensors", amp="bf16", device="cpu"), rgb)
    events = list(trainer.run())
    assert isinstance(events[0], StartEvent)
    assert events[0].amp == "bfloat16"
    assert np.isfinite(events[-1].loss)
    assert all(
        t.dtype == torch.float32
        for t in trainer.model.state_dict().values()
        if t.is_floating_point()
    )


def test_bad_amp_values_are_explained(rgb):
    with pytest.raises(ValueError, match=r"amp must be .*'bf16'"):
        tiny_config(amp="half")
    with pytest.raises(ValueError, match="fp16 runs on CUDA or MPS"):
        Trainer(tiny_config(amp="fp16", device="cpu"), rgb).fit()


@pytest.fixture
def quick_compile(monkeypatch):
    """TorchDynamo and AOTAutograd without code generation: seconds, no compiler needed."""
    monkeypatch.setattr(speed, "COMPILE_BACKEND", "aot_eager")


def _check_compiled_checkpoint(path, reference_state):
    model, _meta = load_model(path)
    keys = list(model.state_dict())
    assert not any("_orig_mod" in k for k in keys)
    assert keys == list(reference_state)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, reference_state[k].cpu())
    assert model(torch.zeros(1, 1, 8, 8)).shape == (1, 2, 8, 8)  # a plain, uncompiled model


def test_compile_saves_plain_checkpoints_and_resumes(rgb, tmp_path, quick_compile):
    out = tmp_path / "compiled.safetensors"
    trainer = Trainer(tiny_config(out, max_steps=2, compile=True), rgb, rgb[:3])
    result = trainer.fit()
    assert result.step == 2
    assert "val_delta_e" in result.metrics  # validated eagerly
    _check_compiled_checkpoint(out, trainer.model.state_dict())

    resumed = Trainer.resume(out, rgb, max_steps=3)
    assert resumed.config.compile
    assert resumed.fit().step == 3


@pytest.mark.skipif(
    os.environ.get("NAPARI_COLORIZE_COMPILE_TEST") != "1",
    reason="inductor compiles C++ (~30 s on 2 busy cores); set NAPARI_COLORIZE_COMPILE_TEST=1",
)
def test_compile_with_inductor(rgb, tmp_path):
    try:
        speed.check_compile("cpu")
    except ValueError as exc:
        pytest.skip(str(exc))
    out = tmp_path / "inductor.safetensors"
    trainer = Trainer(tiny_config(out, max_steps=2, compile=True), rgb)
    assert trainer.fit().step == 2
    _check_compiled_checkpoint(out, trainer.model.state_dict())


def test_compile_without_a_compiler_is_one_clear_line(rgb, monkeypatch):
    monkeypatch.setattr(speed, "_cpp_compiler", lambda: None)
    with pytest.raises(ValueError, match=r"C\+\+ compiler.*without --compile"):
        Trainer(tiny_config(compile=True, device="cpu"), rgb).fit()


def test_compile_failures_become_one_line(rgb, monkeypatch, quick_compile):
    from torch._dynamo.exc import BackendCompilerFailed

    def broken(self, batch, ctx):
        raise BackendCompilerFailed(lambda *a: None, RuntimeError("no cc1plus"), None)

    from napari_colorize.training.task import ColorizationTask

    monkeypatch.setattr(ColorizationTask, "training_step", broken)
    with pytest.raises(ValueError, match=r"torch.compile failed.*without --compile"):
        Trainer(tiny_config(compile=True), rgb).fit()
