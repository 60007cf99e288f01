"""GEMM: ``C = act(alpha * op(A) @ op(B) + beta * C + bias)``, op = optional transpose, float32.

Shapes: op(A) (M, K), op(B) (K, N), C (M, N), bias (N,) added to every row (the fused epilogue).

Napkin math: 2*M*N*K FLOPs; at least 4*(M*K + K*N + M*N) bytes (+4*M*N when beta != 0). At
M = N = K = 1024 that is 2.1 GFLOP over 12 MiB: 170 FLOP per byte, far right of every ridge point,
so GEMM is compute-bound and the question is how close to the FMA peak each version gets:
- naive:            every thread reads a row of A and a column of B from global memory
                    (2K loads per 2K FLOPs: ~0.25 FLOP/byte from DRAM/L2, memory-bound);
- shared_tiled:     a 16x16 tile of A and B is loaded once per block and reused 16 times;
- register_blocked: a 64x64 tile per block, 4x4 outputs per thread held in registers: each value
                    read from shared memory feeds 4 FMAs, which is what lets SIMT reach the FMA peak;
- register_blocked_8x8: 128x128 tiles, 8x8 per thread: 8 FMAs per shared-memory value (pays only
                    where C has enough 128x128 tiles to fill every SM);
- split_k:          for a small C and a long K (conv weight gradients), K split across blocks.
The ladder above 8x8 (issue #19; siboehm's SGEMM_CUDA reached 68.7 % of cuBLAS with 2-D blocking, 74 with
double buffering, 78 with 128-bit loads, 94 with warp tiling; our 8x8 measured 27 %). Same 128x128x8 tiles,
256 threads, 64 FMAs per k per thread; what moves is instructions per FMA (compile-tier facts, sm_90):
- register_blocked_transposed_a: A stored k-major in shared memory and each thread's 8 rows and 8 columns
                    *contiguous* in 16-byte-aligned rows (the 8x8's fragments are 8 floats 16 apart, in
                    4-byte-aligned arrays): NVVM emits 4 ld.shared.v4 per k (LDS.128) where the 8x8 issues 16 scalar
                    loads: 64 FMAs per 4 loads instead of per 16. 156 registers, no local memory.
- double_buffered:  two shared tiles, the next tile's global loads issued before this tile's 512 FMAs and
                    stored after: one barrier per k-step instead of two, load latency hidden behind math.
                    The k-loop is unrolled by two so the buffer index is a constant (a run-time index hid
                    the alignment from NVVM: half the loads fell back to 32/64-bit). 186 registers.
- warp_tiled:       each warp owns 32x64 of the tile, each lane 2x2 sub-tiles of 4x4: a warp's shared reads at
                    one k are 12 distinct 16-byte vectors, conflict-free, and its stores 128-byte segments.
                    206 registers (one 256-thread block per SM: occupancy 12.5 %, cuBLAS's own figure).
128-bit global loads: numba has no float4 and cannot tell NVVM a row is 16-byte aligned, so every global load
stays ld.global.f32 (4 per thread per operand per k-step, coalesced). The CUDA C twin (gemm_cuda_c.py) has them.
64-bit index math: numba indexes with int64 and tests negative indices (wraparound) at run time; an unsigned
k index (uint32) removes that test from the shared loads' address math, the GEPs stay 64-bit (int64 ops in
`cli.py inspect`).
The CPU twins: BLAS split across Numba's threads (the engine's path: small tiles for OpenBLAS's small-matrix
kernels where they fit, else one band per thread), one plain BLAS call, and a cache-blocked ``prange`` loop
for teaching.

Convention: ``beta == 0`` means C is not read (as in BLAS), so C may hold garbage (or NaN) on entry.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32, njit, prange, uint32
from scipy.linalg import blas

from .backend import implements
from .blas_calls import ACT_NONE, ACT_RELU, ACT_TANH, apply_epilogue, gemm_blas_bands, gemm_blas_split
from .checks import check_array, check_dtype_family, check_in, float_dtype
from .launch import SIMULATOR, device_function, gpu_kernel, launch_1d, scratch, tiles_2d
from .threads import serial_below_grain

ACTIVATIONS = {"none": ACT_NONE, "relu": ACT_RELU, "tanh": ACT_TANH}
# CPU: "blas_split" (the engine's: C cut into blocks shared among Numba's threads, each a single-threaded
# BLAS call: small tiles that OpenBLAS's small-matrix kernels take where they fit, else one band per thread;
# see blas_calls.py), "blas_bands" (always one band per thread: what the small tiles gain), "blas" (one
# BLAS call on BLAS's own threads), "prange" (hand-written, teaching).
CPU_VERSIONS = ("blas_split", "blas_bands", "blas", "prange")
CUDA_VERSIONS = ("naive", "shared_tiled", "register_blocked", "register_blocked_8x8", "split_k",
                 "register_blocked_transposed_a", "double_buffered", "warp_tiled")
# CUDA C versions (gemm_cuda_c.py, compiled by NVRTC): a real GPU only, never the simulator
CUDA_C_VERSIONS = ("cuda_c_double_buffered", "wmma_tf32")
# the ladder rungs of issue #19: one kernel each, same 128x128 tiles and 16x16 threads
_LADDER_KERNELS = {"register_blocked_transposed_a": "gemm_register_blocked_transposed_a",
                   "double_buffered": "gemm_double_buffered", "warp_tiled": "gemm_warp_tiled"}
# The engine's GEMM on a GPU: the version that fills the GPU best at the shape (pick_cuda_version). In the
# simulator every thread is a Python thread and every barrier a thread rendezvous, so the barrier-free
# naive kernel (with few threads looping over the output) is the one that keeps simulated training
# affordable; the tiled versions are verified by their own property tests there.


# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------


def _check_gemm(backend, out, a, b, trans_a, trans_b, bias, activation):
    dt = float_dtype(backend)
    check_array("gemm", "a", a, backend, dtype=dt, ndim=2)
    check_array("gemm", "b", b, backend, dtype=dt, ndim=2)
    m, k = a.shape[::-1] if trans_a else a.shape
    kb, n = b.shape[::-1] if trans_b else b.shape
    if kb != k:
        raise ValueError(f"gemm: inner dimensions differ: op(a) is {m}x{k} but op(b) is {kb}x{n}")
    if min(m, n, k) < 1:
        raise ValueError(f"gemm: empty product {m}x{k} @ {kb}x{n}")
    check_array("gemm", "out", out, backend, shape=(m, n), dtype=dt)
    if bias is not None:
        check_array("gemm", "bias", bias, backend, shape=(n,), dtype=dt)
    check_in("gemm", "activation", activation, ACTIVATIONS)
    if backend != "cuda":
        check_dtype_family("gemm", backend, out=out, a=a, b=b)
        if np.shares_memory(out, a) or np.shares_memory(out, b):
            raise ValueError("gemm: argument 'out' overlaps an input; GEMM cannot run in place")
    return m, n, k


# ------------------------------------------------------------------------------------------------
# Reference: NumPy, float64-capable
# ------------------------------------------------------------------------------------------------


@implements("gemm", "numpy")
def gemm_reference(out, a, b, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, bias=None,
                   activation="none", version=None):
    _check_gemm("numpy", out, a, b, trans_a, trans_b, bias, activation)
    acc = alpha * ((a.T if trans_a else a) @ (b.T if trans_b else b))
    if beta != 0:
        acc = acc + beta * out
    if bias is not None:
        acc = acc + bias
    if activation == "relu":
        acc = np.maximum(acc, 0)
    elif activation == "tanh":
        acc = np.tanh(acc)
    out[...] = acc


# ------------------------------------------------------------------------------------------------
# CPU twin: BLAS on Numba's threads for the engine, a cache-blocked prange loop for teaching
# ------------------------------------------------------------------------------------------------


def _sgemm_into(out, a, b, alpha, beta, trans_a, trans_b):
    """BLAS SGEMM straight into the row-major ``out``, with no copies.

    BLAS is column-major; a row-major (M, N) array is the column-major (N, M) array out.T, and
    out.T = op(B).T @ op(A).T, so we hand BLAS B's and A's buffers (seen as their transposes,
    which are Fortran-contiguous) with the operands swapped.
    """
    result = blas.sgemm(alpha, b.T, a.T, beta=beta, c=out.T, trans_a=trans_b, trans_b=trans_a,
                        overwrite_c=True)
    if not np.shares_memory(result, out):  # never expected; guards against a SciPy copying c
        out[...] = result.T


@serial_below_grain
@njit(parallel=True, cache=True)
def _bias_activation_rows(out, bias, has_bias, act):
    cols = out.shape[1]
    for i in prange(out.shape[0]):
        apply_epilogue(out, i, i + 1, 0, cols, bias, has_bias, act)


# The prange twin, for teaching: rows of C are split across threads; each row is C[i, :] += a[i, k] * B[k, :]
# over k, an innermost loop over a contiguous row that LLVM turns into FMA vectors. K is cut into
# panels of PANEL_DEPTH rows of B (128 x N floats: 512 KiB at N = 1024, in L2) that a block of ROWS
# rows of C reuses before the next panel is loaded. Keeping the inner loop this plain matters: an
# earlier version with min()-bounded column blocks inside it did not vectorize.
PRANGE_ROWS, PANEL_DEPTH = 16, 128


@njit(fastmath=True, cache=True)
def _row_times_panel(c_row, a_row, panel, alpha):
    for k in range(a_row.shape[0]):
        aik = alpha * a_row[k]
        for j in range(c_row.shape[0]):
            c_row[j] += aik * panel[k, j]


@njit(parallel=True, fastmath=True, cache=True)
def _gemm_prange_blocked(c, a, b, alpha, beta):
    m, n = c.shape
    k_total = a.shape[1]
    for rb in prange((m + PRANGE_ROWS - 1) // PRANGE_ROWS):
        i0 = rb * PRANGE_ROWS
        i1 = min(i0 + PRANGE_ROWS, m)
        for i in range(i0, i1):
            for j in range(n):
                c[i, j] = beta * c[i, j] if beta != 0 else np.float32(0.0)
        for k0 in range(0, k_total, PANEL_DEPTH):
            k1 = min(k0 + PANEL_DEPTH, k_total)
            panel = b[k0:k1]
            for i in range(i0, i1):
                _row_times_panel(c[i], a[i, k0:k1], panel, alpha)


@njit(parallel=True, cache=True)
def _pack_rows(b_view):
    """B in row order: when op(B) is B^T, its rows are strided columns of b, and the inner loop above
    would gather every element instead of streaming a row. Copying it once into a contiguous (K, N)
    buffer is what real GEMMs call packing."""
    k, n = b_view.shape
    packed = np.empty((k, n), np.float32)
    for kk in prange(k):
        for j in range(n):
            packed[kk, j] = b_view[kk, j]
    return packed


@implements("gemm", "cpu")
def gemm_cpu(out, a, b, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, bias=None,
             activation="none", version="blas_split"):
    _check_gemm("cpu", out, a, b, trans_a, trans_b, bias, activation)
    check_in("gemm", "version", version, CPU_VERSIONS)
    if version == "blas_split":  # epilogue fused into each block
        gemm_blas_split(out, a, b, alpha, beta, trans_a, trans_b, bias, ACTIVATIONS[activation])
        return
    if version == "blas_bands":
        gemm_blas_bands(out, a, b, alpha, beta, trans_a, trans_b, bias, ACTIVATIONS[activation])
        return
    if version == "blas":
        _sgemm_into(out, a, b, alpha, beta, trans_a, trans_b)
    else:
        _gemm_prange_blocked(out, a.T if trans_a else a, _pack_rows(b.T) if trans_b else b,
                             np.float32(alpha), np.float32(beta))
    if bias is not None or activation != "none":
        _bias_activation_rows(out, out[0] if bias is None else bias, bias is not None, ACTIVATIONS[activation])


# ------------------------------------------------------------------------------------------------
# GPU kernels: naive -> shared-memory tiled -> register-blocked 4x4, 8x8 -> split-K; one epilogue
# ------------------------------------------------------------------------------------------------

GEMM_SIGNATURE = ("void(float32[:, ::1], float32[:, ::1], float32[:, ::1], float32, float32, "
                  "int32, int32, float32[::1], int32, int32)")


@device_function
def _store_epilogue(c, i, j, acc, alpha, beta, bias, has_bias, act):
    v = alpha * acc
    if beta != float32(0.0):  # beta == 0: C is never read, so garbage in C cannot leak out
        v += beta * c[i, j]
    if has_bias:
        v += bias[j]
    if act == ACT_RELU:
        v = max(v, float32(0.0))
    elif act == ACT_TANH:
        v = math.tanh(v)
    c[i, j] = v


@gpu_kernel(GEMM_SIGNATURE, fastmath=True)
def gemm_naive(c, a, b, alpha, beta, trans_a, trans_b, bias, has_bias, act):
    """One thread per element of C, reading A and B straight from global memory."""
    m, n = c.shape
    k_total = a.shape[0] if trans_a else a.shape[1]
    x0, y0 = cuda.grid(2)
    sx, sy = cuda.gridsize(2)
    for i in range(y0, m, sy):
        for j in range(x0, n, sx):  # threadIdx.x walks along a row of C: coalesced stores
            acc = float32(0.0)
            for k in range(k_total):
                av = a[k, i] if trans_a else a[i, k]
                bv = b[j, k] if trans_b else b[k, j]
                acc += av * bv
            _store_epilogue(c, i, j, acc, alpha, beta, bias, has_bias, act)


TILE = 16


@gpu_kernel(GEMM_SIGNATURE, fastmath=True)
def gemm_shared_tiled(c, a, b, alpha, beta, trans_a, trans_b, bias, has_bias, act):
    """A (TILE x TILE) block of C per thread block; tiles of A and B staged in shared memory."""
    m, n = c.shape
    k_total = a.shape[0] if trans_a else a.shape[1]
    tile_a = cuda.shared.array((TILE, TILE), float32)  # tile_a[row, k]
    tile_b = cuda.shared.array((TILE, TILE), float32)  # tile_b[k, col]
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    for tile_row in range(cuda.blockIdx.y, (m + TILE - 1) // TILE, cuda.gridDim.y):
        for tile_col in range(cuda.blockIdx.x, (n + TILE - 1) // TILE, cuda.gridDim.x):
            i = tile_row * TILE + ty
            j = tile_col * TILE + tx
            acc = float32(0.0)
            for k0 in range(0, k_total, TILE):
                # Loads are arranged so that threadIdx.x walks the contiguous axis in global memory.
                if trans_a:  # A is (K, M)
                    r = tile_row * TILE + tx
                    k = k0 + ty
                    tile_a[tx, ty] = a[k, r] if (r < m and k < k_total) else float32(0.0)
                else:
                    k = k0 + tx
                    tile_a[ty, tx] = a[i, k] if (i < m and k < k_total) else float32(0.0)
                if trans_b:  # B is (N, K)
                    col = tile_col * TILE + ty
                    k = k0 + tx
                    tile_b[tx, ty] = b[col, k] if (col < n and k < k_total) else float32(0.0)
                else:
                    k = k0 + ty
                    tile_b[ty, tx] = b[k, j] if (k < k_total and j < n) else float32(0.0)
                cuda.syncthreads()
                for kk in range(TILE):
                    acc += tile_a[ty, kk] * tile_b[kk, tx]
                cuda.syncthreads()  # nobody overwrites a tile another thread still reads
            if i < m and j < n:
                _store_epilogue(c, i, j, acc, alpha, beta, bias, has_bias, act)


# Register blocking: a BLOCK_M x BLOCK_N tile of C per block of 16 x 16 threads; each thread owns
# THREAD_M x THREAD_N outputs spaced 16 apart (so a warp's stores stay coalesced and its shared
# loads conflict-free) and keeps them in registers (small constant local arrays become registers).
BLOCK_M, BLOCK_N, BLOCK_K = 64, 64, 8
THREAD_M, THREAD_N = 4, 4
THREADS_Y, THREADS_X = BLOCK_M // THREAD_M, BLOCK_N // THREAD_N
THREADS = THREADS_X * THREADS_Y
LOADS_PER_THREAD = BLOCK_K * BLOCK_M // THREADS  # == BLOCK_K * BLOCK_N // THREADS
SMEM_PAD = 4  # shifts each k-row by 4 banks so a warp's tile stores do not collide
TILE_A_COLS, TILE_B_COLS = BLOCK_M + SMEM_PAD, BLOCK_N + SMEM_PAD  # shapes must be plain constants


@device_function(forceinline=True)
def _register_blocked_tile(acc, a_frag, b_frag, tile_a, tile_b, a, b, trans_a, trans_b, m, n, row0, col0,
                           k_begin, k_end):
    """acc = this thread's 4x4 share of the 64x64 tile of C at (row0, col0), summed over k_begin <= k < k_end.
    (Inlined into its kernels so that acc, a_frag and b_frag stay in registers.)"""
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * THREADS_X + tx
    for tm in range(THREAD_M):
        for tn in range(THREAD_N):
            acc[tm, tn] = float32(0.0)
    for k0 in range(k_begin, k_end, BLOCK_K):
        for load in range(LOADS_PER_THREAD):
            e = tid + load * THREADS
            if trans_a:  # A is (K, M): neighbouring threads read neighbouring rows of C
                r = e % BLOCK_M
                k = e // BLOCK_M
                gr = row0 + r
                gk = k0 + k
                tile_a[k, r] = a[gk, gr] if (gr < m and gk < k_end) else float32(0.0)
            else:  # A is (M, K): neighbouring threads read along k
                k = e % BLOCK_K
                r = e // BLOCK_K
                gr = row0 + r
                gk = k0 + k
                tile_a[k, r] = a[gr, gk] if (gr < m and gk < k_end) else float32(0.0)
            if trans_b:  # B is (N, K)
                k = e % BLOCK_K
                col = e // BLOCK_K
                gc = col0 + col
                gk = k0 + k
                tile_b[k, col] = b[gc, gk] if (gc < n and gk < k_end) else float32(0.0)
            else:  # B is (K, N)
                col = e % BLOCK_N
                k = e // BLOCK_N
                gc = col0 + col
                gk = k0 + k
                tile_b[k, col] = b[gk, gc] if (gc < n and gk < k_end) else float32(0.0)
        cuda.syncthreads()
        for k in range(BLOCK_K):
            for tm in range(THREAD_M):
                a_frag[tm] = tile_a[k, ty + tm * THREADS_Y]
            for tn in range(THREAD_N):
                b_frag[tn] = tile_b[k, tx + tn * THREADS_X]
            for tm in range(THREAD_M):
                for tn in range(THREAD_N):
                    acc[tm, tn] += a_frag[tm] * b_frag[tn]
        cuda.syncthreads()


@gpu_kernel(GEMM_SIGNATURE, fastmath=True)
def gemm_register_blocked(c, a, b, alpha, beta, trans_a, trans_b, bias, has_bias, act):
    """64x64 tiles of C; each thread accumulates a 4x4 block of C in registers."""
    m, n = c.shape
    k_total = a.shape[0] if trans_a else a.shape[1]
    tile_a = cuda.shared.array((BLOCK_K, TILE_A_COLS), float32)  # tile_a[k, row]
    tile_b = cuda.shared.array((BLOCK_K, TILE_B_COLS), float32)  # tile_b[k, col]
    acc = cuda.local.array((THREAD_M, THREAD_N), float32)
    a_frag = cuda.local.array(THREAD_M, float32)
    b_frag = cuda.local.array(THREAD_N, float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    for tile_row in range(cuda.blockIdx.y, (m + BLOCK_M - 1) // BLOCK_M, cuda.gridDim.y):
        for tile_col in range(cuda.blockIdx.x, (n + BLOCK_N - 1) // BLOCK_N, cuda.gridDim.x):
            row0 = tile_row * BLOCK_M
            col0 = tile_col * BLOCK_N
            _register_blocked_tile(acc, a_frag, b_frag, tile_a, tile_b, a, b, trans_a, trans_b, m, n, row0, col0,
                                   0, k_total)
            for tm in range(THREAD_M):
                i = row0 + ty + tm * THREADS_Y
                for tn in range(THREAD_N):
                    j = col0 + tx + tn * THREADS_X
                    if i < m and j < n:
                        _store_epilogue(c, i, j, acc[tm, tn], alpha, beta, bias, has_bias, act)


# Bigger register blocks: 128x128 tiles of C per block of 16 x 16 threads, 8x8 outputs per thread. Each
# value read from shared memory now feeds 8 FMAs instead of 4 (16 shared loads per 64 FMAs, against 8 per
# 16), and each tile of A and B loaded from global memory is reused 128 times instead of 64: the two
# traffic ratios that cap the 4x4 version. Costs: 64 accumulators per thread (over 128 registers, so one
# 256-thread block per SM's 65,536; `cli.py inspect` shows the count), and a small C leaves SMs idle.
BLOCK_M8, BLOCK_N8 = 128, 128
THREAD_M8, THREAD_N8 = 8, 8
THREADS_Y8, THREADS_X8 = BLOCK_M8 // THREAD_M8, BLOCK_N8 // THREAD_N8
THREADS8 = THREADS_X8 * THREADS_Y8
LOADS_PER_THREAD8 = BLOCK_K * BLOCK_M8 // THREADS8
TILE_A_COLS8, TILE_B_COLS8 = BLOCK_M8 + SMEM_PAD, BLOCK_N8 + SMEM_PAD


@device_function(forceinline=True)
def _store_row(c, acc, tm, i, j0, alpha, beta, bias, has_bias, act):
    """Row tm of a thread's 8x8 block through the epilogue. The kernel calls it once per row with a constant
    tm: written as one 8x8 loop nest, NVVM did not unroll 64 epilogues, indexed acc at run time and so put
    all of it in local memory (256 B of lmem in the compile report)."""
    m, n = c.shape
    if i < m:
        for tn in range(THREAD_N8):
            j = j0 + tn * THREADS_X8
            if j < n:
                _store_epilogue(c, i, j, acc[tm, tn], alpha, beta, bias, has_bias, act)


@gpu_kernel(GEMM_SIGNATURE, fastmath=True)
def gemm_register_blocked_8x8(c, a, b, alpha, beta, trans_a, trans_b, bias, has_bias, act):
    """128x128 tiles of C; each thread accumulates an 8x8 block of C in registers."""
    m, n = c.shape
    k_total = a.shape[0] if trans_a else a.shape[1]
    tile_a = cuda.shared.array((BLOCK_K, TILE_A_COLS8), float32)  # tile_a[k, row]
    tile_b = cuda.shared.array((BLOCK_K, TILE_B_COLS8), float32)  # tile_b[k, col]
    acc = cuda.local.array((THREAD_M8, THREAD_N8), float32)
    a_frag = cuda.local.array(THREAD_M8, float32)
    b_frag = cuda.local.array(THREAD_N8, float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * THREADS_X8 + tx
    for tile_row in range(cuda.blockIdx.y, (m + BLOCK_M8 - 1) // BLOCK_M8, cuda.gridDim.y):
        for tile_col in range(cuda.blockIdx.x, (n + BLOCK_N8 - 1) // BLOCK_N8, cuda.gridDim.x):
            row0 = tile_row * BLOCK_M8
            col0 = tile_col * BLOCK_N8
            for tm in range(THREAD_M8):
                for tn in range(THREAD_N8):
                    acc[tm, tn] = float32(0.0)
            for k0 in range(0, k_total, BLOCK_K):
                for load in range(LOADS_PER_THREAD8):  # the same loads as the 4x4 version, twice as many
                    e = tid + load * THREADS8
                    if trans_a:
                        r = e % BLOCK_M8
                        k = e // BLOCK_M8
                        gr = row0 + r
                        gk = k0 + k
                        tile_a[k, r] = a[gk, gr] if (gr < m and gk < k_total) else float32(0.0)
                    else:
                        k = e % BLOCK_K
                        r = e // BLOCK_K
                        gr = row0 + r
                        gk = k0 + k
                        tile_a[k, r] = a[gr, gk] if (gr < m and gk < k_total) else float32(0.0)
                    if trans_b:
                        k = e % BLOCK_K
                        col = e // BLOCK_K
                        gc = col0 + col
                        gk = k0 + k
                        tile_b[k, col] = b[gc, gk] if (gc < n and gk < k_total) else float32(0.0)
                    else:
                        col = e % BLOCK_N8
                        k = e // BLOCK_N8
                        gc = col0 + col
                        gk = k0 + k
                        tile_b[k, col] = b[gk, gc] if (gc < n and gk < k_total) else float32(0.0)
                cuda.syncthreads()
                for k in range(BLOCK_K):
                    for tm in range(THREAD_M8):
                        a_frag[tm] = tile_a[k, ty + tm * THREADS_Y8]
                    for tn in range(THREAD_N8):
                        b_frag[tn] = tile_b[k, tx + tn * THREADS_X8]
                    for tm in range(THREAD_M8):
                        for tn in range(THREAD_N8):
                            acc[tm, tn] += a_frag[tm] * b_frag[tn]
                cuda.syncthreads()
            # the epilogue row by row too, so that acc is only ever indexed by constants
            _store_row(c, acc, 0, row0 + ty, col0 + tx, alpha, beta, bias, has_bias, act)
            _store_row(c, acc, 1, row0 + ty + THREADS_Y8, col0 + tx, alpha, beta, bias, has_bias, act)
            _store_row(c, acc, 2, row0 + ty + 2 * THREADS_Y8, col0 + tx, alpha, beta, bias, has_bias, act)
            _store_row(c, acc, 3, row0 + ty + 3 * THREADS_Y8, col0 + tx, alpha, beta, bias, has_bias, act)
            _store_row(c, acc, 4, row0 + ty + 4 * THREADS_Y8, col0 + tx, alpha, beta, bias, has_bias, act)
            _store_row(c, acc, 5, row0 + ty + 5 * THREADS_Y8, col0 + tx, alpha, beta, bias, has_bias, act)
            _store_row(c, acc, 6, row0 + ty + 6 * THREADS_Y8, col0 + tx, alpha, beta, bias, has_bias, act)
            _store_row(c, acc, 7, row0 + ty + 7 * THREADS_Y8, col0 + tx, alpha, beta, bias, has_bias, act)


# Split-K. When C has few tiles and K is long, the grids above leave the GPU idle: a convolution's weight
# gradient in LeNet's first layer is a 6x25 C, each element a sum over K = 50,176 pixels (batch 64), so
# one block walks all of K while every other SM waits. Split K into slices over blockIdx.z: each block
# writes its slice's partial tile into partials[z]; a second kernel sums the slices in a fixed order
# (deterministic, unlike atomic adds) and applies the epilogue.
SPLIT_K_SIGNATURE = "void(float32[:, :, ::1], float32[:, ::1], float32[:, ::1], int32, int32)"
SPLIT_K_MIN_SLICE = 256  # fewer k per slice and the partial sums cost more traffic than they save


@gpu_kernel(SPLIT_K_SIGNATURE, fastmath=True)
def gemm_split_k_partials(partials, a, b, trans_a, trans_b):
    """partials[z] = op(A)[:, slice z] @ op(B)[slice z, :], one 64x64 tile per block, as register_blocked."""
    splits, m, n = partials.shape
    k_total = a.shape[0] if trans_a else a.shape[1]
    # slices are whole multiples of BLOCK_K so that no tile load straddles two slices
    slice_k = ((k_total + splits - 1) // splits + BLOCK_K - 1) // BLOCK_K * BLOCK_K
    tile_a = cuda.shared.array((BLOCK_K, TILE_A_COLS), float32)
    tile_b = cuda.shared.array((BLOCK_K, TILE_B_COLS), float32)
    acc = cuda.local.array((THREAD_M, THREAD_N), float32)
    a_frag = cuda.local.array(THREAD_M, float32)
    b_frag = cuda.local.array(THREAD_N, float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    for z in range(cuda.blockIdx.z, splits, cuda.gridDim.z):
        k_begin = z * slice_k
        k_end = min(k_begin + slice_k, k_total)
        for tile_row in range(cuda.blockIdx.y, (m + BLOCK_M - 1) // BLOCK_M, cuda.gridDim.y):
            for tile_col in range(cuda.blockIdx.x, (n + BLOCK_N - 1) // BLOCK_N, cuda.gridDim.x):
                row0 = tile_row * BLOCK_M
                col0 = tile_col * BLOCK_N
                _register_blocked_tile(acc, a_frag, b_frag, tile_a, tile_b, a, b, trans_a, trans_b, m, n,
                                       row0, col0, k_begin, k_end)  # an empty slice (k_begin >= K) gives 0
                for tm in range(THREAD_M):
                    i = row0 + ty + tm * THREADS_Y
                    for tn in range(THREAD_N):
                        j = col0 + tx + tn * THREADS_X
                        if i < m and j < n:
                            partials[z, i, j] = acc[tm, tn]


@gpu_kernel("void(float32[:, ::1], float32[:, :, ::1], float32, float32, float32[::1], int32, int32)", fastmath=True)
def gemm_split_k_reduce(c, partials, alpha, beta, bias, has_bias, act):
    """C = act(alpha * sum_z partials[z] + beta * C + bias): one thread per element of C, z in order."""
    splits, m, n = partials.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, m * n, stride):
        i = e // n
        j = e - i * n
        acc = float32(0.0)
        for z in range(splits):
            acc += partials[z, i, j]
        _store_epilogue(c, i, j, acc, alpha, beta, bias, has_bias, act)


# The ladder above register_blocked_8x8 (issue #19). All three keep 128x128x8 block tiles, 256 threads and an
# 8x8 register block per thread, so what differs between them and the 8x8 rung is only what each teaches.
# Staging: each k-step a thread moves 4 floats of A and 4 of B from global memory, 4 *consecutive* floats of
# whichever axis is contiguous in memory (the shape a 128-bit load needs; see the module docstring for what
# NVVM made of it), into registers first, then into shared memory.
LADDER_BLOCK, LADDER_THREAD = 128, 8
LADDER_THREADS_1D = LADDER_BLOCK // LADDER_THREAD  # 16 x 16 threads
LADDER_THREADS = LADDER_THREADS_1D * LADDER_THREADS_1D
LADDER_PAD = 4  # one 16-byte vector: keeps every shared row 16-byte aligned (528 B), unlike the 8x8's 33-float rows
LADDER_COLS = LADDER_BLOCK + LADDER_PAD
SHARED_ALIGN = None if SIMULATOR else 16  # 16-byte aligned tiles (the simulator rejects the argument)


@device_function(forceinline=True)
def _ladder_stage(stage, a, b, trans_a, trans_b, m, n, row0, col0, k0, k_end, tid):
    """stage[0:4] = 4 consecutive floats of this thread's share of the A tile, stage[4:8] of the B tile
    (out-of-range elements 0). Consecutive along k when A is (M, K) / B is (N, K), along M / N otherwise."""
    if trans_a:  # A is (K, M): 32 threads cover one k-row of 128 floats
        gk = k0 + tid // 32
        gr = row0 + (tid % 32) * 4
        for q in range(4):
            stage[q] = a[gk, gr + q] if (gk < k_end and gr + q < m) else float32(0.0)
    else:  # A is (M, K): 2 threads cover one row's 8 k
        gr = row0 + tid // 2
        gk = k0 + (tid % 2) * 4
        for q in range(4):
            stage[q] = a[gr, gk + q] if (gr < m and gk + q < k_end) else float32(0.0)
    if trans_b:  # B is (N, K)
        gc = col0 + tid // 2
        gk = k0 + (tid % 2) * 4
        for q in range(4):
            stage[4 + q] = b[gc, gk + q] if (gc < n and gk + q < k_end) else float32(0.0)
    else:  # B is (K, N)
        gk = k0 + tid // 32
        gc = col0 + (tid % 32) * 4
        for q in range(4):
            stage[4 + q] = b[gk, gc + q] if (gk < k_end and gc + q < n) else float32(0.0)


@device_function(forceinline=True)
def _ladder_store(stage, tiles_a, tiles_b, buf, trans_a, trans_b, tid):
    """The staged floats into buffer ``buf`` of the k-major shared tiles tiles_a[buf, k, row], tiles_b[buf, k, col]
    (A is stored transposed: a thread's 8 rows of A at one k are then 8 consecutive floats). The buffers are
    indexed, not sliced: a slice hides the 16-byte alignment from NVVM and costs the vector loads."""
    bb = uint32(buf)
    if trans_a:
        k = tid // 32
        r = (tid % 32) * 4
        for q in range(4):
            tiles_a[bb, k, r + q] = stage[q]
    else:
        r = tid // 2
        k = (tid % 2) * 4
        for q in range(4):
            tiles_a[bb, k + q, r] = stage[q]
    if trans_b:
        col = tid // 2
        k = (tid % 2) * 4
        for q in range(4):
            tiles_b[bb, k + q, col] = stage[4 + q]
    else:
        k = tid // 32
        col = (tid % 32) * 4
        for q in range(4):
            tiles_b[bb, k, col + q] = stage[4 + q]


@device_function(forceinline=True)
def _ladder_zero(acc):
    for tm in range(LADDER_THREAD):
        for tn in range(LADDER_THREAD):
            acc[tm, tn] = float32(0.0)


@device_function(forceinline=True)
def _ladder_contiguous_step(acc, a_frag, b_frag, tiles_a, tiles_b, buf, ty, tx):
    """One k-tile: this thread's 8 contiguous rows and 8 contiguous columns, 64 FMAs per k."""
    bb = uint32(buf)
    for k in range(BLOCK_K):
        kk = uint32(k)  # unsigned: no negative-index wraparound test in the address math (numba's for signed)
        for tm in range(LADDER_THREAD):
            a_frag[tm] = tiles_a[bb, kk, ty * LADDER_THREAD + tm]
        for tn in range(LADDER_THREAD):
            b_frag[tn] = tiles_b[bb, kk, tx * LADDER_THREAD + tn]
        for tm in range(LADDER_THREAD):
            for tn in range(LADDER_THREAD):
                acc[tm, tn] += a_frag[tm] * b_frag[tn]


@device_function(forceinline=True)
def _store_row_contiguous(c, acc, tm, i, j0, alpha, beta, bias, has_bias, act):
    """Row tm of a thread's 8x8 block, 8 consecutive columns from j0, through the epilogue (tm a constant:
    see _store_row)."""
    m, n = c.shape
    if i < m:
        for tn in range(LADDER_THREAD):
            if j0 + tn < n:
                _store_epilogue(c, i, j0 + tn, acc[tm, tn], alpha, beta, bias, has_bias, act)


@device_function(forceinline=True)
def _store_block_contiguous(c, acc, i0, j0, alpha, beta, bias, has_bias, act):
    _store_row_contiguous(c, acc, 0, i0, j0, alpha, beta, bias, has_bias, act)
    _store_row_contiguous(c, acc, 1, i0 + 1, j0, alpha, beta, bias, has_bias, act)
    _store_row_contiguous(c, acc, 2, i0 + 2, j0, alpha, beta, bias, has_bias, act)
    _store_row_contiguous(c, acc, 3, i0 + 3, j0, alpha, beta, bias, has_bias, act)
    _store_row_contiguous(c, acc, 4, i0 + 4, j0, alpha, beta, bias, has_bias, act)
    _store_row_contiguous(c, acc, 5, i0 + 5, j0, alpha, beta, bias, has_bias, act)
    _store_row_contiguous(c, acc, 6, i0 + 6, j0, alpha, beta, bias, has_bias, act)
    _store_row_contiguous(c, acc, 7, i0 + 7, j0, alpha, beta, bias, has_bias, act)


@gpu_kernel(GEMM_SIGNATURE, fastmath=True)
def gemm_register_blocked_transposed_a(c, a, b, alpha, beta, trans_a, trans_b, bias, has_bias, act):
    """128x128 tiles, 8x8 per thread as 8 *contiguous* rows and columns: each fragment is 8 consecutive floats
    of a 16-byte-aligned shared row (two 128-bit shared loads where the compiler vectorizes them)."""
    m, n = c.shape
    k_total = a.shape[0] if trans_a else a.shape[1]
    # tile_a[0, k, row]: A transposed; tile_b[0, k, col] (one buffer, indexed like double_buffered's two)
    tile_a = cuda.shared.array((1, BLOCK_K, LADDER_COLS), float32, alignment=SHARED_ALIGN)
    tile_b = cuda.shared.array((1, BLOCK_K, LADDER_COLS), float32, alignment=SHARED_ALIGN)
    acc = cuda.local.array((LADDER_THREAD, LADDER_THREAD), float32)
    a_frag = cuda.local.array(LADDER_THREAD, float32)
    b_frag = cuda.local.array(LADDER_THREAD, float32)
    stage = cuda.local.array(8, float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * LADDER_THREADS_1D + tx
    for tile_row in range(cuda.blockIdx.y, (m + LADDER_BLOCK - 1) // LADDER_BLOCK, cuda.gridDim.y):
        for tile_col in range(cuda.blockIdx.x, (n + LADDER_BLOCK - 1) // LADDER_BLOCK, cuda.gridDim.x):
            row0 = tile_row * LADDER_BLOCK
            col0 = tile_col * LADDER_BLOCK
            _ladder_zero(acc)
            for k0 in range(0, k_total, BLOCK_K):
                _ladder_stage(stage, a, b, trans_a, trans_b, m, n, row0, col0, k0, k_total, tid)
                _ladder_store(stage, tile_a, tile_b, 0, trans_a, trans_b, tid)
                cuda.syncthreads()
                _ladder_contiguous_step(acc, a_frag, b_frag, tile_a, tile_b, 0, ty, tx)
                cuda.syncthreads()
            _store_block_contiguous(c, acc, row0 + ty * LADDER_THREAD, col0 + tx * LADDER_THREAD, alpha, beta,
                                    bias, has_bias, act)


@gpu_kernel(GEMM_SIGNATURE, fastmath=True)
def gemm_double_buffered(c, a, b, alpha, beta, trans_a, trans_b, bias, has_bias, act):
    """register_blocked_transposed_a with two shared tiles: the global loads of tile k+1 are issued before the
    FMAs of tile k (their latency hides behind 512 FMAs), stored into the other buffer after; one barrier a step."""
    m, n = c.shape
    k_total = a.shape[0] if trans_a else a.shape[1]
    tiles_a = cuda.shared.array((2, BLOCK_K, LADDER_COLS), float32, alignment=SHARED_ALIGN)
    tiles_b = cuda.shared.array((2, BLOCK_K, LADDER_COLS), float32, alignment=SHARED_ALIGN)
    acc = cuda.local.array((LADDER_THREAD, LADDER_THREAD), float32)
    a_frag = cuda.local.array(LADDER_THREAD, float32)
    b_frag = cuda.local.array(LADDER_THREAD, float32)
    stage = cuda.local.array(8, float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * LADDER_THREADS_1D + tx
    for tile_row in range(cuda.blockIdx.y, (m + LADDER_BLOCK - 1) // LADDER_BLOCK, cuda.gridDim.y):
        for tile_col in range(cuda.blockIdx.x, (n + LADDER_BLOCK - 1) // LADDER_BLOCK, cuda.gridDim.x):
            row0 = tile_row * LADDER_BLOCK
            col0 = tile_col * LADDER_BLOCK
            _ladder_zero(acc)
            _ladder_stage(stage, a, b, trans_a, trans_b, m, n, row0, col0, 0, k_total, tid)
            _ladder_store(stage, tiles_a, tiles_b, 0, trans_a, trans_b, tid)
            cuda.syncthreads()
            for k0 in range(0, k_total, 2 * BLOCK_K):  # two k-tiles a trip: the buffer index is a constant
                more = k0 + BLOCK_K < k_total
                if more:  # issue tile k+1's global loads first ...
                    _ladder_stage(stage, a, b, trans_a, trans_b, m, n, row0, col0, k0 + BLOCK_K, k_total, tid)
                _ladder_contiguous_step(acc, a_frag, b_frag, tiles_a, tiles_b, 0, ty, tx)
                if more:  # ... and land them in the buffer nobody reads this step
                    _ladder_store(stage, tiles_a, tiles_b, 1, trans_a, trans_b, tid)
                cuda.syncthreads()  # the one barrier a step: next buffer written, this one free to be overwritten
                if more:  # (uniform across the block: every thread takes the same branch to the barrier)
                    more = k0 + 2 * BLOCK_K < k_total
                    if more:
                        _ladder_stage(stage, a, b, trans_a, trans_b, m, n, row0, col0, k0 + 2 * BLOCK_K, k_total,
                                      tid)
                    _ladder_contiguous_step(acc, a_frag, b_frag, tiles_a, tiles_b, 1, ty, tx)
                    if more:
                        _ladder_store(stage, tiles_a, tiles_b, 0, trans_a, trans_b, tid)
                    cuda.syncthreads()
            _store_block_contiguous(c, acc, row0 + ty * LADDER_THREAD, col0 + tx * LADDER_THREAD, alpha, beta,
                                    bias, has_bias, act)


# Warp tiling: the 128x128 block tile is cut into 8 warp tiles of 32 rows x 64 columns (4 x 2 warps); in a warp
# the 32 lanes form 4 x 8 and each owns 2 x 2 sub-tiles of 4 x 4 (rows ly*4 and 16 + ly*4 of its warp tile,
# columns lx*4 and 32 + lx*4). A warp's shared loads at one k are then 4 + 8 distinct 16-byte vectors, 128
# contiguous bytes of B and broadcasts of A (conflict-free), and its stores to C are 128-byte row segments.
WARP_ROWS, WARP_COLS = 32, 64
WARPS_Y = LADDER_BLOCK // WARP_ROWS  # 4 x 2 warps
LANES_Y, LANES_X = 4, 8
SUB = 4  # each lane's sub-tile is SUB x SUB, 2 x 2 of them


@device_function(forceinline=True)
def _warp_tiled_step(acc, a_frag, b_frag, tiles_a, tiles_b, buf, r_base, c_base):
    """r_base and c_base come in as multiples of SUB: written ``(x // SUB) * SUB`` right at the index, NVVM
    sees the 16-byte alignment (without it, its alignment analysis lost track through the warp/lane
    arithmetic and every shared load stayed 32-bit)."""
    bb = uint32(buf)
    r4 = r_base // SUB
    c4 = c_base // SUB
    for k in range(BLOCK_K):
        kk = uint32(k)
        for q in range(SUB):
            a_frag[q] = tiles_a[bb, kk, r4 * SUB + q]
            a_frag[SUB + q] = tiles_a[bb, kk, r4 * SUB + 16 + q]
            b_frag[q] = tiles_b[bb, kk, c4 * SUB + q]
            b_frag[SUB + q] = tiles_b[bb, kk, c4 * SUB + 32 + q]
        for tm in range(LADDER_THREAD):
            for tn in range(LADDER_THREAD):
                acc[tm, tn] += a_frag[tm] * b_frag[tn]


@device_function(forceinline=True)
def _store_row_warp(c, acc, tm, i, j0, alpha, beta, bias, has_bias, act):
    """Row tm of a lane's 8x8: columns j0 .. j0+3 and j0+32 .. j0+35."""
    m, n = c.shape
    if i < m:
        for tn in range(SUB):
            if j0 + tn < n:
                _store_epilogue(c, i, j0 + tn, acc[tm, tn], alpha, beta, bias, has_bias, act)
            if j0 + 32 + tn < n:
                _store_epilogue(c, i, j0 + 32 + tn, acc[tm, SUB + tn], alpha, beta, bias, has_bias, act)


@gpu_kernel(GEMM_SIGNATURE, fastmath=True)
def gemm_warp_tiled(c, a, b, alpha, beta, trans_a, trans_b, bias, has_bias, act):
    """Double-buffered 128x128 tiles cut into 32x64 warp tiles; each lane 2x2 sub-tiles of 4x4 (8x8 in all)."""
    m, n = c.shape
    k_total = a.shape[0] if trans_a else a.shape[1]
    tiles_a = cuda.shared.array((2, BLOCK_K, LADDER_COLS), float32, alignment=SHARED_ALIGN)
    tiles_b = cuda.shared.array((2, BLOCK_K, LADDER_COLS), float32, alignment=SHARED_ALIGN)
    acc = cuda.local.array((LADDER_THREAD, LADDER_THREAD), float32)
    a_frag = cuda.local.array(LADDER_THREAD, float32)
    b_frag = cuda.local.array(LADDER_THREAD, float32)
    stage = cuda.local.array(8, float32)
    tid = cuda.threadIdx.y * LADDER_THREADS_1D + cuda.threadIdx.x
    warp = tid // 32
    lane = tid % 32
    r_base = (warp % WARPS_Y) * WARP_ROWS + (lane // LANES_X) * SUB
    c_base = (warp // WARPS_Y) * WARP_COLS + (lane % LANES_X) * SUB
    for tile_row in range(cuda.blockIdx.y, (m + LADDER_BLOCK - 1) // LADDER_BLOCK, cuda.gridDim.y):
        for tile_col in range(cuda.blockIdx.x, (n + LADDER_BLOCK - 1) // LADDER_BLOCK, cuda.gridDim.x):
            row0 = tile_row * LADDER_BLOCK
            col0 = tile_col * LADDER_BLOCK
            _ladder_zero(acc)
            _ladder_stage(stage, a, b, trans_a, trans_b, m, n, row0, col0, 0, k_total, tid)
            _ladder_store(stage, tiles_a, tiles_b, 0, trans_a, trans_b, tid)
            cuda.syncthreads()
            for k0 in range(0, k_total, 2 * BLOCK_K):  # two k-tiles a trip: the buffer index is a constant
                more = k0 + BLOCK_K < k_total
                if more:  # issue tile k+1's global loads first ...
                    _ladder_stage(stage, a, b, trans_a, trans_b, m, n, row0, col0, k0 + BLOCK_K, k_total, tid)
                _warp_tiled_step(acc, a_frag, b_frag, tiles_a, tiles_b, 0, r_base, c_base)
                if more:  # ... and land them in the buffer nobody reads this step
                    _ladder_store(stage, tiles_a, tiles_b, 1, trans_a, trans_b, tid)
                cuda.syncthreads()  # the one barrier a step: next buffer written, this one free to be overwritten
                if more:  # (uniform across the block: every thread takes the same branch to the barrier)
                    more = k0 + 2 * BLOCK_K < k_total
                    if more:
                        _ladder_stage(stage, a, b, trans_a, trans_b, m, n, row0, col0, k0 + 2 * BLOCK_K, k_total,
                                      tid)
                    _warp_tiled_step(acc, a_frag, b_frag, tiles_a, tiles_b, 1, r_base, c_base)
                    if more:
                        _ladder_store(stage, tiles_a, tiles_b, 0, trans_a, trans_b, tid)
                    cuda.syncthreads()
            i0 = row0 + r_base
            j0 = col0 + c_base
            _store_row_warp(c, acc, 0, i0, j0, alpha, beta, bias, has_bias, act)
            _store_row_warp(c, acc, 1, i0 + 1, j0, alpha, beta, bias, has_bias, act)
            _store_row_warp(c, acc, 2, i0 + 2, j0, alpha, beta, bias, has_bias, act)
            _store_row_warp(c, acc, 3, i0 + 3, j0, alpha, beta, bias, has_bias, act)
            _store_row_warp(c, acc, 4, i0 + 16, j0, alpha, beta, bias, has_bias, act)
            _store_row_warp(c, acc, 5, i0 + 17, j0, alpha, beta, bias, has_bias, act)
            _store_row_warp(c, acc, 6, i0 + 18, j0, alpha, beta, bias, has_bias, act)
            _store_row_warp(c, acc, 7, i0 + 19, j0, alpha, beta, bias, has_bias, act)


# ------------------------------------------------------------------------------------------------
# Launchers: validate, then pick the version and its launch shape
# ------------------------------------------------------------------------------------------------

_NO_BIAS = {}


def _no_bias_device():
    """A one-element placeholder for the bias argument when there is no bias (allocated once)."""
    if "array" not in _NO_BIAS:
        _NO_BIAS["array"] = cuda.to_device(np.zeros(1, np.float32))
    return _NO_BIAS["array"]


_GPU_FACTS = {}  # the current GPU's multiprocessor count, asked once


def _multiprocessors() -> int:
    if "sms" not in _GPU_FACTS:
        _GPU_FACTS["sms"] = 2 if SIMULATOR else cuda.get_current_device().MULTIPROCESSOR_COUNT
    return _GPU_FACTS["sms"]


def split_k_slices(m: int, n: int, k: int) -> int:
    """How many K slices split_k uses: enough blocks for about two per SM, each slice >= SPLIT_K_MIN_SLICE."""
    tiles = math.ceil(m / BLOCK_M) * math.ceil(n / BLOCK_N)
    return max(1, min(math.ceil(2 * _multiprocessors() / tiles), k // SPLIT_K_MIN_SLICE))


def pick_cuda_version(m: int, n: int, k: int) -> str:
    """The engine's GEMM on a GPU, by how many blocks each version would give the GPU's SMs (each rule
    follows the bench's GEMM rows, docs/benchmarks.md): 8x8 blocks once 128x128 tiles fill every SM; a
    long K over few tiles (conv weight gradients) goes to split_k; 4x4 blocks once 64x64 tiles fill every
    SM; otherwise (small C, the Dense layers' shapes) the 16x16 tiles of shared_tiled."""
    sms = _multiprocessors()
    if math.ceil(m / BLOCK_M8) * math.ceil(n / BLOCK_N8) >= sms:
        return "register_blocked_8x8"
    if split_k_slices(m, n, k) >= 4:
        return "split_k"
    if math.ceil(m / BLOCK_M) * math.ceil(n / BLOCK_N) >= sms:
        return "register_blocked"
    return "shared_tiled"


@implements("gemm", "cuda")
def gemm_cuda(out, a, b, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, bias=None,
              activation="none", version=None, stream=0):
    m, n, k = _check_gemm("cuda", out, a, b, trans_a, trans_b, bias, activation)
    if version is None:
        version = "naive" if SIMULATOR else pick_cuda_version(m, n, k)
    check_in("gemm", "version", version, CUDA_VERSIONS + CUDA_C_VERSIONS)
    if version in CUDA_C_VERSIONS:
        from . import gemm_cuda_c

        gemm_cuda_c.launch(version, out, a, b, m, n, k, alpha, beta, trans_a, trans_b,
                           _no_bias_device() if bias is None else bias, bias is not None, ACTIVATIONS[activation],
                           stream)
        return
    args = (out, a, b, np.float32(alpha), np.float32(beta), np.int32(trans_a), np.int32(trans_b),
            _no_bias_device() if bias is None else bias, np.int32(bias is not None),
            np.int32(ACTIVATIONS[activation]))
    if version == "naive":
        # the simulator runs each thread in Python: no idle ones past a small C's edges (a batch of 2 rows)
        block = (max(1, min(8, n)), max(1, min(8, m))) if SIMULATOR else (16, 16)
        gemm_naive[tiles_2d(m, n, block[1], block[0]), block, stream](*args)
    elif version == "shared_tiled":
        gemm_shared_tiled[tiles_2d(m, n, TILE, TILE), (TILE, TILE), stream](*args)
    elif version == "register_blocked":
        grid = tiles_2d(m, n, BLOCK_M, BLOCK_N)
        gemm_register_blocked[grid, (THREADS_X, THREADS_Y), stream](*args)
    elif version == "register_blocked_8x8":
        grid = tiles_2d(m, n, BLOCK_M8, BLOCK_N8)
        gemm_register_blocked_8x8[grid, (THREADS_X8, THREADS_Y8), stream](*args)
    elif version in _LADDER_KERNELS:
        kernel = globals()[_LADDER_KERNELS[version]]
        grid = tiles_2d(m, n, LADDER_BLOCK, LADDER_BLOCK)
        kernel[grid, (LADDER_THREADS_1D, LADDER_THREADS_1D), stream](*args)
    else:
        splits = split_k_slices(m, n, k)
        partials = scratch("gemm split-k partials", (splits, m, n))
        grid_z = min(splits, 2) if SIMULATOR else splits
        grid = (*tiles_2d(m, n, BLOCK_M, BLOCK_N), grid_z)
        gemm_split_k_partials[grid, (THREADS_X, THREADS_Y), stream](partials, a, b, args[5], args[6])
        launch_1d(gemm_split_k_reduce, m * n, stream=stream)(out, partials, *args[3:5], *args[7:])
