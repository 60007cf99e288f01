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
    gc.disable()  # as timeit does: a full collection would land inside one timed call
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


def time_interleaved(entries: list, rounds: int, min_time_s: float, budget_s: float = 2.0) -> dict:
    """{name: (first_call_ms, median_ms)} for several CPU versions of one case, timed in alternating blocks.

    ``entries``: (name, run, context, settle_s) — ``context()`` is entered around each of the run's blocks
    (its thread settings), and ``settle_s`` is slept after them (BLAS threads that spin after their last
    call). Each version's samples come from ``rounds`` blocks spread over the whole measurement, the
    order rotated every round, so two versions meet the machine's fast and slow phases alike and their
    ratio is a paired one (timed one after the other, two rows of the same code can differ by almost 2x
    on a shared VM).
    A version's time is the median of its blocks' medians: every block, a slot in time, weighs the same
    (a plain median over samples would weigh the fast phases more, which fit more calls into a block).
    Each version gets at least ``min_time_s`` of samples, at least one per block; after three rounds, a
    version stops once it has spent ``budget_s``.
    """
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        first, block_medians, spent = {}, {name: [] for name, *_ in entries}, {name: 0.0 for name, *_ in entries}
        for name, run, context, settle_s in entries:
            with context():
                start = time.perf_counter()
                run()
                first[name] = (time.perf_counter() - start) * 1e3
            time.sleep(settle_s)
        block_s = min_time_s / rounds
        for r in range(rounds):
            for name, run, context, settle_s in entries[r % len(entries):] + entries[:r % len(entries)]:
                if r >= 3 and spent[name] >= budget_s:
                    continue
                with context():
                    block, times = 0.0, []
                    while block < block_s or not times:
                        t0 = time.perf_counter()
                        run()
                        dt = time.perf_counter() - t0
                        times.append(dt * 1e3)
                        block += dt
                block_medians[name].append(statistics.median(times))
                spent[name] += block
                time.sleep(settle_s)
        return {name: (first[name], statistics.median(block_medians[name])) for name in first}
    finally:
        if gc_was_on:
            gc.enable()


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
