"""BatchNorm folding A/B at full resolution: ``python -m benchmarks.experiments.folding_ab``.

The same ``Colorizer(MODEL, chroma_size=None)`` on one SIZE² image, alternately
with the networks' BatchNorm folded into their convolutions (the default) and
unfolded (:func:`napari_colorize.models.folding.fold_batchnorm` replaced by the
identity), ROUNDS times each; prints each run and the best of each.
"""

from __future__ import annotations

import argparse
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.experiments.folding_ab")
    parser.add_argument("--model", default="beta-punks")
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)

    import napari_colorize.models.folding as folding
    from benchmarks.native import _image
    from napari_colorize.inference import Colorizer, clear_model_cache

    gray = _image((args.size, args.size))
    real = folding.fold_batchnorm
    best: dict[str, float] = {}
    try:
        for _ in range(args.rounds):
            for name in ("folded", "unfolded"):
                folding.fold_batchnorm = real if name == "folded" else (lambda m: m.eval())
                clear_model_cache()
                colorizer = Colorizer(args.model, device="cpu", chroma_size=None)
                colorizer.colorize(gray[:256, :256])
                start = time.perf_counter()
                colorizer.colorize(gray)
                seconds = time.perf_counter() - start
                best[name] = min(best.get(name, seconds), seconds)
                print(f"{name}: {seconds:.2f} s", flush=True)
    finally:
        folding.fold_batchnorm = real
    print(", ".join(f"best {name}: {s:.2f} s" for name, s in best.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
