"""Time colorizing a stack in one process and on a dask.distributed LocalCluster.

The same stack (``--planes`` rotated crops of scikit-image's camera, uint16) is
colorized by :func:`napari_colorize.colorize` in this process and by
:func:`napari_colorize.colorize_dask` on a LocalCluster of ``--workers``
processes with one thread each; the results are checked to be equal. Printed:
the cluster's start, its first computation (workers import torch and load the
model) and a warm one, against one process (model loaded beforehand).

Run alone: ``python -m benchmarks.experiments.dask_cluster [--planes 64] [--size 256]
[--workers 2]``.
Each worker process runs torch with one thread (LocalCluster sets ``OMP_NUM_THREADS=1``);
the single process uses torch's default, all the CPUs it may use.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def make_stack(planes: int, size: int) -> np.ndarray:
    from skimage import data, transform

    img = data.camera().astype(np.float32) / 255.0
    crop = slice(256 - size // 2, 256 + size // 2)
    planes = [transform.rotate(img, 5 * i)[crop, crop] for i in range(planes)]
    return (np.stack(planes) * 60000).astype(np.uint16)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planes", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default="beta-punks")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many warm runs")
    args = parser.parse_args(argv)

    import dask.array as da
    import torch
    from distributed import Client, LocalCluster

    from napari_colorize import colorize, colorize_dask

    stack = make_stack(args.planes, args.size)
    options = {"model": args.model, "device": "cpu"}
    colorize(stack[:1], **options)  # the model loaded, torch warm
    one_process = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        expected = colorize(stack, **options)
        one_process.append(time.perf_counter() - start)

    start = time.perf_counter()
    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        cluster_start = time.perf_counter() - start
        lazy = colorize_dask(da.from_array(stack, chunks=(1, *stack.shape[1:])), **options)
        start = time.perf_counter()
        first = client.compute(lazy).result()
        first_s = time.perf_counter() - start
        warm_s = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            warm = client.compute(lazy).result()
            warm_s.append(time.perf_counter() - start)
    np.testing.assert_array_equal(first, expected)
    np.testing.assert_array_equal(warm, expected)
    print(
        json.dumps(
            {
                "stack": list(stack.shape),
                "model": args.model,
                "cpus": len(os.sched_getaffinity(0)),
                "torch_threads_one_process": torch.get_num_threads(),
                "one_process_s": [round(t, 2) for t in one_process],
                "workers": args.workers,
                "cluster_start_s": round(cluster_start, 2),
                "cluster_first_s": round(first_s, 2),
                "cluster_warm_s": [round(t, 2) for t in warm_s],
                "equal": True,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
