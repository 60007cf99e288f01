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

    _LIMITS.append(threadpool_limits(limits=blas_threads, user_api="blas"))
    return blas_threads
