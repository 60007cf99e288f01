"""What every kernel test shares: the backends, moving arrays to them, poisoned outputs, shapes that
straddle tile boundaries, and an example budget that keeps the simulator affordable."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cuda_kernels import SIMULATOR, get_backend

# One test, every backend: the cuda case runs on the GPU when there is one, else in the simulator.
BACKENDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda-sim" if SIMULATOR else "cuda", marks=pytest.mark.gpu),
]


def simulated(backend: str) -> bool:
    return backend == "cuda" and SIMULATOR


def to_backend(backend: str, array):
    array = np.ascontiguousarray(array)
    if backend == "cuda":
        from numba import cuda

        return cuda.to_device(array)
    return array


def to_host(array) -> np.ndarray:
    return array if isinstance(array, np.ndarray) else array.copy_to_host()


def poisoned(backend: str, shape, dtype=np.float32):
    """An output buffer full of NaN (or -7 for integers): an element the op forgets to write fails."""
    fill = np.nan if np.issubdtype(np.dtype(dtype), np.floating) else -7
    return to_backend(backend, np.full(shape, fill, dtype))


def kernels(backend: str):
    return get_backend(backend)


def straddling(tile: int, limit: int) -> st.SearchStrategy[int]:
    """Sizes around a tile boundary (1, tile-1, tile, tile+1, a prime) that do not exceed ``limit``."""
    candidates = sorted({1, 2, tile - 1, tile, tile + 1, 2 * tile + 1, 7, 13, 31, 61, 127, 251} - {0})
    return st.sampled_from([c for c in candidates if c <= limit])


def for_all(backend: str, strategy, check, sim_examples: int = 4):
    """Run the Hypothesis property ``check`` on ``backend``; fewer examples in the simulator."""
    budget = settings().max_examples
    if simulated(backend):
        budget = min(budget, sim_examples)
    given(strategy)(settings(max_examples=budget)(check))()


def assert_close(actual, expected, rtol, atol, what=""):
    actual = to_host(actual)
    assert not np.isnan(actual).any() or np.isnan(expected).any(), f"{what}: output has unwritten (NaN) elements"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def random_array(rng, shape, scale=1.0, dtype=np.float32):
    return (rng.standard_normal(shape) * scale).astype(dtype)
