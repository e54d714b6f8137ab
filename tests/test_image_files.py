"""One image reader and one data-spec parser for the CLI, evaluation and training (issue 18).

The same file gives the same pixels wherever it is given: ``colorize`` reads
it with :func:`napari_colorize.image_files.read_image`, ``evaluate`` and the
training datasets take their colour images from it through ``read_rgb``.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_colorize import evaluation, files, image_files
from napari_colorize.data import DataNotFoundError, dataset_from_spec, parse_data_spec


def _rgb(shape, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    return rng.integers(0, top + 1, (*shape, 3), dtype=np.int64).astype(dtype)


@pytest.fixture
def folder(tmp_path):
    """Gray, gray+alpha, RGBA, RGB PNGs; a 16-bit RGB TIFF; a CMYK JPEG; a BMP."""
    root = tmp_path / "images"
    root.mkdir()
    rgb = _rgb((12, 14), seed=1)
    truth = {"rgb.png": rgb, "gray.png": rgb[..., 0]}
    iio.imwrite(root / "rgb.png", rgb)
    iio.imwrite(root / "gray.png", rgb[..., 0])
    iio.imwrite(root / "la.png", np.stack([rgb[..., 1], np.full_like(rgb[..., 1], 200)], -1))
    truth["la.png"] = rgb[..., 1]
    rgba = np.concatenate([_rgb((12, 14), seed=2), np.full((12, 14, 1), 90, np.uint8)], -1)
    iio.imwrite(root / "rgba.png", rgba)
    truth["rgba.png"] = rgba
    rgb16 = _rgb((10, 12), np.uint16, seed=3)
    tifffile.imwrite(root / "rgb16.tif", rgb16, photometric="rgb")
    truth["rgb16.tif"] = rgb16
    Image.fromarray(_rgb((16, 16), seed=5)).convert("CMYK").save(root / "cmyk.jpg", quality=95)
    truth["cmyk.jpg"] = np.asarray(Image.open(root / "cmyk.jpg").convert("RGB"))
    bmp = _rgb((8, 10), seed=6)
    Image.fromarray(bmp).save(root / "rgb.bmp")
    truth["rgb.bmp"] = bmp
    return root, truth


def test_the_cli_reads_by_the_one_rule(folder):
    root, truth = folder
    assert files.read_image is image_files.read_image  # what colorize_file reads with
    for name, want in truth.items():
        got = np.asarray(image_files.read_image(root / name))
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)


def test_evaluation_and_training_read_the_same_pixels(folder):
    root, truth = folder
    source = evaluation._open_data(str(root))
    assert len(source.paths) == len(truth)  # the BMP too
    scored = {}
    for chunk in source.batches(64):
        for batch in chunk:
            for image in batch.rgb:
                scored.setdefault((*image.shape, image.dtype.str), []).append(image)
    for name, want in truth.items():
        colour = want[..., :3] if want.ndim == 3 else np.repeat(want[..., None], 3, -1)
        key = (*colour.shape, colour.dtype.str)
        assert any(np.array_equal(colour, x) for x in scored[key]), name
        assert np.array_equal(image_files.read_rgb(root / name, gray=True), colour), name
        if want.ndim == 3:  # training takes the same colour image
            assert np.array_equal(image_files.read_rgb(root / name), colour), name


def test_training_skips_gray_and_gray_alpha_alike(folder):
    root, truth = folder
    from napari_colorize.data import ImageFolderDataset

    with pytest.warns(UserWarning, match=r"skipped 2 of 7") as caught:
        dataset = ImageFolderDataset(root, flips=False)
    message = str(caught[0].message)
    assert "gray.png: grayscale" in message
    assert "la.png: grayscale" in message
    assert sorted(p.name for p in dataset.files) == sorted(n for n in truth if truth[n].ndim == 3)
    for name in ("gray.png", "la.png"):
        with pytest.raises(ValueError, match=rf"{name} is grayscale.*no colour to learn from"):
            image_files.read_rgb(root / name)


def test_a_16bit_tiff_keeps_its_16_bits_in_evaluation(folder):
    root, truth = folder
    assert image_files.read_rgb(root / "rgb16.tif", gray=True).dtype == np.uint16
    source = evaluation._open_data(f"folder:{root / 'rgb16.tif'}")
    (batch,) = next(source.batches(4))
    np.testing.assert_array_equal(batch.rgb[0], truth["rgb16.tif"])


def test_a_planar_tiff_is_a_stack_of_planes_everywhere(tmp_path):
    planes = np.moveaxis(_rgb((9, 11), seed=4), -1, 0)
    tifffile.imwrite(tmp_path / "planar.tif", planes, photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(
        np.asarray(image_files.read_image(tmp_path / "planar.tif")), planes
    )
    assert image_files.image_header(tmp_path / "planar.tif") == ((3, 9, 11), np.uint8, True)
    with pytest.raises(ValueError, match=r"has shape \(3, 9, 11\)"):
        image_files.read_rgb(tmp_path / "planar.tif", gray=True)
    iio.imwrite(tmp_path / "rgb.png", _rgb((8, 8)))
    from napari_colorize.data import ImageFolderDataset

    with pytest.warns(UserWarning, match="planar.tif: planar TIFF"):
        ImageFolderDataset(tmp_path)


def test_pages_of_a_stack_and_headers(tmp_path):
    stack = _rgb((3, 8, 9), seed=7)
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="rgb")
    assert image_files.image_header(tmp_path / "stack.tif").shape == (3, 8, 9, 3)
    np.testing.assert_array_equal(image_files.read_rgb(tmp_path / "stack.tif", 2), stack[2])
    with pytest.raises(ValueError, match="save a stack's planes as separate images"):
        image_files.read_rgb(tmp_path / "stack.tif")
    iio.imwrite(tmp_path / "la.png", np.zeros((6, 7, 2), np.uint8))
    assert image_files.image_header(tmp_path / "la.png").shape == (6, 7)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "the file is empty"), (b"plain text\n", "the file is not an image")],
)
def test_bad_files_say_so_the_same_everywhere(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        image_files.read_image(path)
    with pytest.raises(ValueError, match=f"bad.png: {message}"):
        image_files.read_rgb(path)


# ------------------------------------------------------------------ data specs


def test_one_parser_for_every_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("punks_photos").mkdir()
    iio.imwrite(Path("punks_photos", "a.png"), _rgb((8, 8)))
    assert parse_data_spec("punks:train").kind == "punks"
    assert parse_data_spec("punks", default_split="test").split == "test"
    folder = parse_data_spec("punks_photos")  # a folder, not the punks
    assert (folder.kind, folder.path) == ("folder", Path("punks_photos"))
    assert parse_data_spec("folder:punks_photos/a.png").kind == "file"
    source = evaluation._open_data("punks_photos")
    assert isinstance(source, evaluation._FolderSource)
    assert [p.name for p in source.paths] == ["a.png"]


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("punks:val", ValueError, r"unknown punks split 'val'.*'punks:train'"),
        ("punks", ValueError, r"needs a split.*'punks:test'"),
        ("", ValueError, "non-empty"),
        ("no/such/folder", DataNotFoundError, r"no such file or folder.*'folder:PATH'"),
        ("folder:no/such", DataNotFoundError, "not an existing folder"),
    ],
)
def test_bad_specs_are_one_error_for_training_and_evaluation(spec, error, match):
    with pytest.raises(error, match=match):
        parse_data_spec(spec)
    with pytest.raises(error, match=match):
        dataset_from_spec(spec)
    if spec != "punks":  # evaluation's bare "punks" is punks:test
        with pytest.raises(error, match=match):
            evaluation._open_data(spec)


def test_a_missing_path_is_both_a_missing_file_and_a_bad_value():
    with pytest.raises(FileNotFoundError):
        parse_data_spec("no/such/folder")
    with pytest.raises(ValueError):
        parse_data_spec("no/such/folder")


def test_the_alpha_preset_parses_its_data_like_every_other_caller(tmp_path, capsys):
    from napari_colorize import cli

    out = str(tmp_path / "m.safetensors")
    base = ["train", "--preset", "alpha", "--steps", "1", "--out", out]
    assert cli.main([*base, "--data", "punks:train"]) == 2
    err = capsys.readouterr().err
    assert "the alpha preset fits one photo, not punks:train" in err
    assert "--preset beta-punks" in err
    assert cli.main([*base, "--data", str(tmp_path / "missing.png")]) == 2
    assert "no image file" in capsys.readouterr().err
