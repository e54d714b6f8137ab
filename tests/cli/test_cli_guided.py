"""The command line's training-free methods: --reference, --model propagate --hints."""

import imageio.v3 as iio
import numpy as np
import pytest

from napari_colorize import cli
from napari_colorize.color import rgb_to_lab
from napari_colorize.hints import read_hints_csv


def _scene(size=96, flip=False):
    """RGB uint8: red striped blocks, blue smooth blocks (colour follows texture)."""
    from napari_colorize.color import lab_to_rgb

    rng = np.random.default_rng(int(flip))
    yy, xx = np.mgrid[0:size, 0:size]
    stripes = (yy // 24 + xx // 24) % 2 == int(flip)
    lightness = 55.0 + stripes * 12.0 * np.sign(np.sin(xx * 1.3)) + rng.normal(0, 0.5, xx.shape)
    ab = np.where(stripes[..., None], (60.0, 40.0), (10.0, -50.0))
    rgb = lab_to_rgb(np.concatenate([lightness[..., None], ab], -1))
    return (rgb * 255).round().astype(np.uint8), stripes


def _gray(rgb):
    from napari_colorize.color import lab_to_rgb

    lab = rgb_to_lab(rgb)
    lab[..., 1:] = 0
    return (lab_to_rgb(lab)[..., 0] * 255).round().astype(np.uint8)


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_COLORIZE_CACHE", str(tmp_path / "cache"))


def test_reference_from_a_file(tmp_path, empty_cache):
    reference, _ = _scene()
    target, stripes = _scene(flip=True)
    iio.imwrite(tmp_path / "ref.png", reference)
    iio.imwrite(tmp_path / "in.png", _gray(target))
    status = cli.main(["colorize", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"),
                       "--reference", str(tmp_path / "ref.png")])  # fmt: skip
    assert status == 0
    ab = rgb_to_lab(iio.imread(tmp_path / "out.png"))[..., 1:]
    assert ab[stripes][:, 0].mean() > 20.0
    assert ab[~stripes][:, 1].mean() < -15.0


def test_propagate_with_a_hints_csv(tmp_path, empty_cache):
    gray = np.full((40, 120), 60, np.uint8)
    gray[:, 60:] = 180
    iio.imwrite(tmp_path / "in.png", gray)
    (tmp_path / "hints.csv").write_text(
        "row,col,r,g,b,size\n20,10,220,30,30,3\n20,100,30,60,220,3\n"
    )
    status = cli.main(["colorize", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"),
                       "--model", "propagate", "--hints", f"{tmp_path}/hints.csv"])  # fmt: skip
    assert status == 0
    ab = rgb_to_lab(iio.imread(tmp_path / "out.png"))[..., 1:]
    assert ab[:, :50, 0].mean() > 20.0  # red side
    assert ab[:, 70:, 1].mean() < -20.0  # blue side


def test_a_photo_with_nothing_stops_with_the_options(tmp_path, empty_cache, capsys):
    iio.imwrite(tmp_path / "photo.png", np.zeros((200, 300), np.uint8))
    status = cli.main(["colorize", str(tmp_path / "photo.png"), "-o", str(tmp_path / "o.png")])
    assert status == 1
    err = capsys.readouterr().err
    assert "--reference" in err
    assert "--hints" in err
    assert "eccv16" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o.png").exists()


def test_propagate_without_hints_and_bad_combinations(tmp_path, empty_cache, capsys):
    iio.imwrite(tmp_path / "in.png", np.zeros((40, 40), np.uint8))
    args = ["colorize", str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png")]
    assert cli.main([*args, "--model", "propagate"]) == 1
    assert "give --hints" in capsys.readouterr().err
    iio.imwrite(tmp_path / "ref.png", np.zeros((40, 40, 3), np.uint8))
    assert (
        cli.main([*args, "--model", "beta-punks", "--reference", str(tmp_path / "ref.png")]) == 2
    )
    assert "cannot be combined" in capsys.readouterr().err
    assert cli.main([*args, "--reference", str(tmp_path / "nowhere.png")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_hints_csv_with_plane_columns_and_errors(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("t,row,col,r,g,b\n1,2,3,255,0,0\n0,5,6,0,0,255\n")
    hints = read_hints_csv(path, (2, 10, 12))
    assert len(hints) == 2
    assert hints.plane((1,))[2, 3, 2] == 1.0
    assert hints.plane((0,))[5, 6, 2] == 1.0
    assert hints.plane((0,))[2, 3, 2] == 0.0
    for text, message in [
        ("", "empty"),
        ("row,col,r,g\n1,2,3,4\n", "missing: b"),
        ("row,col,r,g,b\n1,2,300,0,0\n", "0-255"),
        ("row,col,r,g,b\n1,x,3,4,5\n", "not a number"),
        ("t,row,col,r,g,b\n0,1,2,3,4,5\n", "leading axis"),
    ]:
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_hints_csv(path, (10, 12))
