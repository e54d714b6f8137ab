"""The inference engine: shapes, lightness, tiling, lazy stacks, stop, OOM, chroma size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from napari_colorize import images, inference
from napari_colorize.color import rgb_to_lab
from napari_colorize.inference import ColorizeProgress, Colorizer, model_cache, reading, tiling


class TinyNet(nn.Module):
    """Two 3x3 convs (receptive field 5x5), saturated colours; records input shapes."""

    def __init__(self, gain=3.0):
        super().__init__()
        torch.manual_seed(0)
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 2, 3, padding=1)
        self.gain = gain
        self.shapes = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return torch.tanh(self.gain * self.c2(torch.relu(self.c1(x))))


def _events_and_result(generator):
    """The events a generator yields, and the value it returns."""
    events = []
    while True:
        try:
            events.append(next(generator))
        except StopIteration as stop:
            return events, stop.value


class CountingArray:
    """A lazy-looking array that counts reads and remembers the largest one."""

    def __init__(self, data):
        self.data = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.ndim = data.ndim
        self.reads = 0
        self.largest = 0

    def __getitem__(self, key):
        part = np.asarray(self.data[key])
        self.reads += 1
        self.largest = max(self.largest, part.size)
        return part


def _gray(shape, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    # smooth structure plus noise, so the net sees edges at every scale
    yy, xx = np.meshgrid(*(np.linspace(0, 1, n) for n in shape[-2:]), indexing="ij")
    base = 0.5 + 0.3 * np.sin(7 * xx) * np.cos(5 * yy)
    values = np.clip(base + 0.15 * rng.standard_normal(shape), 0, 1)
    return (values * info.max).astype(dtype)


@pytest.fixture
def net():
    return TinyNet()


def _colorizer(net, **kw):
    kw.setdefault("device", "cpu")
    return Colorizer(net, **kw)


# ------------------------------------------------------------------ shapes


@pytest.mark.parametrize(
    ("shape", "dtype", "rgb"),
    [
        ((20, 28), np.uint8, None),
        ((20, 28), np.uint16, None),
        ((20, 28), np.float32, None),
        ((20, 28, 3), np.uint8, None),
        ((20, 28, 4), np.uint8, None),
        ((3, 20, 28), np.uint16, None),
        ((2, 3, 20, 28), np.uint8, None),
        ((2, 20, 28, 3), np.uint8, True),
    ],
)
def test_output_shape_and_dtype(net, shape, dtype, rgb):
    rng = np.random.default_rng(1)
    if np.dtype(dtype).kind == "f":
        array = rng.random(shape).astype(dtype)
    elif shape[-1] in (3, 4):
        array = rng.integers(0, 256, shape).astype(dtype)
    else:
        array = _gray(shape, dtype)
    out = _colorizer(net).colorize(array, rgb=rgb)
    layout = images.describe(array, rgb=rgb)
    assert out.shape == layout.output_shape
    assert out.dtype == np.uint8
    assert out.std() > 0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_lightness_is_kept(dtype):
    # a high gain pushes most colours out of the sRGB gamut: L must survive anyway
    net = TinyNet(gain=20.0)
    gray = _gray((24, 32), dtype)
    out = _colorizer(net, chroma_size=None).colorize(gray)
    lab = rgb_to_lab(out)
    expected, _ = images.to_lightness(gray)
    assert np.abs(lab[..., 0] - expected).max() < 0.6  # uint8 quantisation of RGB
    assert np.abs(lab[..., 1:]).mean() > 5  # and it is really coloured


def test_rgb_input_keeps_its_own_lightness(net):
    rgb = np.random.default_rng(3).integers(0, 256, (16, 20, 3)).astype(np.uint8)
    out = _colorizer(net).colorize(rgb)
    assert np.abs(rgb_to_lab(out)[..., 0] - rgb_to_lab(rgb)[..., 0]).max() < 0.6


def test_predict_lab_and_ab(net):
    gray = _gray((20, 24))
    colorizer = _colorizer(net)
    lab = colorizer.predict_lab(gray)
    ab = colorizer.predict_ab(gray)
    assert lab.shape == (20, 24, 3)
    assert lab.dtype == np.float32
    assert ab.shape == (20, 24, 2)
    assert ab.dtype == np.float32
    np.testing.assert_allclose(lab[..., 1:], ab, atol=1e-5)
    np.testing.assert_allclose(lab[..., 0], images.to_lightness(gray)[0], atol=1e-5)
    assert np.abs(ab).max() <= 128


# ---------------------------------------------------------------- tiling


def test_tiled_prediction_matches_untiled(net):
    gray = _gray((70, 90))
    whole = _colorizer(net, chroma_size=None, tile=512).predict_ab(gray)
    tiled_net = TinyNet()
    tiled = _colorizer(tiled_net, chroma_size=None, tile=32, overlap=12).predict_ab(gray)
    shapes = {s[-2:] for s in tiled_net.shapes}
    assert (32, 32) in shapes
    assert all(h <= 32 and w <= 32 for h, w in shapes)  # the last row and column end at the edge
    assert len(tiled_net.shapes) > 1
    np.testing.assert_allclose(tiled, whole, atol=1e-3)


@pytest.mark.parametrize("align", [1, 8])
@pytest.mark.parametrize("fade", [None, 16])
def test_tile_weights_are_a_partition_of_unity(align, fade):
    cases = [(100, 32, 8), (33, 32, 16), (500, 64, 32), (257, 128, 60), (513, 512, 256)]
    for n, tile, overlap in cases:
        size, tiles = tiling.axis_tiles(n, tile, overlap, align, fade)
        assert size <= tile
        total = np.zeros(n)
        for start, weight in tiles:
            assert len(weight) == min(size, n - start)  # the last ends at the edge
            assert start % align == 0
            total[start : start + len(weight)] += weight
        np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_tiles_start_on_the_network_grid_and_match_the_whole_image():
    """A network that downsamples by 8 colours a tile as the whole image only on its grid."""
    torch.manual_seed(0)
    net = nn.Sequential(  # stride 2 three times, then back: a grid of 8
        nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(4, 2, 3, stride=2, padding=1), nn.Upsample(scale_factor=8), nn.Tanh(),
    )  # fmt: skip
    net.downsampling = 8
    gray = _gray((200, 200))
    whole = _colorizer(net, chroma_size=None, tile=512).predict_ab(gray)
    tiled = _colorizer(net, chroma_size=None, tile=128, overlap=64).predict_ab(gray)
    np.testing.assert_allclose(tiled, whole, atol=1e-4)


# ------------------------------------------------------------ chroma size


def test_chroma_size_sets_the_working_size(net):
    gray = _gray((60, 120))
    colorizer = _colorizer(net, chroma_size=30)
    assert colorizer.working_shape((60, 120)) == (15, 30)
    out = colorizer.colorize(gray)
    assert out.shape == (60, 120, 3)
    assert net.shapes == [(1, 1, 15, 30)]
    net.shapes.clear()
    _colorizer(net, chroma_size=None).colorize(gray)
    assert net.shapes == [(1, 1, 60, 120)]
    net.shapes.clear()
    _colorizer(net, chroma_size=500).colorize(gray)  # never enlarged
    assert net.shapes == [(1, 1, 60, 120)]
    assert _colorizer(net).chroma_size == inference.DEFAULT_CHROMA_SIZE


def test_chroma_size_default_comes_from_the_checkpoint(net, monkeypatch):
    class Meta:
        extra = {"chroma_size": 48}  # noqa: RUF012

    monkeypatch.setattr(model_cache, "cached_model", lambda name, device: (net, Meta()))
    assert Colorizer("some-model", device="cpu").chroma_size == 48
    assert Colorizer("some-model", device="cpu", chroma_size=0).chroma_size is None


def test_auto_working_size_depends_on_the_image(net, monkeypatch):
    """A punks model's 24 px applies to punks, not to photos; native models stay native."""

    class Punks:
        extra = {"chroma_size": 24}  # noqa: RUF012
        data = "cryptopunks train split"

    class Native:
        extra = {"image_size": 16, "native_resolution": True}  # noqa: RUF012
        data = "layers: tissue"

    metas = {"punks": Punks(), "native": Native()}
    monkeypatch.setattr(model_cache, "cached_model", lambda name, device: (net, metas[name]))
    punks = Colorizer("punks", device="cpu")
    assert punks.chroma_size == 24
    assert punks.working_shape((48, 48)) == (24, 24)  # a punk shown 2x
    assert punks.working_shape((600, 300)) == (256, 128)  # a photo: the default
    assert Colorizer("punks", device="cpu", chroma_size=24).working_shape((600, 300)) == (24, 12)
    native = Colorizer("native", device="cpu", tile=32, overlap=8)
    assert native.chroma_size is None
    assert native.working_shape((300, 200)) == (300, 200)
    net.shapes.clear()
    native.colorize(_gray((40, 70)))
    # tiled at full resolution: 2 x 3 tiles of at most 32 px
    assert all(max(shape[-2:]) <= 32 for shape in net.shapes)
    assert sum(shape[0] for shape in net.shapes) == 6


def test_upsampled_ab_matches_torch_bilinear(net):
    gray = _gray((50, 70))
    colorizer = _colorizer(net, chroma_size=20)
    ab = colorizer.predict_ab(gray)
    # the network's output at 14x20, upsampled by torch in one go
    lightness = torch.from_numpy(images.to_lightness(gray)[0])[None, None]
    work = torch.nn.functional.interpolate(lightness, size=(14, 20), mode="area")
    with torch.no_grad():
        pred = net(work / 50 - 1) * 128
    ref = torch.nn.functional.interpolate(pred, size=(50, 70), mode="bilinear")
    np.testing.assert_allclose(ab, ref[0].permute(1, 2, 0).numpy(), atol=1e-3)


# ------------------------------------------------------------ stacks, lazy


def test_stack_is_read_plane_by_plane_and_scaled_consistently(net):
    stack = _gray((6, 16, 20), np.uint16)
    lazy = CountingArray(stack)
    out = _colorizer(net, batch_size=4).colorize(lazy)
    plane = 16 * 20
    assert lazy.largest <= plane  # never more than one plane per read
    assert lazy.reads <= 6 + 6  # each plane once, plus the intensity-range sample
    expected = _colorizer(TinyNet()).colorize(stack)
    np.testing.assert_array_equal(out, expected)
    # each plane as the stack sees it, not on its own range
    lo, hi = images.intensity_range(stack)
    single = _colorizer(TinyNet()).colorize(stack[2], value_range=(lo, hi))
    np.testing.assert_array_equal(out[2], single)


def test_dask_and_zarr_stay_lazy(net, tmp_path):
    da = pytest.importorskip("dask.array")
    zarr = pytest.importorskip("zarr")
    stack = _gray((5, 16, 20), np.uint16)
    counter = CountingArray(stack)
    lazy = da.from_array(counter, chunks=(1, 16, 20), asarray=False)
    counter.reads = counter.largest = 0  # dask peeks at creation
    colorizer = _colorizer(net)
    expected = colorizer.colorize(stack)
    out = zarr.open(str(tmp_path / "out.zarr"), mode="w", shape=(5, 16, 20, 3),
                    chunks=(1, 16, 20, 3), dtype="uint8")  # fmt: skip
    result = colorizer.colorize(lazy, out=out)
    assert result is out
    assert counter.largest <= 16 * 20
    assert counter.reads <= 5 + 5
    np.testing.assert_array_equal(out[:], expected)
    source = zarr.open(str(tmp_path / "in.zarr"), mode="w", shape=stack.shape,
                       chunks=(1, 16, 20), dtype="uint16")  # fmt: skip
    source[:] = stack
    np.testing.assert_array_equal(colorizer.colorize(source), expected)


def test_memmap_output(net, tmp_path):
    stack = _gray((3, 12, 16))
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.uint8,
                                    shape=(3, 12, 16, 3))  # fmt: skip
    _colorizer(net).colorize(stack, out=out)
    out.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), _colorizer(net).colorize(stack))


def test_bad_out_is_refused(net):
    gray = _gray((12, 16))
    with pytest.raises(ValueError, match="shape"):
        _colorizer(net).colorize(gray, out=np.zeros((12, 16, 4), np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        _colorizer(net).colorize(gray, out=np.zeros((12, 16, 3), np.float32))


# ------------------------------------------------------------- progress, stop


def test_run_yields_progress_and_returns_the_result(net):
    stack = _gray((4, 12, 16))
    colorizer = _colorizer(net, batch_size=2)
    events, result = _events_and_result(colorizer.run(stack))
    assert all(isinstance(e, ColorizeProgress) for e in events)
    assert events[-1].done == events[-1].total == 4 * 2
    assert [e.done for e in events] == sorted(e.done for e in events)
    assert result.shape == (4, 12, 16, 3)
    assert not colorizer.stopped


def test_stop_between_planes(net):
    stack = _gray((6, 12, 16))
    colorizer = _colorizer(net, batch_size=1)
    out = np.zeros((6, 12, 16, 3), np.uint8)
    finished = []
    gen = colorizer.run(stack, out=out)
    for event in gen:
        if event.message.startswith("plane"):
            finished.append(event.plane_index)
            if len(finished) == 2:
                colorizer.request_stop()
    assert colorizer.stopped
    assert finished == [(0,), (1,)]
    assert out[:2].any()
    assert not out[2:].any()
    # the colorizer is usable again afterwards
    assert colorizer.colorize(stack).shape == (6, 12, 16, 3)
    assert not colorizer.stopped


# ----------------------------------------------------------------- memory


def test_out_of_memory_lowers_batch_then_tile(monkeypatch):
    net = TinyNet()
    calls = []

    def forward(x):
        calls.append(tuple(x.shape))
        if x.shape[0] > 1 or x.shape[-1] > 64:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return TinyNet.forward(net, x)

    monkeypatch.setattr(net, "forward", forward)
    stack = _gray((2, 80, 120))
    colorizer = _colorizer(net, chroma_size=None, tile=128, overlap=16, batch_size=4)
    events, out = _events_and_result(colorizer.run(stack))
    messages = [e.message for e in events]
    assert any("batch size lowered" in m for m in messages)
    assert any("tile lowered to 60" in m for m in messages)
    assert colorizer._batch == 1
    assert colorizer._tile == 60
    reference = _colorizer(TinyNet(), chroma_size=None).colorize(stack)
    assert np.abs(out.astype(int) - reference).max() <= 1
    assert events[-1].done == events[-1].total


def test_out_of_memory_at_the_smallest_tile_says_what_to_do(monkeypatch):
    net = TinyNet()

    def forward(x):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(net, "forward", forward)
    with pytest.raises(RuntimeError, match="chroma_size"):
        _colorizer(net, chroma_size=None, tile=64).colorize(_gray((100, 100)))


# ------------------------------------------------------------ bad input, api


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros(10), "at least 2 axes"),
        (np.zeros((8, 8), np.complex64), "dtype"),
        (np.zeros((2, 8)), "pixels"),
        (np.full((8, 8), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_input_raises_value_error(net, array, match):
    with pytest.raises(ValueError, match=match):
        _colorizer(net).colorize(array)


def test_bad_options(net):
    with pytest.raises(ValueError, match="tile"):
        Colorizer(net, device="cpu", tile=0)
    with pytest.raises(ValueError, match="chroma_size"):
        Colorizer(net, device="cpu", chroma_size=-3)
    with pytest.raises(ValueError, match="model must be"):
        Colorizer(42, device="cpu")


def test_model_breaking_the_contract_is_named():
    class Wrong(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        _colorizer(Wrong()).colorize(_gray((8, 8)))


def test_hints_reach_the_model_at_the_working_size():
    seen = {}

    class Hinted(nn.Module):
        def forward(self, x, hints=None, extra=None):
            seen["hints"], seen["extra"] = hints, extra
            return torch.zeros(x.shape[0], 2, *x.shape[-2:])

    hint = np.zeros((40, 40, 3), np.float32)
    hint[5, 7] = (0.5, -0.25, 1.0)  # one hinted pixel: ab_to_net(ab) and mask
    colorizer = Colorizer(Hinted(), device="cpu", chroma_size=20, hints=hint)
    colorizer.colorize(_gray((40, 40)))
    hints = seen["hints"]
    assert tuple(hints.shape) == (1, 3, 20, 20)
    # still a full-strength hint with its own colour after shrinking
    np.testing.assert_allclose(hints[0, :, 2, 3].numpy(), [0.5, -0.25, 1.0])
    assert hints[0, 2].sum() == 1
    assert hints[0, :2].abs().sum() == pytest.approx(0.75)
    assert seen["extra"] is None

    extra = np.zeros((40, 40, 1), np.float32)
    extra[:20] = 1.0
    Colorizer(Hinted(), device="cpu", chroma_size=20, hints={"extra": extra}).colorize(
        _gray((40, 40))
    )
    assert tuple(seen["extra"].shape) == (1, 1, 20, 20)
    assert seen["extra"][0, 0, :10].eq(1).all()
    assert seen["extra"][0, 0, 10:].eq(0).all()
    with pytest.raises(ValueError, match="hint 'hints' has shape"):
        Colorizer(Hinted(), device="cpu", hints=hint[:10]).colorize(_gray((40, 40)))


def test_module_level_colorize_caches_models(net, monkeypatch):
    import napari_colorize
    import napari_colorize.registry as registry

    loads = []

    def load_model(name, device="cpu"):
        loads.append(name)
        return net, None

    monkeypatch.setattr(registry, "load_model", load_model)
    inference.clear_model_cache()
    gray = _gray((12, 16))
    first = napari_colorize.colorize(gray, model="fake-model", device="cpu")
    second = napari_colorize.colorize(gray, model="fake-model", device="cpu", chroma_size=8)
    assert loads == ["fake-model"]
    assert first.shape == second.shape == (12, 16, 3)
    inference.clear_model_cache()


def test_gpu_style_composition_gives_the_same_colours():
    # on a GPU each strip is composed in one piece, without the worker pool;
    # exercise that path on the CPU
    gray = _gray((50, 70))
    reference = _colorizer(TinyNet(gain=20.0), chroma_size=20).colorize(gray)
    colorizer = _colorizer(TinyNet(gain=20.0), chroma_size=20)
    colorizer._composer.whole_strips = True
    colorizer._composer.workers = reading.INLINE
    np.testing.assert_array_equal(colorizer.colorize(gray), reference)


def test_bad_plane_deep_in_a_stack_is_named(net):
    stack = np.random.default_rng(0).random((12, 8, 8)).astype(np.float32) * 4
    stack[4, 3, 3] = np.nan  # not among the planes sampled for the intensity range
    with pytest.raises(ValueError, match=r"NaN \(in plane \(4,\)\)"):
        _colorizer(net).colorize(stack)


@pytest.mark.parametrize("value", [1000, 30000])
def test_a_constant_plane_stays_gray_whatever_the_model_says(value):
    """Issue 17 item 5: a constant image has one lightness and no colour to tell."""
    net = TinyNet(gain=20.0)
    stack = np.full((2, 12, 16), value, np.uint16)
    stack[1] = np.linspace(0, 2 * value, 16)[None].astype(np.uint16)  # a ramp keeps its colours
    rgb = _colorizer(net).colorize(stack)
    ab = rgb_to_lab(rgb)[..., 1:]
    assert np.abs(ab[0]).max() < 1.0
    assert np.abs(ab[1]).max() > 5.0
