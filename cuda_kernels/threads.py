"""CPU threads: Numba's prange loops and BLAS share the cores without oversubscription.

Numba's OpenMP workers and OpenBLAS's pthreads both spin-wait after a parallel region. When a training
step alternates small BLAS calls with small prange loops, each pool spins on the cores the other one
needs, and the step runs several times slower. So BLAS runs single-threaded by default and the cores go
to Numba (``blas_calls.py`` runs large GEMMs on Numba's threads instead); set TILEGRAD_BLAS_THREADS to
change it (large lone GEMMs, as in the bench, gain from BLAS threads).
"""

from __future__ import annotations

import os

_LIMITS = []


def configure_cpu_threads(blas_threads: int | None = None) -> int:
    """Limit BLAS to ``blas_threads`` (default: $TILEGRAD_BLAS_THREADS or 1); returns the limit set."""
    from threadpoolctl import threadpool_limits

    if blas_threads is None:
        blas_threads = int(os.environ.get("TILEGRAD_BLAS_THREADS", "1"))
    import scipy.linalg  # noqa: F401  (load SciPy's BLAS so the limit reaches it too)

    _layer_priority_to_numba()

    _LIMITS.append(threadpool_limits(limits=blas_threads, user_api="blas"))
    return blas_threads


def _layer_priority_to_numba() -> None:
    """When numba was imported before tilegrad set its layer order, hand the order to numba's config too (it
    is read when the pool starts)."""
    import numba

    from hardware.cpu_threads import LAYER_PRIORITY

    order = os.environ.get(LAYER_PRIORITY, "").split()
    if sorted(order) == ["omp", "tbb", "workqueue"]:
        numba.config.THREADING_LAYER_PRIORITY = order


# ------------------------------------------------------------------------------------------------
# Small loops on the calling thread
# ------------------------------------------------------------------------------------------------
# Below this many elements a loop runs serially: waking a passively waiting worker costs far more than
# PyTorch's spinning pool pays for its grain of 32,768 (at::internal::GRAIN_SIZE), and far more again when
# another process holds the core a worker needs. Measured on 2 cores (docs/benchmarks.md): a ReLU or a column
# sum of 128k elements ran slower on two threads than on one; training steps ran fastest with 2^18.
# TILEGRAD_PARALLEL_GRAIN changes it (0: every loop parallel).
DEFAULT_GRAIN = 1 << 18
GRAIN_VARIABLE = "TILEGRAD_PARALLEL_GRAIN"


def _grain_from_environment() -> int:
    text = os.environ.get(GRAIN_VARIABLE, "")
    if not text:
        return DEFAULT_GRAIN
    try:
        grain = int(text)
    except ValueError:
        grain = -1
    if grain < 0:
        raise ValueError(f"{GRAIN_VARIABLE} must be a whole number of elements >= 0, got {text!r}")
    return grain


PARALLEL_GRAIN = _grain_from_environment()


class SerialBelowGrain:
    """A ``prange`` loop compiled twice: parallel, and serial (prange as range) for calls whose largest array
    argument has fewer than ``PARALLEL_GRAIN`` elements. Called from Python like the loop itself."""

    def __init__(self, parallel_loop):
        import types

        from numba import njit

        self.parallel = parallel_loop
        func = parallel_loop.py_func
        # a separate function object, so the two versions keep separate on-disk caches (keyed by the name)
        serial_func = types.FunctionType(func.__code__, func.__globals__, func.__name__ + "_serial",
                                         func.__defaults__, func.__closure__)
        serial_func.__qualname__ = func.__qualname__ + "_serial"
        options = {k: v for k, v in parallel_loop.targetoptions.items() if k not in ("parallel", "nopython")}
        self.serial = njit(**options)(serial_func)
        self.__name__, self.__doc__ = func.__name__, func.__doc__

    def __call__(self, *args):
        work = 0
        for arg in args:
            size = getattr(arg, "size", 0)
            if size > work:
                work = size
        return (self.serial if work < PARALLEL_GRAIN else self.parallel)(*args)


def serial_below_grain(parallel_loop) -> SerialBelowGrain:
    """Decorator over ``@njit(parallel=True)``: small calls run on the calling thread (see SerialBelowGrain)."""
    return SerialBelowGrain(parallel_loop)


# ------------------------------------------------------------------------------------------------
# Thread count and settings
# ------------------------------------------------------------------------------------------------


def max_threads() -> int:
    """The most threads a loop can use: the pool's size (NUMBA_NUM_THREADS, by default the cores)."""
    import numba

    return int(numba.config.NUMBA_NUM_THREADS)


def set_threads(n: int) -> int:
    """Run Numba's parallel loops on ``n`` threads from now on (1 .. the pool's size); returns ``n``.

    More threads than the pool holds is an error rather than oversubscription: the pool is sized once, by
    NUMBA_NUM_THREADS (default: the cores), before it starts."""
    import numba

    numba.set_num_threads(check_threads(n))
    return n


def check_threads(n: int) -> int:
    """``n`` when it is a thread count the pool can run (1 .. max_threads()), else one TypeError/ValueError."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"threads must be a whole number, got {n!r}")
    limit = max_threads()
    if n < 1:
        raise ValueError(f"threads must be at least 1, got {n}")
    if n > limit:
        raise ValueError(f"threads {n}: at most {limit} (the thread pool's size, NUMBA_NUM_THREADS, by default the "
                         f"cores; set NUMBA_NUM_THREADS={n} before starting Python to allow more)")
    return n


def thread_settings() -> dict:
    """threads, pool size, threading layer, wait policy and grain, as a header or ``info`` shows them."""
    import numba

    from hardware.cpu_threads import wait_policy

    try:
        layer = numba.threading_layer()  # the layer in use, once a parallel loop has started the pool
    except ValueError:
        chosen = str(numba.config.THREADING_LAYER)
        layer = (numba.config.THREADING_LAYER_PRIORITY[0] if chosen == "default" else chosen) + " (not started yet)"
    return {"threads": numba.get_num_threads(), "max_threads": max_threads(), "threading_layer": layer,
            "wait_policy": wait_policy(), "parallel_grain": PARALLEL_GRAIN}


def describe_threads() -> str:
    """One line for a run's header, e.g. "2 CPU threads (passive wait, omp layer)"."""
    s = thread_settings()
    plural = "s" if s["threads"] != 1 else ""
    wait, layer = s["wait_policy"].split(" (")[0], s["threading_layer"].split()[0]
    return f"{s['threads']} CPU thread{plural} ({wait} wait, {layer} layer)"
