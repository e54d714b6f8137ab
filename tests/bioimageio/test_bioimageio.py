"""bioimage.io model packages: export, validation (offline), reproduction, use as a model."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

pytest.importorskip("bioimageio.spec")
from napari_colorize import cli, colorize
from napari_colorize import color as C
from napari_colorize.bioimageio import graph as G
from napari_colorize.errors import CheckpointError, ColorizeError

# torch >= 2.10 deprecates TorchScript, which bioimage.io packages (and these tests) run on
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit:DeprecationWarning")


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """beta-punks exported through the command line, once for the module."""
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("bioimageio") / "beta-punks.zip"
    assert cli.main(["export", "beta-punks", "--bioimageio", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def unpacked(package, tmp_path_factory):
    folder = tmp_path_factory.mktemp("unpacked")
    with zipfile.ZipFile(package) as z:
        z.extractall(folder)
    return folder


def _gray(side=40, width=47, seed=0):
    """A smooth gray image (an 8-bit one) with some structure."""
    from skimage import data, transform

    gray = data.camera()[100:300, 150:350].astype(np.float32) / 255.0
    small = transform.resize(gray, (side, width), anti_aliasing=True)
    return np.round(small * 255).astype(np.uint8)


def test_export_validates_with_bioimageio_spec_offline(package):
    import bioimageio.spec as spec
    from bioimageio.spec.model import v0_5

    descr = spec.load_description(package, perform_io_checks=True)
    assert isinstance(descr, v0_5.ModelDescr), descr
    assert descr.validation_summary.status in ("valid-format", "passed")
    assert str(descr.license) == "BSD-3-Clause"
    assert descr.weights.torchscript is not None
    assert descr.covers
    assert descr.documentation is not None
    assert "cryptopunks" in descr.training_data.description
    assert descr.config.bioimageio.model_parameter_count > 1000
    ours = descr.config.model_extra["napari-colorize"]
    assert ours["metrics"]["ciede2000"] == pytest.approx(0.5703)
    assert ours["extra"]["chroma_size"] == 24
    names = set(zipfile.ZipFile(package).namelist())
    assert {"rdf.yaml", "weights.pt", "test_input.npy", "test_output.npy", "cover.png",
            "sample_input.png", "sample_output.png",
            "README.md", "LICENSE"} <= names  # fmt: skip


def test_bioimageio_core_reproduces_the_test_output(package):
    core = pytest.importorskip("bioimageio.core")
    summary = core.test_model(package)
    failed = [(d.name, [e.msg for e in d.errors]) for d in summary.details if d.errors]
    assert summary.status == "passed", failed


def test_plain_torch_reproduces_the_test_output_without_napari_colorize(unpacked):
    code = (
        "import sys; sys.modules['napari_colorize'] = None\n"
        "import numpy as np, torch\n"
        f"folder = {str(unpacked)!r}\n"
        "graph = torch.jit.load(folder + '/weights.pt')\n"
        "x = torch.from_numpy(np.load(folder + '/test_input.npy'))\n"
        "with torch.no_grad():\n"
        "    y = graph(x).numpy()\n"
        "want = np.load(folder + '/test_output.npy')\n"
        "assert y.shape == want.shape, (y.shape, want.shape)\n"
        "print(float(np.abs(y - want).max()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip()) < 1e-5


def test_graph_returns_rgb_with_the_inputs_lightness(unpacked):
    graph = torch.jit.load(str(unpacked / "weights.pt"))
    gray = _gray(30, 37).astype(np.float32) / 255.0
    with torch.no_grad():
        rgb = graph(torch.from_numpy(gray)[None, None])[0].permute(1, 2, 0).numpy()
    assert rgb.shape == (30, 37, 3)
    assert rgb.min() >= 0.0
    assert rgb.max() <= 1.0
    lab = C.rgb_to_lab(rgb.astype(np.float64))
    np.testing.assert_allclose(lab[..., 0], C.gray_to_l(gray.astype(np.float64)), atol=0.05)
    assert np.abs(lab[..., 1:]).mean() > 1.0  # it does colour


def test_graph_gives_the_colorizers_colours(unpacked):
    graph = torch.jit.load(str(unpacked / "weights.pt"))
    for shape in ((24, 24), (60, 45), (150, 130)):  # working sizes 24, 24 and 256 (full)
        gray = _gray(*shape)
        want = colorize(gray, model="beta-punks", device="cpu").astype(int)
        with torch.no_grad():
            rgb = graph(torch.from_numpy(gray.astype(np.float32) / 255.0)[None, None])
        got = np.round(rgb[0].permute(1, 2, 0).numpy() * 255.0).astype(int)
        assert np.abs(got - want).max() <= 1, shape


def test_package_as_model_gives_the_original_colours(package):
    for shape in ((40, 47), (120, 110)):
        gray = _gray(*shape)
        want = colorize(gray, model="beta-punks", device="cpu").astype(int)
        got = colorize(gray, model=str(package), device="cpu").astype(int)
        assert np.abs(got - want).max() <= 1, shape
        assert np.abs(got - want).mean() < 0.01


def test_package_folder_and_rdf_yaml_are_models_too(unpacked):
    from napari_colorize.registry import load_model

    for source in (unpacked, unpacked / "rdf.yaml"):
        model, meta = load_model(source)
        assert meta.arch == "bioimageio"
        assert meta.extra["chroma_size"] == 24  # the working size comes back
        with torch.no_grad():
            ab = model(torch.zeros(1, 1, 24, 24))
        assert ab.shape == (1, 2, 24, 24)


def test_cli_colorize_with_a_package_as_model(package, tmp_path):
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "in.png", _gray())
    out = tmp_path / "out.png"
    status = cli.main(["colorize", str(tmp_path / "in.png"), "-o", str(out), "--model",
                       str(package), "--device", "cpu"])  # fmt: skip
    assert status == 0
    want = colorize(_gray(), model="beta-punks", device="cpu").astype(int)
    assert np.abs(iio.imread(out).astype(int) - want).max() <= 2


# ------------------------------------------------------------ others' packages


class _Sepia(torch.nn.Module):
    """A foreign gray -> RGB model: (batch, y, x) in [0, 1] -> (batch, y, x, rgb) in [0, 255]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tint = torch.tensor([1.0, 0.8, 0.6], dtype=x.dtype)
        return (x[..., None] * tint).clamp(0.0, 1.0) * 255.0


def _foreign_package(tmp_path, module, *, out_channels=3, batch=True, stretch=False):
    """A package with its own axis order, value ranges and preprocessing."""
    import bioimageio.spec as spec
    from bioimageio.spec.model import v0_5 as m

    scripted = torch.jit.script(module)
    scripted.save(str(tmp_path / "w.pt"))
    x = np.round(np.linspace(0, 255, 16 * 16)).astype(np.uint8).reshape(16, 16)
    x = x[None] if batch else x
    with torch.no_grad():
        y = scripted(torch.from_numpy(x.astype(np.float32) / 255.0)).numpy()
    np.save(tmp_path / "in.npy", x)
    np.save(tmp_path / "out.npy", y.astype(np.float32))
    (tmp_path / "README.md").write_text("# sepia\n\n## Validation\n\nnone\n")
    gray, rgb = m.TensorId("raw"), m.TensorId("colour")
    size = m.ParameterizedSize(min=16, step=8)
    descr = m.ModelDescr(
        name="sepia toner",
        description="tints gray",
        authors=[m.Author(name="someone")],
        cite=[m.CiteEntry(text="none", doi=m.Doi("10.1000/1"))],
        license="MIT",
        documentation=m.FileDescr(source=tmp_path / "README.md"),
        inputs=[
            m.InputTensorDescr(
                id=gray,
                axes=[
                    *([m.BatchAxis()] if batch else []),
                    m.SpaceInputAxis(id=m.AxisId("y"), size=size),
                    m.SpaceInputAxis(id=m.AxisId("x"), size=size),
                ],
                test_tensor=m.FileDescr(source=tmp_path / "in.npy"),
                data=m.IntervalOrRatioDataDescr(type="uint8"),
                preprocessing=[
                    m.EnsureDtypeDescr(kwargs=m.EnsureDtypeKwargs(dtype="float32")),
                    m.ScaleRangeDescr(kwargs=m.ScaleRangeKwargs(max_percentile=100.0))
                    if stretch
                    else m.ScaleLinearDescr(kwargs=m.ScaleLinearKwargs(gain=1 / 255)),
                ],
            )
        ],
        outputs=[
            m.OutputTensorDescr(
                id=rgb,
                axes=[
                    *([m.BatchAxis()] if batch else []),
                    m.SpaceOutputAxis(
                        id=m.AxisId("y"),
                        size=m.SizeReference(tensor_id=gray, axis_id=m.AxisId("y")),
                    ),
                    m.SpaceOutputAxis(
                        id=m.AxisId("x"),
                        size=m.SizeReference(tensor_id=gray, axis_id=m.AxisId("x")),
                    ),
                    m.ChannelAxis(
                        channel_names=[m.Identifier(f"c{i}") for i in range(out_channels)]
                    ),
                ],
                test_tensor=m.FileDescr(source=tmp_path / "out.npy"),
                data=m.IntervalOrRatioDataDescr(type="float32", range=(0.0, 255.0)),
            )
        ],
        weights=m.WeightsDescr(
            torchscript=m.TorchscriptWeightsDescr(
                source=tmp_path / "w.pt", pytorch_version=m.Version("2.0")
            )
        ),
    )
    path = tmp_path / "sepia.zip"
    spec.save_bioimageio_package(descr, output_path=path)
    return path


@pytest.mark.parametrize(("batch", "stretch"), [(True, False), (False, True)])
def test_a_foreign_gray_to_rgb_package_is_a_model(tmp_path, batch, stretch):
    # axes (batch, y, x) -> (batch, y, x, channel), or without batch axes; 0-255 in and out
    path = _foreign_package(tmp_path, _Sepia(), batch=batch, stretch=stretch)
    gray = _gray(50, 45)  # not a multiple of the package's size step: padded, cropped
    rgb = colorize(gray, model=str(path), device="cpu", chroma_size=None)
    lab = C.rgb_to_lab(rgb)
    np.testing.assert_allclose(lab[..., 0], C.gray_to_l(gray / 255.0), atol=0.6)
    mid = (gray > 60) & (gray < 180)
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    assert (r[mid] >= g[mid]).all()
    assert (g[mid] >= b[mid]).all()
    assert (r[mid] - b[mid]).mean() > 10  # sepia, not gray


def test_a_package_without_rgb_output_is_refused(tmp_path):
    class _OneChannel(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[..., None] * 255.0

    path = _foreign_package(tmp_path, _OneChannel(), out_channels=1)
    with pytest.raises(CheckpointError, match="no channel axis of 3"):
        colorize(_gray(), model=str(path), device="cpu")


def test_bad_packages_say_what_is_wrong(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match=r"no bioimage\.io package"):
        colorize(_gray(), model=str(tmp_path / "missing.zip"), device="cpu")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match=r"not a readable bioimage\.io package"):
        colorize(_gray(), model=str(tmp_path / "junk.zip"), device="cpu")
    status = cli.main(["export", "beta-punks", "--bioimageio", str(tmp_path / "x.yaml")])
    assert status == 2
    assert "is a .zip file" in capsys.readouterr().err
    (tmp_path / "there.zip").write_bytes(b"")
    status = cli.main(["export", "beta-punks", "--bioimageio", str(tmp_path / "there.zip")])
    assert status == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "there.zip").read_bytes() == b""


def test_without_bioimageio_spec_the_error_says_what_to_install(monkeypatch, package):
    from napari_colorize import bioimageio as B

    monkeypatch.setitem(sys.modules, "bioimageio.spec", None)
    with pytest.raises(ColorizeError, match=r"napari-colorize\[bioimageio\]"):
        B.require_spec()
    with pytest.raises(ColorizeError, match=r"napari-colorize\[bioimageio\]"):
        B.load_package(package)


def test_graph_constants_are_colors():
    # TorchScript takes no globals: the graph writes color.py's numbers out
    assert C.AB_SCALE == 128.0
    assert C.L_MAX == 100.0
    assert C._EPS == 0.008856
    assert C._KAPPA == 7.787
    assert C._F_INV_SWITCH == 0.2068966
    assert C._XYZ_FROM_RGB[1].sum() == pytest.approx(1.0, abs=1e-12)
    gray = torch.linspace(0, 1, 101)
    np.testing.assert_allclose(
        G.gray_to_l_torch(gray).numpy(), C.gray_to_l(gray.numpy()), atol=1e-4
    )
    np.testing.assert_allclose(G.l_to_gray_torch(G.gray_to_l_torch(gray)).numpy(), gray,
                               atol=1e-5)  # fmt: skip
