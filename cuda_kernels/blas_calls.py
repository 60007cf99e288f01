"""SGEMM called from Numba-compiled code, so that Numba's own threads run BLAS.

BLAS runs single-threaded (``threads.py``: its spinning pool and Numba's steal each other's cores), so a
``prange`` loop here cuts C into tiles, each one single-threaded SGEMM on one of Numba's threads: one
thread pool for the whole step. Where OpenBLAS has its small-matrix kernels (M*N*K <= 100^3: no packing,
faster than its packed path), C is cut into tiles that take them (``small_tile_grid``); elsewhere into
one band per thread. Where it runs its Haswell kernels (Haswell, Zen and this AMD EPYC), each call's K is
cut further, into pieces of 128 (``sgemm_k_pieces``): those kernels ran a training step's small-batch products
with K >= 256 far below their speed, and the pieces at full speed (docs/benchmarks.md).

The call goes through ``numba_xxgemm``, the C helper behind Numba's ``np.dot`` (it forwards to SciPy's
``cython_blas.sgemm``), so the compiled functions can be cached on disk, unlike a ctypes pointer. BLAS is
column-major: row-major C is its C^T = op(B)^T @ op(A)^T, so we pass B before A and swap the transpose
flags.

Shapes: op(A) (M, K), op(B) (K, N), C (M, N); every array C-contiguous, float32.
"""

from __future__ import annotations

import os

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

# Below this many FLOPs a GEMM runs on the calling thread: opening a parallel region costs a few
# microseconds, as much as a ~1 MFLOP GEMM takes on one core.
SPLIT_MIN_FLOPS = 2.0e6

# OpenBLAS's small-kernel test, in BLAS's column-major terms (kernel/x86_64/sgemm_small_kernel_permit_
# skylakex.c): M*N*K <= 100^3; never with both operands transposed; with only A transposed, only when
# M*N <= 1200 and K >= 32.
SMALL_MNK, SMALL_TN_MAX_MN, SMALL_TN_MIN_K = 100**3, 1200, 32
MAX_SMALL_TILES = 64  # past it (products over ~64 M multiply-adds) the packed path wins again
SMALL_KERNEL_CORES = ("SkylakeX", "Cooperlake", "SapphireRapids")  # OpenBLAS cores built from those kernels


@njit(cache=True)
def sgemm_block(c, c_offset, ldc, a, a_offset, lda, b, b_offset, ldb, m, n, k, trans_a, trans_b, scalars):
    """Row-major C[m, n] = scalars[0] * op(A) @ op(B) + scalars[1] * C on flat float32 buffers.

    c, a, b are 1-D views of the stored arrays; *_offset index their first element, ld* their row
    strides in elements; scalars = [alpha, beta] (beta == 0: C is not read, as in BLAS).
    """
    _XXGEMM(_KIND_S, _TRANS if trans_b else _NOTRANS, _TRANS if trans_a else _NOTRANS, n, m, k,
            scalars.ctypes, b[b_offset:].ctypes, ldb, a[a_offset:].ctypes, lda, scalars[1:].ctypes,
            c[c_offset:].ctypes, ldc)


@njit(cache=True)
def sgemm_k_pieces(c, c_offset, ldc, a, a_offset, lda, b, b_offset, ldb, m, n, k, trans_a, trans_b, scalars, k_piece):
    """sgemm_block with K in pieces at most ``k_piece`` deep, the pieces after the first adding to C (beta = 1);
    ``k_piece >= k``: one call."""
    accumulate = np.empty(2, np.float32)
    accumulate[0], accumulate[1] = scalars[0], 1.0
    for k0 in range(0, max(k, 1), k_piece):  # k == 0 still makes one call: C = beta * C
        sgemm_block(c, c_offset, ldc, a, a_offset + (k0 * lda if trans_a else k0), lda,
                    b, b_offset + (k0 if trans_b else k0 * ldb), ldb, m, n, min(k_piece, k - k0),
                    trans_a, trans_b, scalars if k0 == 0 else accumulate)


@njit(cache=True, fastmath=True, error_model="numpy")
def apply_epilogue(c, row0, row1, col0, col1, bias, has_bias, act):
    """C[row0:row1, col0:col1] = act(C + bias): the GEMM epilogue, on one block of C.

    Two details make this loop SIMD code: the column index is unsigned (a signed index that may be
    negative gets Numba's wraparound test on every access, which LLVM does not vectorize), and
    error_model="numpy" lets tanh's division be a division (Numba's default checks every divisor for zero).
    """
    first, last = np.uint64(col0), np.uint64(col1)
    for i in range(row0, row1):
        if act == ACT_RELU:
            for j in range(first, last):
                c[i, j] = max(c[i, j] + bias[j] if has_bias else c[i, j], np.float32(0.0))
        elif act == ACT_TANH:
            for j in range(first, last):
                c[i, j] = tanh_float32(c[i, j] + bias[j] if has_bias else c[i, j])
        elif has_bias:
            for j in range(first, last):
                c[i, j] += bias[j]


@njit(cache=True)
def _gemm_tile(c, a, b, scalars, trans_a, trans_b, bias, has_bias, act, tile, grid_rows, grid_cols, k_piece):
    """Tile ``tile`` of a grid_rows x grid_cols grid over C. Rows r0:r1 of C need rows r0:r1 of op(A) (a's
    rows, or its columns when transposed); columns c0:c1 need columns c0:c1 of op(B)."""
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    lda, ldb = a.shape[1], b.shape[1]
    i, j = tile // grid_cols, tile % grid_cols
    r0, r1 = i * m // grid_rows, (i + 1) * m // grid_rows
    c0, c1 = j * n // grid_cols, (j + 1) * n // grid_cols
    if r1 > r0 and c1 > c0:
        sgemm_k_pieces(c.reshape(-1), r0 * n + c0, n, a.reshape(-1), r0 if trans_a else r0 * lda, lda,
                       b.reshape(-1), c0 * ldb if trans_b else c0, ldb, r1 - r0, c1 - c0, k, trans_a, trans_b, scalars,
                       k_piece)
        if has_bias or act != ACT_NONE:
            apply_epilogue(c, r0, r1, c0, c1, bias, has_bias, act)


@njit(cache=True)
def _scalars(alpha, beta):
    scalars = np.empty(2, np.float32)
    scalars[0], scalars[1] = alpha, beta
    return scalars


@njit(cache=True)
def _gemm_tiles_serial(c, a, b, alpha, beta, trans_a, trans_b, bias, has_bias, act, grid_rows, grid_cols, k_piece):
    scalars = _scalars(alpha, beta)
    for tile in range(grid_rows * grid_cols):
        _gemm_tile(c, a, b, scalars, trans_a, trans_b, bias, has_bias, act, tile, grid_rows, grid_cols, k_piece)


@njit(parallel=True, cache=True)
def _gemm_tiles_parallel(c, a, b, alpha, beta, trans_a, trans_b, bias, has_bias, act, grid_rows, grid_cols, k_piece):
    scalars = _scalars(alpha, beta)
    for tile in prange(grid_rows * grid_cols):
        _gemm_tile(c, a, b, scalars, trans_a, trans_b, bias, has_bias, act, tile, grid_rows, grid_cols, k_piece)


def small_kernel_permits(rows: int, cols: int, k: int, trans_a: bool, trans_b: bool) -> bool:
    """Would OpenBLAS take its small-kernel path for a (rows x cols) block of row-major C? BLAS sees
    C^T = op(B)^T op(A)^T: its M is our cols, its N our rows, its A is our B (see sgemm_block)."""
    if cols * rows * k > SMALL_MNK or (trans_a and trans_b):
        return False
    blas_transposes_a_only = trans_b and not trans_a
    return not blas_transposes_a_only or (cols * rows <= SMALL_TN_MAX_MN and k >= SMALL_TN_MIN_K)


def small_tile_grid(m: int, n: int, k: int, trans_a: bool, trans_b: bool) -> tuple[int, int] | None:
    """(grid_rows, grid_cols): at most MAX_SMALL_TILES tiles over C that each pass OpenBLAS's small-kernel
    test; None when there are none.

    Each tile re-reads its rows of op(A) and its columns of op(B). While A and B fit in L2 together those
    re-reads are L2 hits, and the cut is the fewest bands of whole rows (or columns), which the AVX-512
    kernel runs 16 at a time. Past L2 they go to L3, so the cut is the 2-D grid that re-reads the fewest
    floats, k * (m * grid_cols + n * grid_rows).
    """
    if 4 * (m * k + k * n) <= L2_BYTES:
        best = None
        for by_rows, size in ((True, m), (False, n)):
            for parts in range(1, min(size, MAX_SMALL_TILES) + 1):
                band = -(-size // parts)  # the widest band
                if small_kernel_permits(band if by_rows else m, n if by_rows else band, k, trans_a, trans_b):
                    if best is None or parts < best[0]:
                        best = (parts, (parts, 1) if by_rows else (1, parts))
                    break
        return None if best is None else best[1]
    best = None
    for grid_rows in range(1, min(m, MAX_SMALL_TILES) + 1):
        for grid_cols in range(1, min(n, MAX_SMALL_TILES // grid_rows) + 1):
            if small_kernel_permits(-(-m // grid_rows), -(-n // grid_cols), k, trans_a, trans_b):
                key = (m * grid_cols + n * grid_rows, grid_rows * grid_cols)  # floats re-read (/k), tiles
                if best is None or key < best[0]:
                    best = (key, (grid_rows, grid_cols))
                break  # more columns only re-read more of A
    return None if best is None else best[1]


def _l2_cache_bytes() -> int:
    """One core's L2 (Linux sysfs); 1 MiB where it cannot be read."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index2/size") as f:
            text = f.read().strip().upper()
        scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
        return int(text.rstrip("KM")) * scale
    except (OSError, ValueError):
        return 1 << 20


L2_BYTES = _l2_cache_bytes()


_SPLITS: dict = {}  # (m, n, k, trans_a, trans_b, threads) -> (grid_rows, grid_cols): one dict lookup a call


def split_for(m: int, n: int, k: int, trans_a: bool, trans_b: bool, threads: int) -> tuple[int, int]:
    """How gemm_blas_split cuts C: small tiles where the BLAS has small kernels and they fit, else one
    band per thread along C's longer side ((1, 1): a single call)."""
    key = (m, n, k, trans_a, trans_b, threads)
    grid = _SPLITS.get(key)
    if grid is None:
        grid = small_tile_grid(m, n, k, trans_a, trans_b) if blas_has_small_kernels() else None
        if grid is None:
            grid = _bands_along_longer_side(m, n, 1 if 2.0 * m * n * k < SPLIT_MIN_FLOPS else threads)
        _SPLITS[key] = grid
    return grid


def _bands_along_longer_side(m: int, n: int, bands: int) -> tuple[int, int]:
    """(grid_rows, grid_cols) for ``bands`` bands of C's rows when C is tall, else of its columns."""
    return (bands, 1) if m >= n else (1, bands)


def gemm_blas_split(c, a, b, alpha, beta, trans_a, trans_b, bias, act):
    """C = act(alpha op(A) op(B) + beta C + bias), C cut as ``split_for`` says, the tiles shared among
    Numba's threads (arguments checked by the caller). Small products stay on the calling thread."""
    ensure_warm()
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    has_bias = bias is not None
    trans_a, trans_b = bool(trans_a), bool(trans_b)
    # (numba.get_num_threads() inside the compiled function would keep it out of the disk cache)
    grid_rows, grid_cols = split_for(m, n, k, trans_a, trans_b, _threads_now())
    args = (c, a, b, alpha, beta, trans_a, trans_b, bias if has_bias else c[0], has_bias, act, grid_rows, grid_cols,
            k_piece_for(k))
    if grid_rows * grid_cols == 1 or 2.0 * m * n * k < SPLIT_MIN_FLOPS:
        _gemm_tiles_serial(*args)
    else:
        _gemm_tiles_parallel(*args)


def gemm_blas_bands(c, a, b, alpha, beta, trans_a, trans_b, bias, act):
    """The same, always one band per Numba thread, one BLAS call each (no small tiles, no K pieces): the version
    before them, kept to measure what they gain."""
    ensure_warm()
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    has_bias = bias is not None
    _gemm_tiles_parallel(c, a, b, alpha, beta, bool(trans_a), bool(trans_b), bias if has_bias else c[0], has_bias,
                         act, *_bands_along_longer_side(m, n, _threads_now()), max(k, 1))


# The Haswell kernels' K pieces (see the module's docstring; measured in docs/benchmarks.md). Cutting C's
# columns into 128-wide blocks too was measured and dropped: it helped the LSTM's steps and halved the MNIST MLP's.
K_PIECE = 128
K_PIECE_CORES = ("Haswell", "Zen")  # OpenBLAS core types that run the Haswell SGEMM kernels


def k_piece_for(k: int) -> int:
    """How deep sgemm_k_pieces cuts K: 128 on the Haswell kernels, else all of K (one call)."""
    return K_PIECE if blas_runs_haswell_kernels() else max(k, 1)


_SMALL_KERNELS: list = []


def blas_has_small_kernels() -> bool:
    """Does the BLAS behind numba_xxgemm (SciPy's OpenBLAS) have the small-matrix kernels? Read once, from
    threadpoolctl's report of the library's core type; TILEGRAD_BLAS_SMALL_TILES=0 or 1 overrides."""
    return _blas_core_is(_SMALL_KERNELS, "TILEGRAD_BLAS_SMALL_TILES", SMALL_KERNEL_CORES)


_HASWELL_KERNELS: list = []


def blas_runs_haswell_kernels() -> bool:
    """Does the BLAS behind numba_xxgemm run OpenBLAS's Haswell SGEMM kernels? Read once, as
    blas_has_small_kernels reads its core; TILEGRAD_BLAS_K_PIECES=0 or 1 overrides."""
    return _blas_core_is(_HASWELL_KERNELS, "TILEGRAD_BLAS_K_PIECES", K_PIECE_CORES)


def _blas_core_is(answer: list, override: str, cores: tuple) -> bool:
    """Whether SciPy's OpenBLAS (the one numba_xxgemm calls) runs one of ``cores``, from threadpoolctl's report,
    read once into ``answer``; the environment variable ``override`` set to 0 or 1 decides instead."""
    if not answer:
        forced = os.environ.get(override)
        if forced in ("0", "1"):
            answer.append(forced == "1")
        else:
            from threadpoolctl import threadpool_info

            answer.append(any(lib.get("architecture") in cores for lib in threadpool_info()
                              if lib.get("internal_api") == "openblas"
                              and "scipy" in os.path.basename(os.path.dirname(lib.get("filepath", "")))))
    return answer[0]


_WARM = []

try:  # Numba's thread count without get_num_threads()' launch check (it runs on every GEMM call);
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
    _gemm_tiles_serial(np.empty((1, 1), np.float32), one, one, np.float32(1), np.float32(0), False, False, one[0],
                       False, ACT_NONE, 1, 1, 1)
    _WARM.append(True)
