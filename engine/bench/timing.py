"""Timing: the first call (compilation, caches) timed apart, then the median of repeats.

CPU: wall clock around the call. GPU: CUDA events on the stream after a synchronize, so launch
queueing does not hide the kernel's time. The simulator is never timed.
"""

from __future__ import annotations

import gc
import statistics
import time
from contextlib import contextmanager


def time_calls(run, device_name: str, repeats: int, budget_s: float = 2.0, best: bool = False,
               min_time_s: float = 0.0) -> tuple[float, float]:
    """(first_call_ms, median_ms) of ``run()``: at least ``repeats`` calls and ``min_time_s`` seconds of
    them, but stops once ``budget_s`` is spent (>= 3 repeats).

    ``min_time_s`` makes a millisecond case take hundreds of samples: on a shared machine a burst of
    noise then moves the median little. ``best=True`` returns the fastest repeat instead of the
    median: what a ceiling (the most the machine can do) should be, as opposed to a result.
    """
    gc_was_on = gc.isenabled()
    gc.disable()  # as timeit does: a full collection here takes ~70 ms, and would land inside one call
    try:
        return _time(run, device_name, repeats, budget_s, best, min_time_s)
    finally:
        if gc_was_on:
            gc.enable()


def _time(run, device_name, repeats, budget_s, best, min_time_s):
    if device_name == "cuda":
        first, samples = _time_cuda(run, repeats, budget_s)
        return first, min(samples) if best else statistics.median(samples)
    start = time.perf_counter()
    run()
    first = (time.perf_counter() - start) * 1e3
    samples, spent = [], 0.0
    while (len(samples) < repeats or spent < min_time_s) and (len(samples) < 3 or spent < budget_s):
        t0 = time.perf_counter()
        run()
        dt = time.perf_counter() - t0
        samples.append(dt * 1e3)
        spent += dt
    return first, min(samples) if best else statistics.median(samples)


def _time_cuda(run, repeats: int, budget_s: float) -> tuple[float, list[float]]:
    from numba import cuda

    cuda.synchronize()
    t0 = time.perf_counter()
    run()
    cuda.synchronize()
    first = (time.perf_counter() - t0) * 1e3
    run()  # a second warm-up: the first may include module loading
    cuda.synchronize()
    samples, spent = [], 0.0
    start, end = cuda.event(), cuda.event()
    while len(samples) < repeats and (len(samples) < 3 or spent < budget_s):
        start.record()
        run()
        end.record()
        end.synchronize()
        ms = start.elapsed_time(end)
        samples.append(ms)
        spent += ms / 1e3
    return first, samples


@contextmanager
def cpu_threads(n: int, blas_threads: int | None = None):
    """Run Numba prange loops on ``n`` threads inside the block (and BLAS on ``blas_threads``; None
    keeps tilegrad's policy of single-threaded BLAS beside Numba, see cuda_kernels/threads.py)."""
    import numba
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        if blas_threads is None:
            yield
        else:
            with threadpool_limits(limits=blas_threads, user_api="blas"):
                yield
    finally:
        numba.set_num_threads(before)
