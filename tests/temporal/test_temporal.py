"""Consistent colours through stacks: motion, carried hints and colours, the sequence order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import napari_colorize
from napari_colorize import temporal
from napari_colorize.color import rgb_to_lab
from napari_colorize.hints import PointHints
from napari_colorize.inference import Colorizer
from napari_colorize.temporal import flow as flow_module


def _texture(shape=(64, 80), seed=0):
    """A smooth random lightness texture in [10, 90]."""
    from scipy.ndimage import gaussian_filter

    noise = np.random.default_rng(seed).random((shape[0] + 40, shape[1] + 40))
    smooth = gaussian_filter(noise, 3.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (10 + 80 * smooth).astype(np.float32)


def _panning_stack(planes=5, step=2, shape=(64, 80)):
    """uint8 gray planes of a texture panning ``step`` pixels right per plane."""
    big = _texture(shape)
    frames = [
        big[20 : 20 + shape[0], 20 - i * step : 20 - i * step + shape[1]] for i in range(planes)
    ]
    return np.round(np.stack(frames) * 2.55).astype(np.uint8)


@pytest.fixture(params=["opencv-dis", "skimage-ilk"])
def backend(request, monkeypatch):
    if request.param == "opencv-dis":
        pytest.importorskip("cv2")
    monkeypatch.setattr(flow_module, "flow_backend", lambda: request.param)
    return request.param


def test_motion_recovers_a_shift_and_trusts_it(backend):
    big = _texture()
    source, target = big[20:84, 20:100], big[20:84, 17:97]  # content moves 3 px right
    motion = temporal.estimate_motion(source, target)
    inner = (slice(8, -8), slice(8, -8))
    assert np.median(motion.backward[inner][..., 1]) == pytest.approx(-3.0, abs=0.3)
    assert np.median(motion.backward[inner][..., 0]) == pytest.approx(0.0, abs=0.3)
    assert np.median(motion.forward[inner][..., 1]) == pytest.approx(3.0, abs=0.3)
    assert not motion.cut
    assert motion.reliability[inner].mean() > 0.7
    # the strip that entered on the left was not in the source
    assert motion.reliability[:, :2].mean() < 0.2


def test_an_exposure_change_is_not_motion(backend):
    big = _texture()
    source = big[20:84, 20:100]
    motion = temporal.estimate_motion(source, source * 0.7 + 5)
    assert not motion.cut
    assert np.abs(motion.backward[8:-8, 8:-8]).mean() < 0.3


def test_unrelated_planes_are_a_cut(backend):
    motion = temporal.estimate_motion(_texture(seed=1)[:64, :80], _texture(seed=2)[:64, :80])
    assert motion.cut
    assert not motion.reliability.any()
    assert temporal.carry_hints(np.ones((64, 80, 3), np.float32), motion) is None
    own = np.full((64, 80, 2), 7.0, np.float32)
    assert temporal.blend_colours(own, -own, motion, 0.8) is own


def test_hints_move_with_the_content():
    big = _texture()
    source, target = big[20:84, 20:100], big[20:84, 16:96]  # 4 px right
    motion = temporal.estimate_motion(source, target)
    hints = np.zeros((64, 80, 3), np.float32)
    hints[30, 40] = (0.5, -0.25, 1.0)
    carried = temporal.carry_hints(hints, motion)
    assert carried is not None
    rows, cols = np.nonzero(carried[..., 2])
    assert list(zip(rows, cols)) == [(30, 44)]
    assert tuple(carried[30, 44]) == (0.5, -0.25, 1.0)


def test_blending_pulls_towards_the_warped_previous_colours():
    big = _texture()
    motion = temporal.estimate_motion(big[20:84, 20:100], big[20:84, 20:100])
    own = np.zeros((64, 80, 2), np.float32)
    previous = np.full((64, 80, 2), 10.0, np.float32)
    blended = temporal.blend_colours(own, previous, motion, 0.8)
    assert blended[10:-10, 10:-10].mean() == pytest.approx(8.0, abs=0.5)
    assert temporal.blend_colours(own, previous, motion, 0.0) is own


def test_plane_order_starts_at_the_keyframe():
    assert temporal.plane_order(5, 0) == [0, 1, 2, 3, 4]
    assert temporal.plane_order(5, 2) == [2, 1, 0, 3, 4]
    maps = np.zeros((2, 4, 8, 8, 3), np.float32)
    maps[1, 3, 2, 2, 2] = 1.0
    hints = {"hints": (maps, True)}
    assert temporal.keyframe(hints, (0,), 4) == 0
    assert temporal.keyframe(hints, (1,), 4) == 3
    assert temporal.keyframe({"hints": (maps[0, 0], False)}, (), 4) == 0


def _hinted(stack, plane, rgb=(220, 40, 40)):
    """30 red point hints on one plane of ``stack``."""
    n, h, w = stack.shape
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(8, h - 8, 30), rng.integers(8, w - 8, 30)
    points = np.stack([np.full(30, plane), rows, cols], axis=1).astype(float)
    colors = np.tile(np.array(rgb) / 255.0, (30, 1))
    return PointHints(points, colors, 1.0, (n, h, w))


def _chroma(rgb):
    return np.linalg.norm(rgb_to_lab(rgb)[..., 1:], axis=-1).mean(axis=(-2, -1))


def test_hints_on_one_plane_colour_the_whole_sequence():
    stack = _panning_stack()
    hints = _hinted(stack, 2)
    alone = napari_colorize.colorize(stack, model="propagate", hints=hints, device="cpu")
    chroma = _chroma(alone)
    assert chroma[2] > 20
    assert max(chroma[[0, 1, 3, 4]]) < 1
    carried = napari_colorize.colorize(
        stack, model="propagate", hints=hints, temporal=True, device="cpu"
    )
    chroma = _chroma(carried)
    assert chroma.min() > 15, chroma  # before and after the keyframe
    np.testing.assert_array_equal(carried[2], alone[2])  # the keyframe keeps its own colours
    hue = rgb_to_lab(carried)[..., 1].mean(axis=(-2, -1))
    assert (hue > 15).all()  # red: a > 0 on every plane


class _Flickering(torch.nn.Module):
    """A network whose colour jumps from call to call: the flicker temporal must remove."""

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        self.calls += 1
        sign = 1.0 if self.calls % 2 else -1.0
        ab = torch.zeros((x.shape[0], 2, *x.shape[-2:]))
        ab[:, 0] = 0.3 + 0.1 * sign
        return ab + self.weight


def test_temporal_removes_a_networks_flicker():
    stack = _panning_stack(planes=6)

    def flicker(rgb):
        a = rgb_to_lab(rgb)[..., 1][:, 16:-16, 16:-16].mean(axis=(-2, -1))
        return np.abs(np.diff(a)).mean()

    options = {"device": "cpu", "chroma_size": None, "batch_size": 1}
    alone = Colorizer(_Flickering(), **options).colorize(stack)
    smooth = Colorizer(_Flickering(), temporal=True, **options).colorize(stack)
    assert flicker(smooth) < 0.5 * flicker(alone)


def test_lazy_stacks_and_sequences_along_the_last_axis():
    da = pytest.importorskip("dask.array")
    stack = _panning_stack(planes=3)
    four_d = np.stack([stack, stack[::-1]])  # (2, 3, H, W): two sequences
    maps = np.zeros((*four_d.shape, 3), np.float32)
    maps[0, 0, 20:24, 20:24] = (0.6, 0.3, 1.0)  # hints in the first sequence only
    options = {"model": "propagate", "hints": maps, "temporal": True, "device": "cpu"}
    eager = napari_colorize.colorize(four_d, **options)
    lazy = napari_colorize.colorize(da.from_array(four_d, chunks=(1, 1, 64, 80)), **options)
    np.testing.assert_array_equal(eager, lazy)
    chroma = _chroma(eager)
    assert chroma[0].min() > 5  # carried through the first sequence
    assert chroma[1].max() < 1  # not into the second


def test_temporal_stops_between_planes():
    stack = _panning_stack(planes=4)
    colorizer = Colorizer("propagate", hints=_hinted(stack, 0), temporal=True, device="cpu")
    events = colorizer.run(stack)
    for event in events:
        if event.message.startswith("plane 2/"):
            colorizer.request_stop()
    assert colorizer.stopped


@pytest.mark.parametrize("value", [1.0, -0.1, "yes", 2])
def test_bad_temporal_values_are_refused(value):
    with pytest.raises(ValueError, match="temporal must be"):
        Colorizer("propagate", temporal=value, device="cpu")


def test_cli_temporal_carries_hints_of_one_plane_through_a_tiff_stack(tmp_path, monkeypatch):
    import tifffile

    from napari_colorize import cli

    monkeypatch.setenv("NAPARI_COLORIZE_CACHE", str(tmp_path / "cache"))
    tifffile.imwrite(tmp_path / "stack.tif", _panning_stack(planes=4))
    (tmp_path / "hints.csv").write_text(
        "plane,row,col,r,g,b,size\n" + "".join(f"0,{r},{c},30,60,220,3\n" for r, c in
                                              [(20, 20), (40, 50), (30, 60)])
    )  # fmt: skip
    args = ["colorize", str(tmp_path / "stack.tif"), "--model", "propagate",
            "--hints", str(tmp_path / "hints.csv")]  # fmt: skip
    assert cli.main([*args, "-o", str(tmp_path / "alone.tif")]) == 0
    assert cli.main([*args, "-o", str(tmp_path / "carried.tif"), "--temporal"]) == 0
    alone = tifffile.imread(tmp_path / "alone.tif")
    carried = tifffile.imread(tmp_path / "carried.tif")
    assert _chroma(alone)[1:].max() < 1
    b = rgb_to_lab(carried)[..., 2].mean(axis=(-2, -1))
    assert (b < -15).all(), b  # blue on every plane
