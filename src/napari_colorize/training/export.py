"""Turn a training checkpoint into a small inference file, with its test metrics.

``python -m napari_colorize.training.export SRC DST [--half] [--evaluate punks:test]
[--data TEXT]`` drops the training state, optionally stores the weights in
float16, evaluates the result (see :func:`napari_colorize.evaluation.evaluate`)
and records the report in the file's metadata, with how far bf16 moves the
model's colours on the same data (``bf16_change``, which ``precision="auto"``
judges bf16 by). This is how the bundled
``weights/*.safetensors`` files are made (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import sys

from .trainer import export_model

__all__ = ["export_and_evaluate", "main"]

#: The metrics stored in a bundled model's metadata.
REPORT_KEYS = ("ciede2000", "ciede2000_fg", "psnr", "ssim", "colorfulness",
               "colorfulness_true", "auc")  # fmt: skip


def export_and_evaluate(src, dst, *, half=False, evaluate_on=None, data=None, device="cpu"):
    """Export ``src`` to ``dst`` (see :func:`export_model`) and store its metrics.

    Parameters
    ----------
    src, dst : str or path
    half : bool
        Store floating-point weights as float16 (the model computes in float32).
    evaluate_on : str, optional
        Data spec to evaluate the exported file on (e.g. ``"punks:test"``).
    data : str, optional
        Replaces the description of the training data.

    Returns
    -------
    dict
        The metrics stored (empty without ``evaluate_on``).
    """
    import torch

    dtype = torch.float16 if half else None
    path = export_model(src, dst, dtype=dtype, data=data)
    if evaluate_on is None:
        return {}
    from ..evaluation import evaluate, precision_change
    from ..inference.precision import QUALITY_SET_KEY

    report = evaluate(str(path), data=evaluate_on, device=device)
    metrics = {k: round(float(report[k]), 4) for k in REPORT_KEYS}
    # what precision="auto" judges bf16 by (see inference/precision.py)
    metrics[QUALITY_SET_KEY] = round(precision_change(str(path), data=evaluate_on), 4)
    metrics["data"] = evaluate_on
    metrics["n_images"] = int(report["n_images"])
    export_model(path, path, metrics=metrics)
    return metrics


def main(argv=None) -> int:
    """Command line of this module; returns the exit status."""
    p = argparse.ArgumentParser(
        prog="python -m napari_colorize.training.export", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("src", help="training checkpoint")
    p.add_argument("dst", help="inference file to write")
    p.add_argument("--half", action="store_true", help="store the weights as float16")
    p.add_argument("--evaluate", metavar="SPEC", help="evaluate on this data, e.g. punks:test")
    p.add_argument("--data", metavar="TEXT", help="description of the training data")
    args = p.parse_args(argv)
    metrics = export_and_evaluate(
        args.src, args.dst, half=args.half, evaluate_on=args.evaluate, data=args.data
    )
    print(json.dumps({"path": args.dst, "metrics": metrics}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
