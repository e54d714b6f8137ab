"""colorize_dask: lazy, any scheduler, a two-process LocalCluster equal to one process."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from napari_colorize import colorize, colorize_dask  # noqa: E402
from napari_colorize import dask_inference as di  # noqa: E402
from napari_colorize.cli import main  # noqa: E402
from napari_colorize.hints import PointHints  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """Two worker processes of one thread, started once for the module."""
    with pytest.MonkeyPatch.context() as mp:
        # workers inherit this: their registry never sees the user's own models
        mp.setenv("NAPARI_COLORIZE_DATA", str(tmp_path_factory.mktemp("worker-data")))
        mp.setenv("OMP_NUM_THREADS", "1")
        # as in this process (conftest; this module-wide fixture starts before it): no bf16
        mp.setenv("NAPARI_COLORIZE_PRECISION", "fp32")
        with (
            distributed.LocalCluster(
                n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            yield client


def _stack(n=8, dtype=np.uint16, seed=0):
    """Punk-sized planes with a range of their own (uint16: the range comes from the data)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:24, :24]
    planes = [
        np.sin(xx / (3 + i)) + np.cos(yy / (2 + i)) + 0.3 * rng.random((24, 24)) for i in range(n)
    ]
    stack = np.stack(planes)
    stack = (stack - stack.min()) / np.ptp(stack)
    return (stack * 3000 + 500).astype(dtype)


def _hints(shape):
    points = [(0, 5, 5), (0, 18, 18), (2, 10, 4), (shape[0] - 1, 12, 12)]
    colors = [(1, 0, 0), (0, 0, 1), (0, 1, 0), (1, 1, 0)]
    return PointHints(points, colors, 3, shape)


def test_cluster_equals_one_process(client):
    stack = _stack()
    expected = colorize(stack, model="beta-punks", device="cpu")
    lazy = colorize_dask(
        da.from_array(stack, chunks=(1, 24, 24)), model="beta-punks", device="cpu"
    )
    assert lazy.shape == (8, 24, 24, 3)
    assert lazy.dtype == np.uint8
    assert lazy.chunks[0] == (1,) * 8
    np.testing.assert_array_equal(client.compute(lazy).result(), expected)


def test_model_loaded_once_per_worker(client):
    stack = _stack(16, seed=1)
    lazy = colorize_dask(
        da.from_array(stack, chunks=(1, 24, 24)), model="beta-punks", device="cpu"
    )
    client.compute(lazy).result()
    client.compute(lazy + 0).result()  # a second computation reuses the workers' colorizers
    infos = client.run(di.cache_info)
    assert len(infos) == 2
    # 32 tasks on 2 processes: each built at most one colorizer (one model load) in all tests
    assert all(info["built"] <= 1 for info in infos.values()), infos
    assert sum(info["built"] for info in infos.values()) >= 1


def test_the_model_is_one_node_of_the_graph():
    """The colorizer's spec is one key every task depends on, not a copy in every task."""
    import torch

    module = torch.nn.Conv2d(1, 2, 3, padding=1)
    lazy = colorize_dask(da.from_array(_stack(6), chunks=(1, 24, 24)), model=module, device="cpu")
    graph = dict(lazy.__dask_graph__())
    specs = [key for key in graph if str(key).startswith("colorize-spec")]
    assert len(specs) == 1
    import pickle

    weights = module.weight.detach().numpy().tobytes()
    colorize_tasks = [k for k in graph if isinstance(k, tuple) and k[0].startswith("colorize-")]
    assert len(colorize_tasks) == 6
    for key in colorize_tasks:
        assert weights not in pickle.dumps(graph[key])


def test_a_changed_module_is_not_served_from_the_cache(client):
    """Workers hold unpickled copies of a module: a later call must send the new weights."""
    import torch

    module = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Tanh())
    stack = _stack(2)
    before = client.compute(colorize_dask(stack, model=module, device="cpu")).result()
    with torch.no_grad():
        module[0].bias += 0.5  # trained on meanwhile
    after = client.compute(colorize_dask(stack, model=module, device="cpu")).result()
    np.testing.assert_array_equal(after, colorize(stack, model=module, device="cpu"))
    assert not np.array_equal(before, after)


def test_any_scheduler_in_process_module():
    import torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Tanh())
    stack = _stack(4)
    expected = colorize(stack, model=module, device="cpu", chroma_size=None)
    lazy = colorize_dask(stack, model=module, device="cpu", chroma_size=None)
    for scheduler in ("sync", "threads"):
        np.testing.assert_array_equal(lazy.compute(scheduler=scheduler), expected)


def test_hints_on_a_cluster(client):
    """Points placed on the whole stack: each task paints its own planes' hints."""
    stack = _stack(6)
    hints = _hints(stack.shape)
    expected = colorize(stack, model="propagate", hints=hints)
    lazy = colorize_dask(da.from_array(stack, chunks=(2, 24, 24)), model="propagate", hints=hints)
    np.testing.assert_array_equal(client.compute(lazy).result(), expected)


def test_per_plane_hint_arrays_and_one_map_for_all():
    stack = _stack(4)
    maps = np.asarray(_hints(stack.shape).stack())
    for hints in (maps, da.from_array(maps, chunks=(3, 8, 8, 3)), maps[0]):
        expected = colorize(stack, model="propagate", hints=hints)
        lazy = colorize_dask(
            da.from_array(stack, chunks=(3, 12, 24)), model="propagate", hints=hints
        )
        np.testing.assert_array_equal(lazy.compute(scheduler="sync"), expected)


def test_temporal_sequences_are_one_task_each():
    stack = np.stack([_stack(4, seed=2), _stack(4, seed=3)])  # 2 sequences of 4 planes
    hints = PointHints([(s, *p) for s in (0, 1) for p in [(0, 5, 5), (3, 18, 18)]],
                       [(1, 0, 0), (0, 0, 1)] * 2, 3, stack.shape)  # fmt: skip
    expected = colorize(stack, model="propagate", hints=hints, temporal=True)
    lazy = colorize_dask(
        da.from_array(stack, chunks=(1, 1, 24, 24)), model="propagate", hints=hints, temporal=True
    )
    assert lazy.chunks[:2] == ((1, 1), (4,))
    np.testing.assert_array_equal(lazy.compute(scheduler="sync"), expected)


def test_rgb_and_single_image():
    rng = np.random.default_rng(4)
    rgb = (rng.random((2, 24, 24, 4)) * 255).astype(np.uint8)  # RGBA: L kept, colour replaced
    lazy = colorize_dask(da.from_array(rgb, chunks=(1, 12, 12, 2)), model="beta-punks")
    np.testing.assert_array_equal(
        lazy.compute(scheduler="sync"), colorize(rgb, model="beta-punks")
    )
    one = _stack(1)[0]
    np.testing.assert_array_equal(
        colorize_dask(one, model="beta-punks").compute(), colorize(one, model="beta-punks")
    )


def test_reference():
    rng = np.random.default_rng(5)
    reference = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
    stack = _stack(2)
    np.testing.assert_array_equal(
        colorize_dask(stack, reference=reference).compute(scheduler="sync"),
        colorize(stack, reference=reference),
    )


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"model": "beta-punks", "tiles": 3}, ["unknown option", "tiles"]),
        ({"model": "beta-punks", "out": np.zeros(1)}, ["lazy array", "to_zarr"]),
        ({"model": "no-such-model"}, ["no-such-model"]),
        ({"model": "propagate", "hints": np.zeros((5, 5, 3))}, ["hint", "shape"]),
        ({"model": "beta-punks", "value_range": (5, 1)}, ["value_range"]),
    ],
)
def test_bad_options_fail_before_computing(options, words):
    with pytest.raises(Exception) as info:
        colorize_dask(_stack(2), **options)
    message = str(info.value)
    assert all(word in message for word in words), message


def _write_zarr(path, stack, chunks):
    zarr = pytest.importorskip("zarr")
    z = zarr.open(str(path), mode="w", shape=stack.shape, chunks=chunks, dtype=stack.dtype)
    z[:] = stack
    return z


def test_cli_zarr_on_a_scheduler(client, tmp_path, capsys):
    zarr = pytest.importorskip("zarr")
    stack = _stack(6)
    _write_zarr(tmp_path / "in.zarr", stack, (2, 24, 24))
    out = tmp_path / "out.zarr"
    address = client.scheduler.address
    args = ["colorize", str(tmp_path / "in.zarr"), "-o", str(out), "--model", "beta-punks"]
    assert main([*args, "--device", "cpu", "--scheduler", address]) == 0
    result = zarr.open(str(out), mode="r")
    np.testing.assert_array_equal(result[:], colorize(stack, model="beta-punks", device="cpu"))
    assert result.attrs["napari-colorize"]["model"] == "beta-punks"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    # an existing result is kept without --overwrite
    assert main([*args, "--scheduler", address]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_cli_zarr_local_threads_and_errors(tmp_path, capsys, monkeypatch):
    zarr = pytest.importorskip("zarr")
    from napari_colorize import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "0.5s")
    stack = _stack(3)
    _write_zarr(tmp_path / "in.zarr", stack, (1, 24, 24))
    out = tmp_path / "out.zarr"
    assert (
        main(["colorize", str(tmp_path / "in.zarr"), "-o", str(out), "--model", "beta-punks"]) == 0
    )
    np.testing.assert_array_equal(
        zarr.open(str(out), mode="r")[:], colorize(stack, model="beta-punks")
    )
    capsys.readouterr()
    png = tmp_path / "a.png"
    png.write_bytes(b"")
    bad = [
        (["colorize", str(png), "-o", str(tmp_path / "x.zarr"), "--workers", "2"], "zarr array"),
        (["colorize", str(tmp_path / "in.zarr"), "-o", str(tmp_path / "x.tif")], ".zarr"),
        (["colorize", str(tmp_path / "in.zarr"), "-o", str(tmp_path / "y.zarr"), "--workers", "0"],
         "--workers"),
        (["colorize", str(tmp_path / "in.zarr"), "-o", str(tmp_path / "y.zarr"), "--scheduler",
          "tcp://127.0.0.1:1"], "cannot reach"),
        (["colorize", str(tmp_path / "in.zarr"), "-o", str(tmp_path / "y.ome.zarr"),
          "--workers", "1"], "plain zarr"),
        (["colorize", str(tmp_path / "group.zarr"), "-o", str(tmp_path / "y.zarr")],
         "group.zarr/in"),
    ]  # fmt: skip
    zarr.open_group(str(tmp_path / "group.zarr"), mode="w").create_array(
        "in", shape=(4, 4), dtype="uint8"
    )
    for argv, words in bad:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert words in err, err
        assert "Traceback" not in err
    kept = ("in.zarr", "out.zarr", "a.png", "group.zarr")
    assert not [p for p in tmp_path.iterdir() if p.name not in kept]


def test_cli_workers_start_a_local_cluster(tmp_path, monkeypatch, capsys):
    """--workers N: N worker processes of one thread each, closed afterwards."""
    zarr = pytest.importorskip("zarr")
    made = {}

    class FakeCluster:
        def __init__(self, **kwargs):
            made["cluster"] = kwargs

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            made["closed"] = True

    class FakeClient(FakeCluster):
        def __init__(self, cluster):
            self.scheduler = type("S", (), {"address": "fake://"})()

    monkeypatch.setattr(distributed, "LocalCluster", FakeCluster)
    monkeypatch.setattr(distributed, "Client", FakeClient)
    stack = _stack(2)
    _write_zarr(tmp_path / "in.zarr", stack, (1, 24, 24))
    out = tmp_path / "out.zarr"
    argv = ["colorize", str(tmp_path / "in.zarr"), "-o", str(out), "--model", "beta-punks"]
    assert main([*argv, "--workers", "3"]) == 0
    assert made["cluster"]["n_workers"] == 3
    assert made["cluster"]["threads_per_worker"] == 1
    assert made["cluster"]["processes"] is True
    assert made["closed"]
    assert "fake://" in capsys.readouterr().err
    np.testing.assert_array_equal(zarr.open(str(out))[:], colorize(stack, model="beta-punks"))
