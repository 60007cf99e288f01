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
    """``np.testing.assert_allclose``, failing with a few lines a student can act on: how many outputs
    were never written (still NaN) or are wrong, and the first few of their indices with both values."""
    actual = to_host(actual)
    problem = mismatch(actual, expected, rtol, atol)
    if problem:
        raise AssertionError(f"{what}\n{problem}" if what else problem)


def mismatch(actual, expected, rtol, atol, first: int = 5) -> str | None:
    """None when ``actual`` matches ``expected`` as ``assert_allclose`` would accept; else one line of what
    differs: never-written elements (NaN where a number was expected) first, else values out of tolerance,
    with the first few indices, e.g. ``never written (still NaN): 1 of 97 outputs, first: [96]``."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.ndim == 0 and expected.size == 1:
        expected = expected.reshape(())
    if expected.shape != actual.shape and expected.ndim:  # a scalar stands for every element, as in NumPy's
        return f"output shape {actual.shape}, expected {expected.shape}"
    expected = np.broadcast_to(expected, actual.shape)
    if np.issubdtype(actual.dtype, np.floating) and np.issubdtype(expected.dtype, np.floating):
        unwritten = np.isnan(actual) & ~np.isnan(expected)
        if unwritten.any():
            where = np.argwhere(unwritten)[:first]
            return (f"never written (still NaN): {int(unwritten.sum())} of {actual.size} outputs, "
                    f"first: {', '.join(_index(i) for i in where)}")
    if actual.dtype == bool or expected.dtype == bool:
        wrong = actual != expected
    else:
        wrong = ~np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    if not wrong.any():
        return None
    where = np.argwhere(wrong)[:min(first, 3)]
    return (f"wrong: {int(wrong.sum())} of {actual.size} outputs beyond rtol={rtol:g} atol={atol:g}, first: "
            + "; ".join(f"{_index(i)} got {actual[tuple(i)]:.6g} expected {expected[tuple(i)]:.6g}" for i in where))


def _index(index) -> str:
    return f"[{', '.join(str(int(i)) for i in index)}]"


def random_array(rng, shape, scale=1.0, dtype=np.float32):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def in_process(capsys, *args):
    """``cli.main`` in this process (the quick way to test a command's errors): (exit code, stdout, stderr)."""
    import cli

    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line(code, err, expected=1):
    """The one-line error a command must give: its exit status, one line, no traceback; returns the line."""
    assert code == expected, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def sanitizer_finding(report) -> str | None:
    """The first error or warning of the latest launch that has one, in two lines (finding, fix), else None.
    The latest: Hypothesis replays its smallest failing example last, so that launch is the one it reports."""
    for launch in reversed(report.launches):
        found = [f for f in launch.findings if f.severity != "info"]
        if found:
            return f"sanitizer: {found[0].one_line()}\nfix? {found[0].hint()}"
    return None
