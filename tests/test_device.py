"""Devices and the CLI's `info`: the foundation every other test stands on."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import Device, DeviceUnavailable
from hardware import cuda_probe
from runtime.device import _resolve

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args, env_extra=None, timeout=120):
    env = {k: v for k, v in os.environ.items() if k != cuda_probe.SIMULATOR_VARIABLE}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)


@pytest.mark.parametrize("name", ["cpu", "cuda"])
def test_device_round_trip_keeps_values_and_integer_dtypes(name):
    dev = Device(name)
    x = np.arange(12, dtype=np.float64).reshape(3, 4)
    labels = np.array([3, 1, 2], dtype=np.int64)
    on_device = dev.asarray(x)
    assert dev.owns(on_device)
    assert dev.to_numpy(on_device).dtype == np.float32
    np.testing.assert_array_equal(dev.to_numpy(on_device), x)
    assert dev.to_numpy(dev.asarray(labels)).dtype == np.int64
    zeros = dev.zeros((2, 5))
    np.testing.assert_array_equal(dev.to_numpy(zeros), np.zeros((2, 5), np.float32))
    assert dev.empty((4,), np.int32).shape == (4,)
    dev.synchronize()


def test_simulated_cuda_says_so():
    dev = Device("cuda")
    if cuda_probe.real_gpu_count() == 0:
        assert dev.simulator and "simulator=True" in repr(dev)


def test_auto_is_cpu_without_a_real_gpu():
    expected = "cuda" if cuda_probe.real_gpu_count() > 0 and not cuda_probe.simulator_requested() else "cpu"
    assert Device("auto").name == expected


def test_bad_device_name_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown device 'gpu': choose one of cpu, cuda, auto"):
        Device("gpu")


@pytest.mark.skipif(cuda_probe.real_gpu_count() > 0, reason="a real GPU is present")
def test_cuda_without_gpu_or_simulator_explains_the_simulator(monkeypatch):
    monkeypatch.delenv(cuda_probe.SIMULATOR_VARIABLE, raising=False)
    with pytest.raises(DeviceUnavailable, match="NUMBA_ENABLE_CUDASIM=1"):
        _resolve("cuda")


def test_cli_info_reports_versions_threads_and_blas():
    result = run_cli("info", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["numba"] and info["numba_cuda"] and info["threads"] >= 1
    assert info["blas"] and info["blas"][0]["library"]
    assert info["simulator"] is False
    assert "present" in info["gpu"]


def test_cli_sim_flag_turns_the_simulator_on_before_numba_loads():
    result = run_cli("--device", "sim", "info", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["simulator"] is True


def test_cli_bad_device_is_a_one_line_usage_error():
    result = run_cli("--device", "gpu", "info")
    assert result.returncode == 2
    assert "invalid choice: 'gpu'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(cuda_probe.real_gpu_count() > 0, reason="a real GPU is present")
def test_cli_cuda_without_gpu_is_one_line_not_a_traceback():
    result = run_cli("--device", "cuda", "info")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "NUMBA_ENABLE_CUDASIM=1" in result.stderr
    assert "Traceback" not in result.stderr
