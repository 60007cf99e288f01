"""Test tiers (see tests/README.md): default (CPU twins + CUDA kernels in the simulator when there is
no GPU), ``compile`` (PTX for sm_90, no GPU needed) and ``gpu`` (the same tests on a real GPU).

The simulator has to be switched on before numba is imported, so this runs first.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hardware import cuda_probe  # noqa: E402  (imports only the standard library)

SIMULATOR_ASKED_FOR = cuda_probe.simulator_requested()  # by the user (or `cli.py --device sim check`)
REAL_GPU = cuda_probe.real_gpu_count() > 0 and not SIMULATOR_ASKED_FOR
if not REAL_GPU:
    cuda_probe.enable_simulator()
cuda_probe.ensure_numba_cache_dir()

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci", max_examples=20, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough", max_examples=300, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_report_header(config):
    where = "a real GPU" if REAL_GPU else "Numba's CUDA simulator (no GPU found)"
    return f"tilegrad: CUDA kernels run on {where}; hypothesis profile {os.environ.get('HYPOTHESIS_PROFILE', 'ci')}"


def _selects_gpu_tier(config) -> bool:
    return "gpu" in (config.getoption("markexpr", "") or "")


def pytest_collection_modifyitems(config, items):
    # `pytest -m gpu` asks for real hardware: without one, say so instead of re-running the simulator,
    # unless the simulator was asked for explicitly (NUMBA_ENABLE_CUDASIM=1 pytest -m gpu).
    if REAL_GPU or SIMULATOR_ASKED_FOR or not _selects_gpu_tier(config):
        return
    skip = pytest.mark.skip(reason="the gpu tier needs a real GPU; the default tier ran these in the simulator")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
