"""The network's precision, and BatchNorm folded for inference, in the Colorizer."""

import numpy as np
import pytest
import torch
from torch import nn

from napari_colorize import cli
from napari_colorize.inference import Colorizer
from napari_colorize.registry import build_model


@pytest.fixture
def batchnorm_model():
    torch.manual_seed(0)
    model = build_model("beta", {"widths": [8, 16], "norm": "batch"})
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, 1, 32, 32) * 2 - 1)
    return model  # left in training mode on purpose


def _gray(size=48):
    yy, xx = np.mgrid[0:size, 0:size]
    return ((np.sin(xx / 5) * np.cos(yy / 7) + 1) * 120).astype(np.uint8)


def test_a_module_passed_in_is_left_as_it_is(batchnorm_model):
    norms = sum(isinstance(m, nn.BatchNorm2d) for m in batchnorm_model.modules())
    colorizer = Colorizer(batchnorm_model, device="cpu", chroma_size=None)
    assert colorizer.model is not batchnorm_model
    assert not any(isinstance(m, nn.BatchNorm2d) for m in colorizer.model.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in batchnorm_model.modules()) == norms
    assert batchnorm_model.training  # its mode is its own
    batchnorm_model.eval()
    x = torch.rand(1, 1, 48, 48) * 2 - 1
    with torch.inference_mode():
        torch.testing.assert_close(colorizer.model(x), batchnorm_model(x), atol=1e-5, rtol=1e-4)


def test_named_models_are_folded_once_and_cached():
    a = Colorizer("beta-punks", device="cpu")
    b = Colorizer("beta-punks", device="cpu")
    assert a.model is b.model
    assert not any(isinstance(m, nn.BatchNorm2d) for m in a.model.modules())


def test_bf16_on_the_cpu_is_close_to_fp32(batchnorm_model):
    gray = _gray()
    fp32 = Colorizer(batchnorm_model, device="cpu", chroma_size=None).colorize(gray)
    bf16 = Colorizer(batchnorm_model, device="cpu", chroma_size=None, precision="bf16")
    assert bf16.autocast_dtype == torch.bfloat16
    out = bf16.colorize(gray)
    assert np.abs(out.astype(int) - fp32).max() <= 12
    assert Colorizer(batchnorm_model, device="cpu").autocast_dtype is None  # auto: fp32
    assert Colorizer(batchnorm_model, device="cpu", precision="fp32").autocast_dtype is None


@pytest.mark.parametrize(
    ("precision", "message"), [("fp16", "fp16 runs on CUDA or MPS"), ("int4", "precision must be")]
)
def test_impossible_precisions_are_one_clear_error(batchnorm_model, precision, message):
    with pytest.raises(ValueError, match=message):
        Colorizer(batchnorm_model, device="cpu", precision=precision)


def test_guided_methods_ignore_the_precision():
    colorizer = Colorizer("propagate", precision="fp16")
    assert colorizer.autocast_dtype is None


def test_cli_precision(tmp_path, capsys):
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "in.png", _gray(24))
    args = ["colorize", str(tmp_path / "in.png"), "--model", "beta-punks"]
    assert cli.main([*args, "-o", str(tmp_path / "a.png"), "--precision", "bf16"]) == 0
    assert iio.imread(tmp_path / "a.png").shape == (24, 24, 3)
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*args, "-o", str(tmp_path / "b.png"), "--precision", "fp8"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


class _Recording(nn.Module):
    """Records the batch size of every forward pass."""

    def __init__(self):
        super().__init__()
        self.batches = []
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        self.batches.append(x.shape[0])
        return torch.zeros((x.shape[0], 2, *x.shape[-2:])) + self.weight


def test_cpu_passes_hold_a_bounded_number_of_pixels():
    small = _Recording()
    Colorizer(small, device="cpu", chroma_size=None).colorize(np.zeros((10, 64, 64), np.uint8))
    assert small.batches == [8, 2]  # small planes: 8 per pass as before
    tiles = _Recording()
    Colorizer(tiles, device="cpu", chroma_size=None, tile=512, overlap=0).colorize(
        np.zeros((1024, 1024), np.uint8)
    )
    assert tiles.batches == [2, 2]  # four 512x512 tiles, two per pass
    given = _Recording()
    Colorizer(given, device="cpu", chroma_size=None, tile=512, overlap=0, batch_size=4).colorize(
        np.zeros((1024, 1024), np.uint8)
    )
    assert given.batches == [4]  # a batch size the user gives is kept


# ------------------------------------------- "auto": bf16 where it keeps the colours


@pytest.fixture
def amx(monkeypatch):
    """Pretend the CPU runs bf16 on AMX, whatever this machine has."""
    monkeypatch.setattr("napari_colorize.inference.colorizer.cpu_has_fast_bf16", lambda: True)
    monkeypatch.delenv("NAPARI_COLORIZE_PRECISION")


class _DtypeRecording(nn.Module):
    """A small conv net that records the dtype its convolution computes in."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.dtypes = []

    def forward(self, x):
        y = self.conv(x)
        self.dtypes.append(y.dtype)
        return torch.tanh(y)


def _run_messages(colorizer, gray):
    return [event.message for event in colorizer.run(gray)]


def _many_tiles():
    return _gray(160)  # 5 x 5 tiles of 48 with overlap 16


@pytest.mark.parametrize(("limit", "chosen"), [(10.0, "bf16"), (-1.0, "fp32")])
def test_auto_checks_bf16_on_the_run_own_data(amx, monkeypatch, limit, chosen):
    monkeypatch.setattr("napari_colorize.inference.network.MAX_COLOUR_CHANGE", limit)
    net = _DtypeRecording()
    colorizer = Colorizer(net, device="cpu", chroma_size=None, tile=48, overlap=16)
    messages = _run_messages(colorizer, _many_tiles())
    verdict = [m for m in messages if m.startswith("precision")]
    assert len(verdict) == 1
    assert verdict[0].startswith(f"precision {chosen}: bf16 moves colours by ")
    assert colorizer.precision_used == chosen
    # the check ran its windows twice (float32, bf16), then the 25 tiles in the chosen precision
    expected = torch.bfloat16 if chosen == "bf16" else torch.float32
    assert net.dtypes[:2] == [torch.float32, torch.bfloat16]
    assert len(net.dtypes) > 2
    assert net.dtypes[2:] == [expected] * (len(net.dtypes) - 2)


def test_the_check_measures_the_composed_colours(amx):
    from napari_colorize.inference.precision import colour_change

    lightness = torch.linspace(0, 100, 2 * 32 * 32).reshape(2, 1, 32, 32)  # two windows

    def forward(x, cond, dtype):  # bf16 moves b* by 0.05 of its range (6.4 units)
        ab = torch.full((x.shape[0], 2, *x.shape[-2:]), 0.1)
        if dtype is not None:
            ab[:, 1] += 0.05
        return ab

    change = colour_change(forward, lightness, {}, torch.bfloat16)
    assert 1.0 < change < 10.0
    assert colour_change(lambda x, c, d: torch.zeros(2, 2, 32, 32), lightness, {}, None) == 0.0


def test_small_runs_and_forced_precisions_are_not_checked(amx):
    net = _DtypeRecording()
    small = Colorizer(net, device="cpu", chroma_size=None, tile=48, overlap=16)
    assert not any(m.startswith("precision") for m in _run_messages(small, _gray(48)))
    assert net.dtypes == [torch.float32]
    forced = Colorizer(net, device="cpu", chroma_size=None, tile=48, overlap=16, precision="fp32")
    assert not any(m.startswith("precision") for m in _run_messages(forced, _many_tiles()))
    assert forced.precision_used == "fp32"
    bf16 = Colorizer(net, device="cpu", chroma_size=None, tile=48, overlap=16, precision="bf16")
    _run_messages(bf16, _many_tiles())
    assert bf16.precision_used == "bf16"


def test_without_amx_auto_stays_float32():
    net = _DtypeRecording()
    colorizer = Colorizer(net, device="cpu", chroma_size=None, tile=48, overlap=16)
    assert not any(m.startswith("precision") for m in _run_messages(colorizer, _many_tiles()))
    assert set(net.dtypes) == {torch.float32}


def test_gpu_passes_follow_the_free_memory():
    from napari_colorize.inference.network import MAX_GPU_BATCH, pixels_that_fit

    assert pixels_that_fit(8 * 2**30, 2048.0) == 2**21  # half of 8 GiB at 2 KiB a pixel
    assert pixels_that_fit(100, 1e9) == 1  # never nothing: the OOM fallback takes over
    assert pixels_that_fit(2**30, 0.0) == 2**29  # a pixel costs at least a byte
    assert MAX_GPU_BATCH >= 16  # at least the former fixed GPU batch


def test_the_check_samples_nine_windows_over_the_plane():
    from napari_colorize.inference.precision import check_windows

    windows = check_windows((1000, 600), side=128)
    assert len(windows) == 9
    assert {(r.stop - r.start, c.stop - c.start) for r, c in windows} == {(128, 128)}
    assert sorted({r.start for r, _ in windows}) == [0, 436, 872]  # top, middle, bottom
    assert sorted({c.start for _, c in windows}) == [0, 236, 472]
    small = check_windows((50, 300), side=128)  # windows no larger than the plane
    assert {(r.stop - r.start, c.stop - c.start) for r, c in small} == {(50, 128)}
    assert len(small) == 3


def _checkpoint_recording(tmp_path, metrics):
    from napari_colorize.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = build_model("beta", {"widths": [4, 8]})
    return save_checkpoint(
        tmp_path / "model.safetensors", model.state_dict(), arch="beta",
        config=model.config.to_dict(), metrics=metrics,
    )  # fmt: skip


@pytest.mark.parametrize(("recorded", "chosen"), [(0.04, "bf16"), (0.3, "fp32")])
def test_auto_follows_the_change_the_checkpoint_records_on_its_quality_set(
    amx, tmp_path, recorded, chosen
):
    path = _checkpoint_recording(tmp_path, {"bf16_change": recorded, "data": "punks:test"})
    colorizer = Colorizer(str(path), device="cpu", chroma_size=None, tile=48, overlap=16)
    messages = _run_messages(colorizer, _many_tiles())
    # decided from the record, from the first message on: no check of the run's own data
    assert messages[0].endswith(
        f"; precision {chosen}: bf16 moves this model's colours by {recorded:.3f} "
        f"CIEDE2000 on punks:test, {'within' if chosen == 'bf16' else 'more than'} 0.1"
    )
    assert not any(m.startswith("precision") for m in messages)
    assert colorizer.precision_used == chosen
    assert colorizer.bf16_change == recorded
    # small runs too: the record costs nothing to read
    colorizer.colorize(_gray(32))
    assert colorizer.precision_used == chosen


def test_a_checkpoint_without_the_record_is_checked_on_the_run_own_data(amx, tmp_path):
    path = _checkpoint_recording(tmp_path, {"ciede2000": 3.0, "data": "punks:test"})
    colorizer = Colorizer(str(path), device="cpu", chroma_size=None, tile=48, overlap=16)
    messages = _run_messages(colorizer, _many_tiles())
    assert sum(m.startswith("precision") for m in messages) == 1
    assert "this model's colours" not in messages[0]


@pytest.mark.parametrize("bad", [True, "0.01", float("nan"), -1.0, None])
def test_a_record_that_is_not_a_number_is_ignored(bad):
    from napari_colorize.checkpoint import CheckpointMeta
    from napari_colorize.inference.precision import quality_set_change

    assert quality_set_change(CheckpointMeta(arch="beta", metrics={"bf16_change": bad})) is None
    assert quality_set_change(None) is None
    meta = CheckpointMeta(arch="beta", metrics={"bf16_change": 0.05})
    assert quality_set_change(meta) == (0.05, "its quality set")


def test_precision_change_measures_bf16_against_float32_on_a_data_set(tmp_path, batchnorm_model):
    from skimage.io import imsave

    from napari_colorize.evaluation import precision_change

    rng = np.random.default_rng(0)
    for i in range(3):
        imsave(tmp_path / f"{i}.png", (rng.random((40, 36, 3)) * 255).astype(np.uint8))
    change = precision_change(batchnorm_model, data=tmp_path, batch_size=2)
    assert 0.0 < change < 5.0  # bf16 rounds: the colours move, a little
    with pytest.raises(ValueError, match="'bf16' or 'fp16'"):
        precision_change(batchnorm_model, data=tmp_path, precision="fp32")


def test_bundled_models_record_their_bf16_change_on_punks_test():
    from napari_colorize.registry import load_model

    for name in ("beta-punks", "full-punks", "gan-punks"):
        metrics = load_model(name, device="cpu")[1].metrics
        assert metrics["data"] == "punks:test"
        assert 0.0 < metrics["bf16_change"] <= 0.1


def test_the_environment_sets_what_auto_means(amx, monkeypatch):
    net = _DtypeRecording()
    monkeypatch.setenv("NAPARI_COLORIZE_PRECISION", "fp32")
    colorizer = Colorizer(net, device="cpu", chroma_size=None, tile=48, overlap=16)
    assert not any(m.startswith("precision") for m in _run_messages(colorizer, _many_tiles()))
    assert set(net.dtypes) == {torch.float32}
    # an explicit precision wins over the environment
    bf16 = Colorizer(net, device="cpu", chroma_size=None, precision="bf16")
    bf16.colorize(_gray(32))
    assert bf16.precision_used == "bf16"
    monkeypatch.setenv("NAPARI_COLORIZE_PRECISION", "double")
    with pytest.raises(ValueError, match="NAPARI_COLORIZE_PRECISION='double' is not a precision"):
        Colorizer(net, device="cpu")
