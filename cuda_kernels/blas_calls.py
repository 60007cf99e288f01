"""SGEMM called from Numba-compiled code, so that Numba's own threads run BLAS.

Why: on this project's CPUs, OpenBLAS's thread pool and Numba's OpenMP pool both spin-wait after
each parallel region, and a training step alternates between them, so BLAS runs single-threaded
(``threads.py``). That costs every large GEMM its other cores. Here a ``prange`` loop cuts C into one
block per Numba thread and each thread calls single-threaded SGEMM on its block: one thread pool for
the whole step, and GEMMs that use every core (measured: 256x784x256 from ~95 to ~165 GFLOP/s on
2 cores).

The call goes through ``numba_xxgemm``, the C helper behind Numba's own ``np.dot`` (it forwards to
SciPy's ``cython_blas.sgemm``), so the compiled functions can be cached on disk, unlike a ctypes
function pointer. BLAS is column-major; a row-major (M, N) block with row stride ldc is, to BLAS, the
column-major (N, M) matrix C^T with leading dimension ldc, and C^T = op(B)^T @ op(A)^T: we pass B
before A and swap the transpose flags.

Shapes: op(A) (M, K), op(B) (K, N), C (M, N); every array C-contiguous, float32.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange, types
from numba.np.linalg import ensure_blas

from .cpu_tanh import tanh_float32

ensure_blas()  # imports scipy.linalg.cython_blas, which numba_xxgemm looks sgemm up in

_XXGEMM = types.ExternalFunction("numba_xxgemm", types.intc(
    types.char, types.char, types.char,                       # kind, transa, transb
    types.intp, types.intp, types.intp,                       # m, n, k
    types.CPointer(types.float32),                            # alpha
    types.CPointer(types.float32), types.intp,                # a, lda
    types.CPointer(types.float32), types.intp,                # b, ldb
    types.CPointer(types.float32),                            # beta
    types.CPointer(types.float32), types.intp))               # c, ldc

_KIND_S, _NOTRANS, _TRANS = ord("s"), ord("n"), ord("t")
ACT_NONE, ACT_RELU, ACT_TANH = 0, 1, 2  # the GEMM epilogue's activations (gemm.ACTIVATIONS names them)

# Below this many FLOPs a GEMM runs as one BLAS call on the calling thread: opening a parallel region
# costs a few microseconds, as much as a ~1 MFLOP GEMM takes on one core.
SPLIT_MIN_FLOPS = 2.0e6


@njit(cache=True)
def sgemm_block(c, c_offset, ldc, a, a_offset, lda, b, b_offset, ldb, m, n, k, trans_a, trans_b, scalars):
    """Row-major C[m, n] = scalars[0] * op(A) @ op(B) + scalars[1] * C on flat float32 buffers.

    c, a, b are 1-D views of the stored arrays; *_offset index their first element, ld* their row
    strides in elements; scalars = [alpha, beta] (beta == 0: C is not read, as in BLAS).
    """
    _XXGEMM(_KIND_S, _TRANS if trans_b else _NOTRANS, _TRANS if trans_a else _NOTRANS, n, m, k,
            scalars.ctypes, b[b_offset:].ctypes, ldb, a[a_offset:].ctypes, lda, scalars[1:].ctypes,
            c[c_offset:].ctypes, ldc)


@njit(cache=True, fastmath=True)
def apply_epilogue(c, row0, row1, col0, col1, bias, has_bias, act):
    """C[row0:row1, col0:col1] = act(C + bias): the GEMM epilogue, on one block of C."""
    for i in range(row0, row1):
        for j in range(col0, col1):
            v = c[i, j]
            if has_bias:
                v += bias[j]
            if act == ACT_RELU:
                v = max(v, np.float32(0.0))
            elif act == ACT_TANH:
                v = tanh_float32(v)
            c[i, j] = v


@njit(cache=True)
def _gemm_part(c, a, b, scalars, trans_a, trans_b, bias, has_bias, act, part, parts):
    """Block ``part`` of ``parts``: a band of C's rows when C is tall, else a band of its columns."""
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    lda, ldb = a.shape[1], b.shape[1]
    if m >= n:  # rows lo:hi of C need rows lo:hi of op(A): a's rows, or a's columns when transposed
        lo, hi = part * m // parts, (part + 1) * m // parts
        row0, row1, col0, col1 = lo, hi, 0, n
        c_offset, a_offset, b_offset = lo * n, (lo if trans_a else lo * lda), 0
    else:       # columns lo:hi of C need columns lo:hi of op(B)
        lo, hi = part * n // parts, (part + 1) * n // parts
        row0, row1, col0, col1 = 0, m, lo, hi
        c_offset, a_offset, b_offset = lo, 0, (lo * ldb if trans_b else lo)
    if row1 > row0 and col1 > col0:
        sgemm_block(c.reshape(-1), c_offset, n, a.reshape(-1), a_offset, lda, b.reshape(-1), b_offset, ldb,
                    row1 - row0, col1 - col0, k, trans_a, trans_b, scalars)
        if has_bias or act != ACT_NONE:
            apply_epilogue(c, row0, row1, col0, col1, bias, has_bias, act)


@njit(cache=True)
def _scalars(alpha, beta):
    scalars = np.empty(2, np.float32)
    scalars[0], scalars[1] = alpha, beta
    return scalars


@njit(cache=True)
def _gemm_serial(c, a, b, alpha, beta, trans_a, trans_b, bias, has_bias, act):
    _gemm_part(c, a, b, _scalars(alpha, beta), trans_a, trans_b, bias, has_bias, act, 0, 1)


@njit(parallel=True, cache=True)
def _gemm_parts_parallel(c, a, b, alpha, beta, trans_a, trans_b, bias, has_bias, act, parts):
    scalars = _scalars(alpha, beta)
    for part in prange(parts):
        _gemm_part(c, a, b, scalars, trans_a, trans_b, bias, has_bias, act, part, parts)


def gemm_blas_split(c, a, b, alpha, beta, trans_a, trans_b, bias, act):
    """C = act(alpha op(A) op(B) + beta C + bias), one block of C per Numba thread (arguments checked by
    the caller). Small products stay on the calling thread."""
    ensure_warm()
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    has_bias = bias is not None
    args = (c, a, b, alpha, beta, bool(trans_a), bool(trans_b), bias if has_bias else c[0], has_bias, act)
    if 2.0 * m * n * k < SPLIT_MIN_FLOPS:
        _gemm_serial(*args)
    else:  # (numba.get_num_threads() inside the compiled function would keep it out of the disk cache)
        _gemm_parts_parallel(*args, _threads_now())


_WARM = []

try:  # Numba's thread count without get_num_threads()' launch check (0.2 us against 1.4 per call);
    # valid once the pool is up, which ensure_warm() sees to
    from numba.np.ufunc.parallel import _get_num_threads as _threads_now
except ImportError:  # a Numba without it
    _threads_now = numba.get_num_threads


def ensure_warm() -> None:
    """Once per process: launch Numba's thread pool, and make numba_xxgemm's first call (it looks sgemm up
    holding the GIL) on this thread, never first inside a parallel region whose workers could wait on a
    GIL the caller holds."""
    if _WARM:
        return
    numba.get_num_threads()
    one = np.ones((1, 1), np.float32)
    _gemm_serial(np.empty((1, 1), np.float32), one, one, np.float32(1), np.float32(0), False, False, one[0], False,
                 ACT_NONE)
    _WARM.append(True)
