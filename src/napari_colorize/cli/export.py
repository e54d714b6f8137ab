"""Write MODEL as a bioimage.io model package: a zip with a TorchScript graph (gray in,
RGB out, the input's lightness kept), test tensors, a cover and the model's metrics, which
bioimage.io tools (bioimageio.core, deepImageJ, ilastik) run without napari-colorize. Needs
pip install 'napari-colorize[bioimageio]'.
"""

from __future__ import annotations

HELP = "write a model as a bioimage.io model package"


def add_arguments(p) -> None:
    """Declare the ``export`` subcommand's arguments on its parser ``p``."""
    p.add_argument("model", metavar="MODEL", help="registered model name or checkpoint file")
    p.add_argument("--bioimageio", required=True, metavar="OUT.zip", help="package to write")
    p.add_argument("--name", help="the package's name (default: from the model)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT.zip")


def run(args) -> int:
    """Run ``export``; the exit status."""
    from ..export import export_bioimageio

    path = export_bioimageio(args.model, args.bioimageio, name=args.name, overwrite=args.overwrite)
    print(f"wrote {path}; use it with --model {path} (bioimageio.core: bioimageio test {path})")
    return 0
