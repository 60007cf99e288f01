"""CPU threads for the parallel loops: how many, and what the pool does between loops.

``set_threads(n)`` is the API twin of the CLI's ``--threads N``. The defaults (a passive wait, OpenMP first,
loops under ``PARALLEL_GRAIN`` elements on the calling thread) are set in ``hardware/cpu_threads.py`` and
``cuda_kernels/threads.py``; this module imports numba only when called, so importing ``runtime`` still
leaves the CUDA simulator to be chosen.
"""

from __future__ import annotations


def set_threads(n: int) -> int:
    """Run tilegrad's parallel CPU loops on ``n`` threads (1 up to the pool's size, by default the cores).

    On a machine where another process keeps a core busy, fewer threads than cores can be faster. More
    than the pool holds raises ValueError (set NUMBA_NUM_THREADS before Python starts to allow more).
    Returns ``n``."""
    from cuda_kernels.threads import set_threads as set_kernel_threads

    return set_kernel_threads(n)


def thread_settings() -> dict:
    """The CPU thread settings in force: ``threads``, ``max_threads``, ``threading_layer``, ``wait_policy``
    and ``parallel_grain`` (loops over fewer elements run on the calling thread)."""
    from cuda_kernels.threads import thread_settings as kernel_thread_settings

    return kernel_thread_settings()
