"""OME-Zarr in and out: axes, units, transformations and provenance kept, a pyramid written."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

pytest.importorskip("ome_zarr")
pytest.importorskip("ome_zarr_models")

import dask.array as da
import torch
import zarr
from ome_zarr.format import FormatV04, FormatV05
from ome_zarr.writer import write_image, write_multiscales_metadata

import napari_colorize
from napari_colorize import cli
from napari_colorize.checkpoint import save_checkpoint
from napari_colorize.files import find_images, plan_jobs
from napari_colorize.models.beta import BetaColorizer, BetaConfig
from napari_colorize.ome_zarr import (
    colorize_ome_zarr,
    is_ome_zarr,
    open_ome_zarr,
    read_ome_zarr,
    write_rgb_ome_zarr,
)
from napari_colorize.ome_zarr_pyramid import ChannelLastView

UNITS = {"t": "second", "z": "micrometer", "y": "micrometer", "x": "micrometer"}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    config = BetaConfig(widths=(4, 8), norm="none")
    path = tmp_path_factory.mktemp("model") / "tiny-beta.safetensors"
    save_checkpoint(path, BetaColorizer(config).state_dict(), arch="beta", config=config,
                    extra={"chroma_size": 16})  # fmt: skip
    return path


def _gray(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 60000, shape).astype(np.uint16)


def _write_input(path, shape=(2, 3, 64, 80), version="0.4", translation=(0.0, 0.0, 1.5, -2.0)):
    """A (t, z, y, x) uint16 OME-Zarr with 3 levels, a physical scale, units and an origin."""
    scale = [2.0, 0.5, 0.25, 0.25]
    transforms = []
    for k in range(3):
        level_scale = scale[:2] + [s * 2**k for s in scale[2:]]
        shift = list(translation[:2]) + [t + (2**k - 1) / 2 * s for t, s in
                                         zip(translation[2:], scale[2:], strict=True)]  # fmt: skip
        transforms.append([{"type": "scale", "scale": level_scale},
                           {"type": "translation", "translation": shift}])  # fmt: skip
    gray = _gray(shape)
    fmt = FormatV04() if version == "0.4" else FormatV05()
    write_image(gray, str(path), axes=["t", "z", "y", "x"], axes_units=UNITS, fmt=fmt,
                scale=dict(zip("tzyx", scale, strict=True)), scale_factors=(2, 4))  # fmt: skip
    # an origin: write_image takes none, so the datasets' metadata is written again
    group = zarr.open_group(str(path), mode="a")
    paths = [d["path"] for d in _multiscale(path)[1]["datasets"]]
    datasets = [{"path": p, "coordinateTransformations": t}
                for p, t in zip(paths, transforms, strict=True)]  # fmt: skip
    write_multiscales_metadata(group, datasets, fmt=fmt, axes=["t", "z", "y", "x"],
                               axes_units=UNITS, name="image")  # fmt: skip
    return gray, transforms


def _multiscale(path):
    attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    return attrs, attrs.get("ome", attrs)["multiscales"][0]


def _with_c(values, value):
    return [values[0], value, *values[1:]]


def _check_output(out, transforms, version):
    attrs, ms = _multiscale(out)
    assert [a["name"] for a in ms["axes"]] == ["t", "c", "z", "y", "x"]
    assert ms["axes"][1]["type"] == "channel"
    assert [a.get("unit") for a in ms["axes"]] == ["second", None, *["micrometer"] * 3]
    group = zarr.open_group(str(out), mode="r")
    shapes = [group[d["path"]].shape for d in ms["datasets"]]
    assert shapes == [(2, 3, 3, 64, 80), (2, 3, 3, 32, 40), (2, 3, 3, 16, 20)]
    for dataset, expected in zip(ms["datasets"], transforms, strict=True):
        got = {t["type"]: t[t["type"]] for t in dataset["coordinateTransformations"]}
        assert got["scale"] == pytest.approx(_with_c(expected[0]["scale"], 1.0))
        assert got["translation"] == pytest.approx(_with_c(expected[1]["translation"], 0.0))
    assert open_ome_zarr(out).version == version  # valid for ome-zarr-models, version kept
    assert group["0"].dtype == np.uint8
    return attrs, group


def test_cli_keeps_axes_units_transforms_and_records_the_model(model_file, tmp_path, capsys):
    gray, transforms = _write_input(tmp_path / "in.ome.zarr")
    out = tmp_path / "out.ome.zarr"
    argv = ["colorize", str(tmp_path / "in.ome.zarr"), "-o", str(out),
            "--model", str(model_file), "--device", "cpu"]  # fmt: skip
    assert cli.main(argv) == 0
    assert "colorized 1 of 1" in capsys.readouterr().out
    attrs, group = _check_output(out, transforms, "0.4")
    about = attrs["napari-colorize"]
    assert about["model"] == str(model_file)
    assert about["architecture"] == "beta"
    assert about["version"] == napari_colorize.__version__
    assert about["source"].endswith("in.ome.zarr")
    assert about["source_level"] == 0
    assert about["options"]["device"] == "cpu"
    # level 0 is what the library gives for the same array, channels moved to their axis
    expected = napari_colorize.colorize(gray, model=str(model_file), device="cpu")
    np.testing.assert_array_equal(np.moveaxis(group["0"][:], 1, -1), expected)
    # each lower level is the rounded mean of 2x2 pixels of the level above
    above = group["0"][:].astype(np.float64)
    mean = above.reshape(2, 3, 3, 32, 2, 40, 2).mean(axis=(4, 6))
    assert np.abs(group["1"][:] - mean).max() <= 0.5 + 1e-9


def test_library_level_one_of_an_ngff_05_image(model_file, tmp_path):
    _, transforms = _write_input(tmp_path / "in.ome.zarr", version="0.5", shape=(1, 2, 64, 80))
    out = colorize_ome_zarr(tmp_path / "in.ome.zarr", tmp_path / "out.ome.zarr",
                            model=str(model_file), level=1, device="cpu")  # fmt: skip
    attrs, ms = _multiscale(out)
    assert "ome" in attrs
    assert (out / "zarr.json").is_file()
    group = zarr.open_group(str(out), mode="r")
    assert [group[d["path"]].shape for d in ms["datasets"]] == [
        (1, 3, 2, 32, 40),
        (1, 3, 2, 16, 20),
    ]
    first = {t["type"]: t[t["type"]] for t in ms["datasets"][0]["coordinateTransformations"]}
    assert first["scale"] == pytest.approx(_with_c(transforms[1][0]["scale"], 1.0))
    assert first["translation"] == pytest.approx(_with_c(transforms[1][1]["translation"], 0.0))
    assert attrs["napari-colorize"]["source_level"] == 1
    level1, _ = read_ome_zarr(tmp_path / "in.ome.zarr", level=1)
    assert isinstance(level1, da.Array)
    assert level1.shape == (1, 2, 32, 40)
    expected = napari_colorize.colorize(level1, model=str(model_file), device="cpu")
    np.testing.assert_array_equal(np.moveaxis(group["0"][:], 1, -1), expected)


def test_bad_level_is_one_line_and_leaves_nothing(model_file, tmp_path, capsys):
    _write_input(tmp_path / "in.ome.zarr", shape=(1, 1, 32, 32))
    out = tmp_path / "out.ome.zarr"
    argv = ["colorize", str(tmp_path / "in.ome.zarr"), "-o", str(out), "--level", "5",
            "--model", str(model_file), "--device", "cpu"]  # fmt: skip
    assert cli.main(argv) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1
    assert "no level 5" in err[0]
    assert "--level 0 to 2" in err[0]
    assert "Traceback" not in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.ome.zarr"]


def test_one_level_image_gets_a_pyramid_and_a_channel_axis_of_one_is_replaced(
    model_file, tmp_path
):
    gray = _gray((1, 64, 64))
    units = {"y": "micrometer", "x": "micrometer"}
    write_image(gray, str(tmp_path / "in.ome.zarr"), axes=["c", "y", "x"], scale_factors=[],
                scale={"c": 1.0, "y": 0.5, "x": 0.5}, axes_units=units)  # fmt: skip
    out = colorize_ome_zarr(tmp_path / "in.ome.zarr", tmp_path / "out.ome.zarr",
                            model=str(model_file), levels=3, device="cpu")  # fmt: skip
    _, ms = _multiscale(out)
    group = zarr.open_group(str(out), mode="r")
    assert [a["name"] for a in ms["axes"]] == ["c", "y", "x"]
    assert [group[d["path"]].shape for d in ms["datasets"]] == [
        (3, 64, 64),
        (3, 32, 32),
        (3, 16, 16),
    ]
    scales = [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]]
    assert scales == [[1.0, 0.5, 0.5], [1.0, 1.0, 1.0], [1.0, 2.0, 2.0]]
    shifts = [d["coordinateTransformations"][1]["translation"] for d in ms["datasets"]]
    assert shifts == [[0.0, 0.0, 0.0], [0.0, 0.25, 0.25], [0.0, 0.75, 0.75]]  # pixel centres
    expected = napari_colorize.colorize(gray[0], model=str(model_file), device="cpu")
    np.testing.assert_array_equal(np.moveaxis(group["0"][:], 0, -1), expected)


def test_several_channels_are_refused(tmp_path):
    write_image(_gray((2, 32, 32)), str(tmp_path / "two.ome.zarr"), axes=["c", "y", "x"],
                scale_factors=[])  # fmt: skip
    with pytest.raises(ValueError, match="it has 2 channels"):
        read_ome_zarr(tmp_path / "two.ome.zarr")


def test_write_rgb_for_the_widget_and_napari_ome_zarr_shows_rgb(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (2, 40, 48, 3)).astype(np.uint8)
    out = write_rgb_ome_zarr(
        rgb, tmp_path / "layer.ome.zarr", axes=("z", "y", "x"),
        units=("micrometer", "micrometer", "micrometer"), scale=(2.0, 0.5, 0.5),
        translate=(0.0, 10.0, 20.0), about={"model": "beta-punks"},
    )  # fmt: skip
    attrs, ms = _multiscale(out)
    assert [a["name"] for a in ms["axes"]] == ["c", "z", "y", "x"]
    assert attrs["napari-colorize"]["model"] == "beta-punks"
    first = ms["datasets"][0]["coordinateTransformations"]
    assert first[0]["scale"] == [1.0, 2.0, 0.5, 0.5]
    assert first[1]["translation"] == [0.0, 0.0, 10.0, 20.0]
    group = zarr.open_group(str(out), mode="r")
    np.testing.assert_array_equal(np.moveaxis(group["0"][:], 0, -1), rgb)
    reader_module = pytest.importorskip("napari_ome_zarr._reader")
    (_, meta, kind), *_ = reader_module.napari_get_reader(str(out))(str(out))
    assert kind == "image"
    assert meta["channel_axis"] == 0
    assert [c.name for c in meta["colormap"]] == ["red", "green", "blue"]
    assert meta["contrast_limits"] == [[0, 255]] * 3
    assert meta["axis_labels"] == ("z", "y", "x")
    assert meta["scale"] == [2.0, 0.5, 0.5]


def test_write_rgb_takes_a_napari_layers_defaults(tmp_path):
    napari_layers = pytest.importorskip("napari.layers")
    layer = napari_layers.Image(np.zeros((2, 8, 10, 3), np.uint8), rgb=True)
    out = write_rgb_ome_zarr(
        layer.data, tmp_path / "layer.ome.zarr", axes=layer.axis_labels, units=layer.units,
        scale=layer.scale, translate=layer.translate,
    )  # fmt: skip
    _, ms = _multiscale(out)
    assert [a["name"] for a in ms["axes"]] == ["c", "z", "y", "x"]
    assert all("unit" not in a for a in ms["axes"])


def test_failure_midway_leaves_no_folder(tmp_path):
    class Broken:
        stopped = False
        meta = method = None

        def run(self, array, out, rgb=None):
            yield None
            raise RuntimeError("out of memory")

    _write_input(tmp_path / "in.ome.zarr", shape=(1, 2, 32, 32))
    with pytest.raises(RuntimeError, match="out of memory"):
        colorize_ome_zarr(tmp_path / "in.ome.zarr", tmp_path / "out.ome.zarr", colorizer=Broken())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.ome.zarr"]


def test_folders_left_by_killed_runs_are_removed(model_file, tmp_path):
    import os
    import subprocess

    _write_input(tmp_path / "in.ome.zarr", shape=(1, 1, 32, 32))
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = int(done.stdout)
    stale = tmp_path / f".out.ome.zarr.{dead}.0123abcd.tmp"
    young = tmp_path / f".out.ome.zarr.{dead}.4567abcd.tmp"
    mine = tmp_path / f".out.ome.zarr.{os.getpid()}.89abcdef.tmp"
    for folder in (stale, young, mine):
        folder.mkdir()
        (folder / "0").mkdir()
    for folder in (stale, mine):  # nothing written in them for long
        os.utime(folder / "0", (1, 1))
        os.utime(folder, (1, 1))
    colorize_ome_zarr(tmp_path / "in.ome.zarr", tmp_path / "out.ome.zarr",
                      model=str(model_file), device="cpu")  # fmt: skip
    assert not stale.exists()
    assert young.exists()  # maybe another machine's run: kept until a minute old
    assert mine.exists()  # a live process's


def test_overwrite_only_when_asked(model_file, tmp_path, capsys):
    _write_input(tmp_path / "in.ome.zarr", shape=(1, 1, 32, 32))
    out = tmp_path / "out.ome.zarr"
    out.mkdir()
    (out / "notes.txt").write_text("a folder of someone's files")
    argv = ["colorize", str(tmp_path / "in.ome.zarr"), "-o", str(out),
            "--model", str(model_file), "--device", "cpu"]  # fmt: skip
    assert cli.main(argv) == 1
    assert "pass --overwrite" in capsys.readouterr().err
    assert cli.main([*argv, "--overwrite"]) == 1  # not a zarr store: never replaced
    assert "not a zarr store" in capsys.readouterr().err
    assert (out / "notes.txt").exists()
    (out / "notes.txt").unlink()
    (out / ".zgroup").write_text('{"zarr_format": 2}')  # an old result
    (out / "old-chunks").write_text("x")
    assert cli.main([*argv, "--overwrite"]) == 0
    assert is_ome_zarr(out)
    assert not (out / "old-chunks").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.ome.zarr", "out.ome.zarr"]


def test_found_as_one_image_and_planned_as_one_result(tmp_path):
    _write_input(tmp_path / "in.ome.zarr", shape=(1, 1, 32, 32))
    files, problems = find_images([tmp_path / "in.ome.zarr"])
    assert files == [(tmp_path / "in.ome.zarr").resolve()]
    assert not problems
    assert find_images([tmp_path])[0] == files  # inside a folder too
    jobs, refused = plan_jobs(files, tmp_path / "new.ome.zarr")
    assert [job.target for job in jobs] == [tmp_path / "new.ome.zarr"]
    assert not refused
    jobs, refused = plan_jobs(files * 2, tmp_path / "new.ome.zarr")
    assert not jobs
    assert "need a folder" in refused[0][1]


def test_bioformats2raw_layout_is_read_as_its_first_image(model_file, tmp_path):
    root = tmp_path / "converted.ome.zarr"
    group = zarr.open_group(str(root), mode="w", zarr_format=2)
    group.attrs["bioformats2raw.layout"] = 3
    _write_input(root / "0", shape=(1, 1, 32, 32))
    assert is_ome_zarr(root)
    assert find_images([root])[0] == [root.resolve()]
    gray, _ = read_ome_zarr(root)
    assert gray.shape == (1, 1, 32, 32)
    out = colorize_ome_zarr(root, tmp_path / "out.ome.zarr", model=str(model_file), device="cpu")
    assert open_ome_zarr(out).axes[1]["name"] == "c"


def test_ome_zarr_to_tiff(model_file, tmp_path):
    import tifffile

    _write_input(tmp_path / "in.ome.zarr", shape=(1, 2, 32, 32))
    argv = ["colorize", str(tmp_path / "in.ome.zarr"), "-o", str(tmp_path / "out.tif"),
            "--level", "1", "--model", str(model_file), "--device", "cpu"]  # fmt: skip
    assert cli.main(argv) == 0
    assert tifffile.imread(tmp_path / "out.tif").shape == (1, 2, 16, 16, 3)


def test_without_the_extra_the_error_says_what_to_install(tmp_path, monkeypatch):
    _write_input(tmp_path / "in.ome.zarr", shape=(1, 1, 32, 32))
    monkeypatch.setitem(sys.modules, "ome_zarr_models", None)
    with pytest.raises(ValueError, match=r"pip install 'napari-colorize\[ome-zarr\]'"):
        read_ome_zarr(tmp_path / "in.ome.zarr")


def test_channel_last_view_writes_each_plane_once():
    store = zarr.create_array(store={}, shape=(2, 3, 8, 10), chunks=(1, 3, 8, 10), dtype="u1")
    writes = []
    original = store.__class__.__setitem__

    class Spy:
        shape, dtype = store.shape, store.dtype

        def __setitem__(self, key, value):
            writes.append(key)
            original(store, key, value)

    view = ChannelLastView(Spy(), channel_axis=1)
    assert view.shape == (2, 8, 10, 3)
    rgb = np.arange(2 * 8 * 10 * 3, dtype=np.uint8).reshape(2, 8, 10, 3)
    for t in range(2):
        for r0 in range(0, 8, 3):
            view[(t, slice(r0, r0 + 3))] = rgb[t, r0 : r0 + 3]
    assert len(writes) == 2
    np.testing.assert_array_equal(np.moveaxis(store[:], 1, -1), rgb)
    json.dumps(writes, default=str)  # keys are plain ints and slices
