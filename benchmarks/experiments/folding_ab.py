"""Inference preparation A/B at full resolution: ``python -m benchmarks.experiments.folding_ab``.

The same ``Colorizer(MODEL, chroma_size=None)`` on one SIZE² image, alternately
with the network as stored (``stored``), with its BatchNorm folded into its
convolutions only (``folded``) and fully prepared for inference (``prepared``,
the default: :func:`napari_colorize.models.folding.prepare_for_inference` also
projects before upsampling in the decoder and fuses each convolution with its
ReLU), ROUNDS times each, in float32 unless ``--precision`` says otherwise;
prints each run and the best of each.
"""

from __future__ import annotations

import argparse
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.experiments.folding_ab")
    parser.add_argument("--model", default="beta-punks")
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--precision", default="fp32", help="fp32 (default), bf16 or auto")
    args = parser.parse_args(argv)

    import napari_colorize.models.folding as folding
    from benchmarks.native import _image
    from napari_colorize.inference import Colorizer, clear_model_cache

    gray = _image((args.size, args.size))
    real = folding.prepare_for_inference
    variants = {
        "stored": lambda model, device=None: model.eval(),
        "folded": lambda model, device=None: folding.fold_batchnorm(model),
        "prepared": real,
    }
    best: dict[str, float] = {}
    try:
        for _ in range(args.rounds):
            for name, prepare in variants.items():
                folding.prepare_for_inference = prepare
                clear_model_cache()
                colorizer = Colorizer(
                    args.model, device="cpu", chroma_size=None, precision=args.precision
                )
                colorizer.colorize(gray[:1024, :1024])  # kernels and the context probe
                start = time.perf_counter()
                colorizer.colorize(gray)
                seconds = time.perf_counter() - start
                best[name] = min(best.get(name, seconds), seconds)
                print(f"{name}: {seconds:.2f} s", flush=True)
    finally:
        folding.prepare_for_inference = real
    print(", ".join(f"best {name}: {s:.2f} s" for name, s in best.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
