"""Data-parallel training on two CPU processes (gloo) against a single-process run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
    pytest.skip("this torch has no gloo backend", allow_module_level=True)

STEPS = 6
STOP_AFTER = 2  # rank 1 asks to stop here; every rank then stops after the next step


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 255, (8, 16, 16, 3), dtype=np.uint8)
    val = rng.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    return train, val


def _config(out=None):
    from napari_colorize.training import TrainConfig

    return TrainConfig(
        arch="alpha", model_config={"width": 2}, max_steps=STEPS, batch_size=4, lr=1e-2,
        scheduler="cosine", device="cpu", amp=False, seed=3, val_every=2, out=out,
    )  # fmt: skip


def _worker(rank, folder):
    """One process: train until rank 1 asks to stop, resume to the end, save what it holds."""
    import napari_colorize.checkpoint as checkpoint_module
    from napari_colorize.training import StepEvent, TrainResult, ValidationEvent
    from napari_colorize.training.distributed import DistributedTrainer

    torch.set_num_threads(1)
    saves = []
    original = checkpoint_module.save_checkpoint

    def counting_save(*args, **kwargs):
        saves.append(1)
        return original(*args, **kwargs)

    checkpoint_module.save_checkpoint = counting_save
    out = os.path.join(folder, "run.safetensors")
    train, val = _data()
    log = {"losses": {}, "val": {}, "stopped_at": None}
    trainer = DistributedTrainer(_config(out), train, val)
    for event in trainer.run():
        if isinstance(event, StepEvent):
            log["losses"][event.step] = event.loss
            if rank == 1 and event.step == STOP_AFTER:
                trainer.request_stop()
        elif isinstance(event, ValidationEvent):
            log["val"][event.step] = event.metrics["val_loss"]
        elif isinstance(event, TrainResult):
            log["stopped_at"] = event.step
    trainer = DistributedTrainer.resume(out, train, val)
    for event in trainer.run():
        if isinstance(event, StepEvent):
            log["losses"][event.step] = event.loss
        elif isinstance(event, ValidationEvent):
            log["val"][event.step] = event.metrics["val_loss"]
    log["saves"] = len(saves)
    state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    torch.save(state, os.path.join(folder, f"rank{rank}.pt"))
    with open(os.path.join(folder, f"rank{rank}.json"), "w") as f:
        json.dump(log, f)


def test_two_gloo_processes_match_one_process_and_resume(tmp_path):
    from napari_colorize.training import StepEvent, Trainer, ValidationEvent
    from napari_colorize.training.distributed import spawn

    spawn(_worker, 2, str(tmp_path), backend="gloo")
    logs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]

    # a stop asked for on rank 1 only stopped both ranks after the same step
    assert logs[0]["stopped_at"] == logs[1]["stopped_at"] == STOP_AFTER + 1
    # only rank 0 wrote checkpoints
    assert logs[0]["saves"] >= 2
    assert logs[1]["saves"] == 0
    # both replicas hold exactly the same weights
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key

    # one process, the same global batch of 4, no interruption
    torch.manual_seed(0)
    train, val = _data()
    single = Trainer(_config(), train, val)
    losses, val_losses = {}, {}
    for event in single.run():
        if isinstance(event, StepEvent):
            losses[event.step] = event.loss
        elif isinstance(event, ValidationEvent):
            val_losses[event.step] = event.metrics["val_loss"]
    for log in logs:
        got = {int(k): v for k, v in log["losses"].items()}
        assert sorted(got) == list(range(1, STEPS + 1))
        np.testing.assert_allclose([got[s] for s in losses], list(losses.values()), rtol=1e-4)
        got_val = {int(k): v for k, v in log["val"].items()}
        for step, value in val_losses.items():
            assert got_val[step] == pytest.approx(value, rel=1e-4)
    for key, value in single.model.state_dict().items():
        np.testing.assert_allclose(states[0][key].numpy(), value.numpy(), atol=1e-5, err_msg=key)


def test_needs_a_process_group():
    from napari_colorize.training.distributed import DistributedTrainer

    with pytest.raises(RuntimeError, match="init_distributed"):
        DistributedTrainer(_config(), _data()[0])


def test_distributed_cli_relaunches_itself_under_torchrun(monkeypatch):
    from napari_colorize import cli
    from napari_colorize.training import distributed

    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    calls = []
    monkeypatch.setattr(distributed.subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    argv = ["train", "--preset", "alpha", "--steps", "2", "--distributed", "--nproc-per-node", "3"]
    monkeypatch.setattr(sys, "argv", ["napari-colorize", *argv])
    assert cli.main(argv) == 0
    (command,) = calls
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc_per_node=3" in command
    rest = command[command.index("-m", 3) + 2 :]
    assert rest == ["--preset", "alpha", "--steps", "2", "--distributed"]


@pytest.mark.skipif(
    not os.environ.get("NAPARI_COLORIZE_TORCHRUN_TEST"),
    reason="starts torchrun (~15 s on 2 busy cores); set NAPARI_COLORIZE_TORCHRUN_TEST=1",
)
def test_torchrun_two_processes_through_the_cli(tmp_path):
    from skimage.io import imsave

    image = tmp_path / "photo.png"
    imsave(image, np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    out = tmp_path / "alpha.safetensors"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "napari_colorize.train", "--preset", "alpha", "--image", str(image),
        "--steps", "2", "--batch-size", "4", "--device", "cpu", "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("alpha done: 2/2 steps") == 1  # printed by rank 0 only
    from napari_colorize.checkpoint import load_checkpoint

    assert load_checkpoint(out).training_meta["step"] == 2


def _beta_config():
    from napari_colorize.training import TrainConfig

    return TrainConfig(
        arch="beta", model_config={"widths": [4, 8]}, max_steps=4, batch_size=4, lr=1e-2,
        device="cpu", amp=False, seed=5, val_every=2,
    )  # fmt: skip


def _batchnorm_worker(rank, folder):
    """One process of a data-parallel beta run (BatchNorm) on the CPU: its losses and weights."""
    from napari_colorize.training import StepEvent
    from napari_colorize.training.distributed import DistributedTrainer
    from napari_colorize.training.sync_norm import GlobalBatchNorm2d

    torch.set_num_threads(1)
    train, val = _data()
    trainer = DistributedTrainer(_beta_config(), train, val)
    losses = {e.step: e.loss for e in trainer.run() if isinstance(e, StepEvent)}
    norms = [m for m in trainer.model.modules() if isinstance(m, GlobalBatchNorm2d)]
    state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    torch.save(state, os.path.join(folder, f"bn{rank}.pt"))
    with open(os.path.join(folder, f"bn{rank}.json"), "w") as f:
        json.dump({"losses": losses, "norms": len(norms)}, f)


def test_batchnorm_statistics_are_the_global_batchs_on_the_cpu(tmp_path):
    from napari_colorize.training import StepEvent, Trainer
    from napari_colorize.training.distributed import spawn

    spawn(_batchnorm_worker, 2, str(tmp_path), backend="gloo")
    logs = [json.loads((tmp_path / f"bn{r}.json").read_text()) for r in (0, 1)]
    state = torch.load(tmp_path / "bn0.pt", weights_only=True)
    assert logs[0]["norms"] > 0
    train, val = _data()
    single = Trainer(_beta_config(), train, val)
    losses = {e.step: e.loss for e in single.run() if isinstance(e, StepEvent)}
    got = {int(k): v for k, v in logs[0]["losses"].items()}
    np.testing.assert_allclose([got[s] for s in losses], list(losses.values()), rtol=1e-4)
    for key, value in single.model.state_dict().items():  # running statistics included
        np.testing.assert_allclose(state[key].numpy(), value.numpy(), atol=1e-4, err_msg=key)


def test_global_batchnorm_is_batchnorm_without_a_process_group():
    from napari_colorize.training.sync_norm import GlobalBatchNorm2d, convert_global_batchnorm

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3))
    weight = net[1].weight
    convert_global_batchnorm(net)
    assert isinstance(net[1], GlobalBatchNorm2d)
    assert net[1].weight is weight  # an optimizer made before keeps working
    x = torch.randn(2, 1, 8, 8)
    reference = torch.nn.BatchNorm2d(3)
    reference.load_state_dict(net[1].state_dict())
    torch.testing.assert_close(net(x), reference(net[0](x)))
