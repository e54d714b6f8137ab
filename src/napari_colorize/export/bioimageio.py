"""Write a model as a bioimage.io model package (model format 0.5, TorchScript weights).

The package holds one TorchScript graph, :class:`~.graph.GrayToRGB`: gray in
[0, 1] in, sRGB in [0, 1] out, the whole colorization inside (lightness, the
working size, the network, Lab -> RGB with the input's own L), so any
bioimage.io consumer (bioimageio.core, deepImageJ, ilastik, ...) or plain
``torch.jit.load`` runs it without napari-colorize. Test tensors, a cover, a
README with the checkpoint's metrics, the training data and the licence come
with it. The description is built with :mod:`bioimageio.spec` and validated
before the zip is written.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np

from ..bioimageio import require_spec
from ..errors import ColorizeError

__all__ = ["LICENSE_ID", "export_bioimageio"]

#: The project's licence (pyproject.toml, LICENSE); exported models carry it.
LICENSE_ID = "BSD-3-Clause"
_LICENSE_FILE = "LICENSE"


def _license_text() -> str:
    from importlib import metadata

    try:
        dist = metadata.distribution("napari-colorize")
        for f in dist.files or ():
            if f.name.upper().startswith("LICENSE"):
                return f.read_text()
    except (metadata.PackageNotFoundError, OSError):
        pass
    # a source checkout
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / _LICENSE_FILE
        if candidate.is_file():
            return candidate.read_text()
    return f"{LICENSE_ID} (https://spdx.org/licenses/{LICENSE_ID}.html)\n"


def _working_rule(meta) -> tuple[int, int, int]:
    """(near, reference, default) of the working-size rule; -1 for None."""
    from ..cards import _size_rule
    from ..inference import DEFAULT_CHROMA_SIZE

    near, reference = _size_rule(meta.extra, meta.data, DEFAULT_CHROMA_SIZE)
    return (
        (-1 if near is None else int(near)),
        (-1 if reference is None else int(reference)),
        (DEFAULT_CHROMA_SIZE),
    )


def _default_test_image(near: int) -> np.ndarray:
    """The astronaut (shipped with scikit-image) in gray, at about twice the working size."""
    import torch
    import torch.nn.functional as F

    from ..sample_data import gray_photo

    gray = gray_photo()[0][0].astype(np.float32) / 255.0
    side = int(np.clip(2 * near if near > 0 else 64, 32, 256))
    small = F.interpolate(torch.from_numpy(gray)[None, None], size=(side, side), mode="area")
    return np.round(small[0, 0].numpy() * 255.0) / 255.0  # a gray an 8-bit file could hold


def _as_gray(image) -> np.ndarray:
    import torch

    from .. import images
    from ..bioimageio.graph import l_to_gray_torch

    lightness, layout = images.to_lightness(np.asarray(image))
    if layout.n_planes != 1:
        raise ValueError(f"test_image must be one 2D image, got shape {layout.shape}")
    return l_to_gray_torch(torch.from_numpy(lightness)).numpy()


def _cover(gray: np.ndarray, rgb: np.ndarray, path: Path) -> None:
    """gray | colour side by side, enlarged (nearest) to at least 256 px wide."""
    import imageio.v3 as iio

    left = np.repeat(gray[..., None], 3, axis=-1)
    both = np.concatenate([left, rgb], axis=1)
    factor = max(1, -(-256 // both.shape[1]))
    both = both.repeat(factor, axis=0).repeat(factor, axis=1)
    iio.imwrite(path, np.round(both * 255.0).astype(np.uint8))


def _samples(gray: np.ndarray, rgb: np.ndarray, folder: Path) -> None:
    """The test image and its colours as 8-bit PNGs (bioimage.io's sample tensors)."""
    import imageio.v3 as iio

    iio.imwrite(folder / "sample_input.png", np.round(gray * 255.0).astype(np.uint8))
    iio.imwrite(folder / "sample_output.png", np.round(rgb * 255.0).astype(np.uint8))


def _readme(name, source, meta, rule, test_shape) -> str:
    metrics = {k: v for k, v in (meta.metrics or {}).items() if not isinstance(v, (dict, list))}
    rows = "\n".join(f"| {k} | {v} |" for k, v in metrics.items()) or "| (none stored) | |"
    near, reference, default = rule
    if near <= 0:
        working = "full resolution"
    elif reference <= 0:
        working = f"{near} px (longest side)"
    else:
        working = (
            f"{near} px (longest side) for images up to {4 * reference} px, else "
            f"{max(default, near)} px"
        )
    return f"""# {name}

A grayscale-image colorizer exported by napari-colorize from `{source}`
(architecture `{meta.arch}`).

## Input and output

- input `gray`: `(batch, 1, y, x)` float32 gray values in [0, 1] (8-bit images
  divided by 255; other data scaled to [0, 1] first).
- output `rgb`: `(batch, 3, y, x)` float32 sRGB in [0, 1], the same size.

Everything happens inside the TorchScript graph: the gray value becomes CIE L,
the network predicts a and b at the working size ({working}), ab is upsampled
bilinearly and joined with the input's own full-resolution L, and Lab becomes
sRGB (colours outside the sRGB gamut move towards the gray of the same
luminance, so the output's lightness is the input's).

```python
import torch
graph = torch.jit.load("weights.pt")
rgb = graph(gray)  # gray: (N, 1, H, W) float32 in [0, 1]
```

## Training data

{meta.data if meta.data is not None else "not recorded"}

## Validation

Metrics stored with the model (CIEDE2000 colour difference, PSNR, SSIM,
colourfulness, ... as computed by `napari-colorize evaluate`):

| metric | value |
| --- | --- |
{rows}

To validate on unseen data, colorize gray versions of colour images of the kind
the model was trained on and compare with the colour originals, e.g.
`napari-colorize evaluate` with this package as `--model`. The test tensors
(input {test_shape}) are reproduced by the graph to float precision.
"""


def export_bioimageio(
    model,
    dst,
    *,
    name: str | None = None,
    description: str | None = None,
    test_image=None,
    authors=("napari-colorize developers",),
    overwrite: bool = True,
):
    """Write ``model`` as a bioimage.io model package (a zip) that validates.

    Parameters
    ----------
    model : str or path-like
        A registered model name (``napari-colorize models``) or a checkpoint file.
    dst : str or path-like
        The package to write (``.zip``); written whole or not at all.
    name, description : str, optional
        The package's name and one-paragraph description (defaults from the model).
    test_image : array, optional
        One 2D gray (or RGB) image for the test tensors and the cover; default:
        the astronaut in gray at about twice the model's working size.
    authors : sequence of str
        Names for the package's authors.
    overwrite : bool
        Replace an existing ``dst``.

    Returns
    -------
    pathlib.Path
        ``dst``.

    Raises
    ------
    ColorizeError
        bioimageio.spec is not installed, the model is not a network, or the
        description does not validate.
    """
    spec = require_spec()
    import torch
    from bioimageio.spec.model import v0_5 as m

    from ..atomic import atomic_write
    from ..bioimageio.graph import GrayToRGB, quiet_jit, trace_network
    from ..registry import load_model

    dst = Path(dst).expanduser()
    if dst.suffix.lower() != ".zip":
        raise ValueError(f"a bioimage.io package is a .zip file; got {str(dst)!r}")
    if dst.exists() and not overwrite:
        raise ColorizeError(f"{dst} exists; pass overwrite=True (--overwrite) to replace it")
    if isinstance(model, str) and model in ("propagate", "reference"):
        raise ValueError(f"{model!r} is a training-free method, not a network to export")
    network, meta = load_model(model, device="cpu")
    network = network.float().eval()
    rule = _working_rule(meta)
    multiple = int(getattr(network, "downsampling", 32) or 1)
    example_side = max(multiple, (rule[0] if rule[0] > 0 else 64))
    example_side = -(-example_side // multiple) * multiple
    example = torch.zeros(1, 1, example_side, example_side)
    check = torch.rand(2, 1, 2 * multiple, 3 * multiple) * 2.0 - 1.0
    try:
        traced = trace_network(network, example, check)
    except (RuntimeError, TypeError) as exc:
        raise ColorizeError(
            f"{model} cannot be exported: tracing its network failed ({exc})"
        ) from None
    except ValueError as exc:
        raise ColorizeError(f"{model}: {exc}") from None
    with quiet_jit():
        graph = torch.jit.script(GrayToRGB(traced, *rule, multiple=multiple))

    gray = _default_test_image(rule[0]) if test_image is None else _as_gray(test_image)
    gray = np.ascontiguousarray(gray, dtype=np.float32)
    source = model if isinstance(model, str) else str(model)
    label = Path(source).stem if Path(source).suffix else source
    # the characters a bioimage.io name may hold
    name = name or re.sub(r"[^A-Za-z0-9_+\- ()]", "-", f"napari-colorize {label}")[:128]
    description = (
        description
        or (
            f"Colorizes grayscale images ({meta.arch} network from napari-colorize, trained on "
            f"{meta.data if meta.data is not None else 'unrecorded data'}); output keeps the "
            "input's lightness."
        )[:1000]
    )

    with tempfile.TemporaryDirectory(prefix="napari-colorize-bioimageio-") as tmp:
        tmp = Path(tmp)
        weights = tmp / "weights.pt"
        x = torch.from_numpy(gray)[None, None]
        with quiet_jit(), torch.no_grad():
            graph.save(str(weights))
            y = torch.jit.load(str(weights))(x)
        np.save(tmp / "test_input.npy", x.numpy())
        np.save(tmp / "test_output.npy", y.numpy().astype(np.float32))
        rgb = y[0].permute(1, 2, 0).numpy()
        _cover(gray, rgb, tmp / "cover.png")
        _samples(gray, rgb, tmp)
        (tmp / "README.md").write_text(
            _readme(name, source, meta, rule, tuple(x.shape)), encoding="utf-8"
        )
        (tmp / _LICENSE_FILE).write_text(_license_text(), encoding="utf-8")
        (tmp / "napari-colorize.json").write_text(
            json.dumps(meta.to_dict(), indent=2, default=str), encoding="utf-8"
        )
        try:
            descr = _description(
                m, tmp, name=name, description=description, meta=meta, authors=authors,
                n_parameters=sum(p.numel() for p in network.parameters()),
            )  # fmt: skip
        except ValueError as exc:  # pydantic's ValidationError
            first = str(exc).splitlines()
            raise ColorizeError(
                "the package description does not validate: " + " ".join(first[:3])
            ) from None
        if isinstance(descr, spec.InvalidDescr) or not isinstance(descr, m.ModelDescr):
            raise ColorizeError(f"the exported description does not validate: {descr}")

        def write(path: Path) -> None:
            spec.save_bioimageio_package(descr, output_path=path, local_files_only=True)

        atomic_write(dst, write)
    return dst


def _tensor(m, kind: str, folder: Path, *, tensor_id, description, channels, spatial):
    """The model 0.5 description of the ``"input"`` or the ``"output"`` tensor.

    Float32 images in [0, 1] with axes batch, channel (named ``channels``) and
    ``spatial``; its test and sample files are ``test_KIND.npy`` and
    ``sample_KIND.png`` in ``folder``.
    """
    descr = m.InputTensorDescr if kind == "input" else m.OutputTensorDescr
    return descr(
        id=tensor_id,
        description=description,
        axes=[
            m.BatchAxis(),
            m.ChannelAxis(channel_names=[m.Identifier(c) for c in channels]),
            *spatial,
        ],
        test_tensor=m.FileDescr(source=folder / f"test_{kind}.npy"),
        sample_tensor=m.FileDescr(source=folder / f"sample_{kind}.png"),
        data=m.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
    )


def _description(m, tmp: Path, *, name, description, meta, authors, n_parameters):
    """The model 0.5 description of the files in ``tmp``."""
    import torch
    from bioimageio.spec import ValidationContext
    from bioimageio.spec.dataset.v0_3 import DatasetDescr
    from bioimageio.spec.generic.v0_3 import Author, CiteEntry

    from .._version import __version__

    gray_id, rgb_id = m.TensorId("gray"), m.TensorId("rgb")
    y, x = m.AxisId("y"), m.AxisId("x")
    gray = _tensor(
        m,
        "input",
        tmp,
        tensor_id=gray_id,
        description="gray values in [0, 1] (8-bit images divided by 255)",
        channels=["gray"],
        spatial=[m.SpaceInputAxis(id=a, size=m.ParameterizedSize(min=4, step=1)) for a in (y, x)],
    )
    rgb = _tensor(
        m,
        "output",
        tmp,
        tensor_id=rgb_id,
        description="sRGB in [0, 1] with the input's lightness",
        channels=["red", "green", "blue"],
        spatial=[
            m.SpaceOutputAxis(id=a, size=m.SizeReference(tensor_id=gray_id, axis_id=a))
            for a in (y, x)
        ],
    )
    data_text = str(meta.data) if meta.data is not None else "not recorded"
    training_data = DatasetDescr(
        name=f"training data of {name}"[:128],
        description=data_text[:1000],
    )
    with ValidationContext(perform_io_checks=True):
        return m.ModelDescr(
            name=name,
            description=description,
            covers=[m.FileDescr(source=tmp / "cover.png")],
            authors=[Author(name=a) for a in authors],
            cite=[
                CiteEntry(
                    text="Zhang, Isola, Efros: Colorful Image Colorization (ECCV 2016), the "
                    "CIE Lab formulation (L in, ab out) napari-colorize's models follow",
                    doi=m.Doi("10.1007/978-3-319-46487-9_40"),
                )
            ],
            license=LICENSE_ID,
            documentation=m.FileDescr(source=tmp / "README.md"),
            attachments=[
                m.FileDescr(source=tmp / _LICENSE_FILE),
                m.FileDescr(source=tmp / "napari-colorize.json"),
            ],
            tags=["colorization", "image-to-image", "2d", "pytorch", "napari-colorize"],
            inputs=[gray],
            outputs=[rgb],
            weights=m.WeightsDescr(
                torchscript=m.TorchscriptWeightsDescr(
                    source=tmp / "weights.pt",
                    pytorch_version=m.Version(torch.__version__.split("+")[0]),
                )
            ),
            training_data=training_data,
            config=m.Config(
                bioimageio=m.BioimageioConfig(
                    architecture_type=str(meta.arch)[:32],
                    architecture_description=(
                        f"napari-colorize {meta.arch}: predicts CIE a, b from L at a working "
                        "size; the graph wraps it between gray -> L and Lab -> sRGB"
                    ),
                    task="colorization of grayscale images",
                    model_parameter_count=int(n_parameters),
                ),
                **{
                    "napari-colorize": {
                        "version": __version__,
                        "arch": meta.arch,
                        "config": meta.config,
                        "data": meta.data,
                        "metrics": meta.metrics,
                        "extra": meta.extra,
                    }
                },
            ),
        )
