"""Device choice on machines with and without GPUs (CUDA and MPS simulated via monkeypatch)."""

import pytest

torch = pytest.importorskip("torch")

from napari_colorize import devices  # noqa: E402


@pytest.fixture
def two_gpus(monkeypatch):
    """A machine with two CUDA devices (the second one's memory cannot be queried) and no MPS."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: ["NVIDIA H200", "Tesla T4"][i])

    def mem_get_info(i):
        if i == 1:
            raise RuntimeError("busy")
        return 96.5e9, 141e9

    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_cpu_only_machine(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert devices.resolve_device("auto") == torch.device("cpu")
    assert [d.name for d in devices.available_devices()] == ["cpu"]
    with pytest.raises(ValueError, match="no CUDA GPU; use --device cpu"):
        devices.resolve_device("cuda")
    with pytest.raises(ValueError, match="'mps' is not available here"):
        devices.resolve_device("mps")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        devices.resolve_device("gpu")
    assert devices.autocast_dtype("cpu") is None


def test_cuda_devices_are_listed_by_name_with_their_free_memory(two_gpus):
    found = devices.available_devices()
    assert [d.name for d in found] == ["cuda:0", "cuda:1", "cpu"]
    assert found[0].label == "cuda:0 - NVIDIA H200 (96.5 GB free)"
    assert found[1].label == "cuda:1 - Tesla T4"  # free memory unknown: not shown
    assert devices.resolve_device("auto") == torch.device("cuda")
    assert devices.resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ValueError, match=r"2 CUDA device\(s\), cuda:0..cuda:1"):
        devices.resolve_device("cuda:2")


@pytest.mark.parametrize(("bf16", "dtype"), [(True, "bfloat16"), (False, "float16")])
def test_cuda_autocasts_to_bf16_where_supported(two_gpus, monkeypatch, bf16, dtype):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert devices.autocast_dtype("cuda:0") == getattr(torch, dtype)


def test_mps_comes_after_cuda_and_before_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert [d.name for d in devices.available_devices()] == ["mps", "cpu"]
    assert devices.resolve_device("auto") == torch.device("mps")
    assert devices.autocast_dtype("mps") is None
