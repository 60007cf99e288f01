"""Convolution by implicit GEMM: the im2col GEMMs, with the patch matrix never written (issue #19).

Shapes (NCHW, square kernel K, stride S, padding P; conv.py's names):
  x (N, C, H, W); weight (F, C, K, K) seen as W2d (F, CKK), CKK = C*K*K; bias (F,); y (N, F, OH, OW)
  work (slices, F, CKK + 1): the weight gradient's partial sums, one slice of the pixels each
  (shapes.conv_implicit_gemm_shapes); its last column is the bias gradient's.
The three products, each a GEMM whose A operand is gathered tile by tile straight from an NCHW array:
  forward    y[pixel, f]  = sum_q   patch[pixel, q] * W2d[f, q]     M = N*OH*OW, N = F, K = CKK
  input grad dx[pixel, c] = sum_t   dypatch[pixel, t] * W[t, c]     M = N*H*W,   N = C, K = F*K*K
  weight grad dW[q, f]    = sum_pix patch[pix, q] * dy[pix, f]      M = CKK + 1, N = F, K = N*OH*OW
where patch[pixel, (c, i, j)] = x[img, c, oh*S - P + i, ow*S - P + j] (0 in the padding), and the input
gradient is the gather form of the transposed convolution: dypatch[(img, ih, iw), (f, i, j)] =
dy[img, f, (ih + P - i) / S, (iw + P - j) / S] where that divides exactly and lands inside dy, else 0 (no
atomics; at S = 2 three of four taps are zeros that still cost an FMA). The weight gradient's extra row
q = CKK reads 1: its sums are the bias gradient, so no separate column-sum launch.

Napkin math: each product is 2*N*OH*OW*F*C*K*K FLOPs (the input gradient counts its zero taps at S > 1).
im2col + GEMM writes and reads back the patch matrix, N*OH*OW*CKK floats (K*K/S^2 times the input),
twice per step (cols forward, dcols backward), plus the rows permutes; here each block reads its x (or dy)
tile from L1/L2 and writes only y, dx and the slices. LeNet at batch 64:
  c1 (1->6, 5x5, pad 2, 28x28): 2*50,176*6*25 = 15 MFLOP per product; cols 50,176 x 25 = 5.0 MB written
      and read twice a step (~20 MB) against x 0.2 MB, y 1.2 MB;
  c2 (6->16, 5x5, 14x14): 2*6,400*16*150 = 31 MFLOP per product; cols 6,400 x 150 = 3.8 MB (~15 MB a step)
      against x 0.3 MB, y 0.4 MB.
At an H200's ~4 TB/s both are a few µs of traffic either way: what the implicit GEMM saves at LeNet's sizes
is mostly launches (im2col: im2col, GEMM, permute forward; permute, split-K pair, column sums, GEMM, col2im
backward = 9; here 1 forward + 3 backward) and host work per launch (~10-20 µs each in numba-cuda).
Tiles: 64 (pixels, or q) x 16 (filters, or channels) x 16 (the summed index) per block of 16 x 8 threads,
each thread a 4 x 2 register block (gemm.py's register_blocked, narrowed: F is 6-64 in these layers, and a
64-wide filter tile would leave most of the block idle). Each thread stages the same tile row at every
k-step, so its pixel's (img, oh, ow) is decoded once per tile, and only the summed index per load.
Weight-gradient parallelism: the (CKK + 1) x F output has 3 tiles at c2 and 1 at c1, so the pixel sum is
split into slices over blockIdx.z (25 at c2, 196 at c1: about two blocks per SM) into ``work``; a second
kernel sums the slices in a fixed order (deterministic) and writes dW and dbias.
Versions: one per backend. The CPU twin runs the same sums as direct loops (no patch matrix either, and the
same pixel slices for the weight gradient); on a CPU conv_image_gemm.py is the fast one.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float32, njit, prange

from .backend import implements
from .checks import check_array, float_dtype
from .conv import _geometry, _patch_views
from .gemm import _no_bias_device
from .launch import SIMULATOR, device_function, gpu_kernel, launch_1d, tiles_2d
from .shapes import CONV_IMPLICIT_GEMM, CONV_IMPLICIT_GEMM_TILE_M, CONV_IMPLICIT_GEMM_TILE_N, conv_implicit_gemm_shapes

ALGORITHM = CONV_IMPLICIT_GEMM
buffer_shapes = conv_implicit_gemm_shapes


# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------


def _check_weight(op, backend, weight):
    wshape = check_array(op, "weight", weight, backend, dtype=float_dtype(backend), ndim=4)
    if wshape[2] != wshape[3]:
        raise ValueError(f"{op}: argument 'weight' expects shape (F, C, K, K), got {wshape}")
    return wshape


def _check_forward(backend, y, x, weight, bias, stride, padding):
    op = "conv2d_implicit_gemm_forward"
    dt = float_dtype(backend)
    f, c, k, _ = _check_weight(op, backend, weight)
    xshape = check_array(op, "x", x, backend, shape=(None, c, None, None), dtype=dt)
    n, c, h, w, oh, ow = _geometry(op, xshape, k, stride, padding)
    check_array(op, "y", y, backend, shape=(n, f, oh, ow), dtype=dt)
    if bias is not None:
        check_array(op, "bias", bias, backend, shape=(f,), dtype=dt)
    return n, c, h, w, oh, ow, f, k


def _check_backward(backend, dx, dweight, dbias, work, dy, x, weight, stride, padding):
    op = "conv2d_implicit_gemm_backward"
    dt = float_dtype(backend)
    f, c, k, _ = _check_weight(op, backend, weight)
    xshape = check_array(op, "x", x, backend, shape=(None, c, None, None), dtype=dt)
    n, c, h, w, oh, ow = _geometry(op, xshape, k, stride, padding)
    check_array(op, "dy", dy, backend, shape=(n, f, oh, ow), dtype=dt)
    if dx is not None:
        check_array(op, "dx", dx, backend, shape=xshape, dtype=dt)
    check_array(op, "dweight", dweight, backend, shape=weight.shape, dtype=dt)
    if dbias is not None:
        check_array(op, "dbias", dbias, backend, shape=(f,), dtype=dt)
    splits = check_array(op, "work", work, backend, shape=(None, f, c * k * k + 1), dtype=dt)[0]
    if splits < 1:
        raise ValueError(f"{op}: argument 'work' needs at least one slice, got shape {tuple(work.shape)}")
    return n, c, h, w, oh, ow, f, k, splits


def slice_length(pixels: int, splits: int, multiple: int) -> int:
    """Pixels per weight-gradient slice: a whole number of k-steps (the GPU kernel's and the twin's)."""
    return ((pixels + splits - 1) // splits + multiple - 1) // multiple * multiple


# ------------------------------------------------------------------------------------------------
# Reference: NumPy, float64-capable (strided patch views and einsum: no patch matrix in memory either)
# ------------------------------------------------------------------------------------------------


@implements("conv2d_implicit_gemm_forward", "numpy")
def conv2d_implicit_gemm_forward_reference(y, x, weight, bias, stride=1, padding=0):
    """y = conv(x, weight) + bias. y (N, F, OH, OW); x (N, C, H, W); weight (F, C, K, K); bias (F,) or None."""
    n, c, h, w, oh, ow, f, k = _check_forward("numpy", y, x, weight, bias, stride, padding)
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    y[...] = np.einsum("ncijhw,fcij->nfhw", _patch_views(padded, k, stride, oh, ow), weight)
    if bias is not None:
        y += bias[None, :, None, None]


@implements("conv2d_implicit_gemm_backward", "numpy")
def conv2d_implicit_gemm_backward_reference(dx, dweight, dbias, work, dy, x, weight, stride=1, padding=0):
    """Gradients of the forward pass; ``dx`` and ``dbias`` may be None. ``work`` is checked, not used here."""
    n, c, h, w, oh, ow, f, k, _ = _check_backward("numpy", dx, dweight, dbias, work, dy, x, weight, stride,
                                                  padding)
    s, p = stride, padding
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dweight[...] = np.einsum("ncijhw,nfhw->fcij", _patch_views(padded, k, s, oh, ow), dy)
    if dbias is not None:
        dbias[...] = dy.sum(axis=(0, 2, 3))
    if dx is not None:
        dpadded = np.zeros(padded.shape, np.result_type(dy, weight))
        for i in range(k):
            for j in range(k):
                dpadded[:, :, i:i + s * oh:s, j:j + s * ow:s] += np.einsum("nfhw,fc->nchw", dy, weight[:, :, i, j])
        dx[...] = dpadded[:, :, p:p + h, p:p + w]


# ------------------------------------------------------------------------------------------------
# CPU twin: the same sums as direct prange loops (forward per output plane, dx per input plane, dW per slice)
# ------------------------------------------------------------------------------------------------


@njit(parallel=True, cache=True, fastmath=True)
def _forward_cpu(y, x, weight, bias, has_bias, s, p):
    n, c, h, w = x.shape
    f, _, k, _ = weight.shape
    oh, ow = y.shape[2], y.shape[3]
    for plane in prange(n * f):
        img = plane // f
        fil = plane % f
        b = bias[fil] if has_bias else np.float32(0.0)
        for o_h in range(oh):
            for o_w in range(ow):
                acc = np.float32(0.0)
                for ch in range(c):
                    for i in range(k):
                        ih = o_h * s - p + i
                        if ih < 0 or ih >= h:
                            continue
                        for j in range(k):
                            iw = o_w * s - p + j
                            if 0 <= iw < w:
                                acc += x[img, ch, ih, iw] * weight[fil, ch, i, j]
                y[img, fil, o_h, o_w] = acc + b


@njit(parallel=True, cache=True, fastmath=True)
def _dx_cpu(dx, dy, weight, s, p):
    n, c, h, w = dx.shape
    f, _, k, _ = weight.shape
    oh, ow = dy.shape[2], dy.shape[3]
    for plane in prange(n * c):
        img = plane // c
        ch = plane % c
        for ih in range(h):
            for iw in range(w):
                acc = np.float32(0.0)
                for i in range(k):
                    t_h = ih + p - i
                    if t_h < 0 or t_h % s != 0 or t_h // s >= oh:
                        continue
                    for j in range(k):
                        t_w = iw + p - j
                        if t_w < 0 or t_w % s != 0 or t_w // s >= ow:
                            continue
                        for fil in range(f):
                            acc += dy[img, fil, t_h // s, t_w // s] * weight[fil, ch, i, j]
                dx[img, ch, ih, iw] = acc


@njit(parallel=True, cache=True, fastmath=True)
def _dweight_cpu(dweight, dbias, has_dbias, work, dy, x, s, p, length):
    n, c, h, w = x.shape
    f, oh, ow = dy.shape[1], dy.shape[2], dy.shape[3]
    k = dweight.shape[2]
    kk = k * k
    ckk = c * kk
    splits = work.shape[0]
    pixels = n * oh * ow
    for z in prange(splits):  # slice z of the pixels into work[z] (the GPU kernel's slices)
        part = work[z]
        part[:] = np.float32(0.0)
        for pix in range(z * length, min((z + 1) * length, pixels)):
            img = pix // (oh * ow)
            o_h = (pix // ow) % oh
            o_w = pix % ow
            for fil in range(f):
                g = dy[img, fil, o_h, o_w]
                part[fil, ckk] += g
                for ch in range(c):
                    for i in range(k):
                        ih = o_h * s - p + i
                        if ih < 0 or ih >= h:
                            continue
                        for j in range(k):
                            iw = o_w * s - p + j
                            if 0 <= iw < w:
                                part[fil, ch * kk + i * k + j] += g * x[img, ch, ih, iw]
    for fil in prange(f):  # the slices summed in a fixed order (deterministic)
        for q in range(ckk + 1):
            acc = np.float32(0.0)
            for z in range(splits):
                acc += work[z, fil, q]
            if q < ckk:
                dweight[fil, q // kk, (q % kk) // k, q % k] = acc
            elif has_dbias:
                dbias[fil] = acc


@implements("conv2d_implicit_gemm_forward", "cpu")
def conv2d_implicit_gemm_forward_cpu(y, x, weight, bias, stride=1, padding=0):
    _check_forward("cpu", y, x, weight, bias, stride, padding)
    _forward_cpu(y, x, weight, bias if bias is not None else np.zeros(1, np.float32), bias is not None,
                 stride, padding)


@implements("conv2d_implicit_gemm_backward", "cpu")
def conv2d_implicit_gemm_backward_cpu(dx, dweight, dbias, work, dy, x, weight, stride=1, padding=0):
    n, c, h, w, oh, ow, f, k, splits = _check_backward("cpu", dx, dweight, dbias, work, dy, x, weight, stride,
                                                       padding)
    length = slice_length(n * oh * ow, splits, BLOCK_K)
    _dweight_cpu(dweight, dbias if dbias is not None else np.zeros(1, np.float32), dbias is not None, work, dy, x,
                 stride, padding, length)
    if dx is not None:
        _dx_cpu(dx, dy, weight, stride, padding)


# ------------------------------------------------------------------------------------------------
# GPU kernels: three register-blocked GEMMs with gathered A tiles, and the slices' reduction
# ------------------------------------------------------------------------------------------------

# A BLOCK_M x BLOCK_N tile of the output per block of THREADS_M x THREADS_N threads (threadIdx.x runs along M:
# neighbouring threads gather neighbouring pixels and store neighbouring outputs); each thread owns
# THREAD_M x THREAD_N outputs spaced THREADS_M and THREADS_N apart, in registers.
BLOCK_M, BLOCK_N, BLOCK_K = CONV_IMPLICIT_GEMM_TILE_M, CONV_IMPLICIT_GEMM_TILE_N, 16
THREAD_M, THREAD_N = 4, 2
THREADS_M, THREADS_N = BLOCK_M // THREAD_M, BLOCK_N // THREAD_N  # 16 x 8
THREADS = THREADS_M * THREADS_N
A_LOADS = BLOCK_K * BLOCK_M // THREADS  # 8: thread tid stages row tid % BLOCK_M of the A tile, every k-step
A_STEP = THREADS // BLOCK_M  # its k rows: tid // BLOCK_M + A_STEP * load
B_LOADS = BLOCK_K * BLOCK_N // THREADS  # 2
TILE_A_COLS = BLOCK_M + 4  # tile_a[k, m]: padded rows, as gemm.py's
TILE_B_COLS = BLOCK_N + 1  # tile_b[k, n]: stored along k by neighbouring threads: an odd row stride, no conflicts

FORWARD_SIGNATURE = ("void(float32[:, :, :, ::1], float32[:, :, :, ::1], float32[:, ::1], float32[::1], int32, "
                     "int32, int32, int32)")
DX_SIGNATURE = "void(float32[:, :, :, ::1], float32[:, :, :, ::1], float32[:, ::1], int32, int32, int32)"
DWEIGHT_SIGNATURE = "void(float32[:, :, ::1], float32[:, :, :, ::1], float32[:, :, :, ::1], int32, int32, int32)"
REDUCE_SIGNATURE = "void(float32[:, ::1], float32[::1], float32[:, :, ::1], int32)"


@device_function(forceinline=True)
def _tile_product(acc, a_frag, b_frag, tile_a, tile_b, tx, ty):
    """acc += this thread's 4 x 2 share of tile_a^T @ tile_b (inlined: acc and the fragments stay in registers)."""
    for kq in range(BLOCK_K):
        for tm in range(THREAD_M):
            a_frag[tm] = tile_a[kq, tx + tm * THREADS_M]
        for tn in range(THREAD_N):
            b_frag[tn] = tile_b[kq, ty + tn * THREADS_N]
        for tm in range(THREAD_M):
            for tn in range(THREAD_N):
                acc[tm, tn] += a_frag[tm] * b_frag[tn]


@gpu_kernel(FORWARD_SIGNATURE, fastmath=True)
def conv_implicit_gemm_forward_kernel(y, x, w2d, bias, has_bias, k, s, p):
    """y = patches @ W2d^T + bias, the patch tiles gathered from x; written straight into NCHW."""
    n, c, h, w = x.shape
    f, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    kk = k * k
    ckk = c * kk
    plane = oh * ow
    pixels = n * plane
    tile_a = cuda.shared.array((BLOCK_K, TILE_A_COLS), float32)  # tile_a[q, pixel]
    tile_b = cuda.shared.array((BLOCK_K, TILE_B_COLS), float32)  # tile_b[q, filter]
    acc = cuda.local.array((THREAD_M, THREAD_N), float32)
    a_frag = cuda.local.array(THREAD_M, float32)
    b_frag = cuda.local.array(THREAD_N, float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * THREADS_M + tx
    r = tid % BLOCK_M
    k_first = tid // BLOCK_M
    for tile_m in range(cuda.blockIdx.y, (pixels + BLOCK_M - 1) // BLOCK_M, cuda.gridDim.y):
        for tile_n in range(cuda.blockIdx.x, (f + BLOCK_N - 1) // BLOCK_N, cuda.gridDim.x):
            row0 = tile_m * BLOCK_M
            col0 = tile_n * BLOCK_N
            # the pixel this thread stages: its image and the input corner its patch starts at, once per tile
            pix = row0 + r
            live = pix < pixels
            img = pix // plane
            rest = pix - img * plane
            o_h = rest // ow
            ih0 = o_h * s - p
            iw0 = (rest - o_h * ow) * s - p
            for tm in range(THREAD_M):
                for tn in range(THREAD_N):
                    acc[tm, tn] = float32(0.0)
            for q0 in range(0, ckk, BLOCK_K):
                for load in range(A_LOADS):
                    kq = k_first + load * A_STEP
                    q = q0 + kq
                    v = float32(0.0)
                    if live and q < ckk:
                        ch = q // kk
                        t = q - ch * kk
                        i = t // k
                        ih = ih0 + i
                        iw = iw0 + t - i * k
                        if ih >= 0 and ih < h and iw >= 0 and iw < w:
                            v = x[img, ch, ih, iw]
                    tile_a[kq, r] = v
                for load in range(B_LOADS):
                    e = tid + load * THREADS
                    kq = e % BLOCK_K
                    col = e // BLOCK_K
                    q = q0 + kq
                    fil = col0 + col
                    tile_b[kq, col] = w2d[fil, q] if (fil < f and q < ckk) else float32(0.0)
                cuda.syncthreads()
                _tile_product(acc, a_frag, b_frag, tile_a, tile_b, tx, ty)
                cuda.syncthreads()
            for tm in range(THREAD_M):
                pix = row0 + tx + tm * THREADS_M
                if pix < pixels:
                    img = pix // plane
                    rest = pix - img * plane
                    o_h = rest // ow
                    o_w = rest - o_h * ow
                    for tn in range(THREAD_N):
                        fil = col0 + ty + tn * THREADS_N
                        if fil < f:
                            b = bias[fil] if has_bias else float32(0.0)
                            y[img, fil, o_h, o_w] = acc[tm, tn] + b


@gpu_kernel(DX_SIGNATURE, fastmath=True)
def conv_implicit_gemm_dx_kernel(dx, dy, w2d, k, s, p):
    """dx = dypatches @ W (the transposed convolution, gather form): one output per input pixel and channel."""
    n, c, h, w = dx.shape
    f, oh, ow = dy.shape[1], dy.shape[2], dy.shape[3]
    kk = k * k
    fkk = f * kk
    plane = h * w
    pixels = n * plane
    tile_a = cuda.shared.array((BLOCK_K, TILE_A_COLS), float32)  # tile_a[(f, i, j), input pixel]
    tile_b = cuda.shared.array((BLOCK_K, TILE_B_COLS), float32)  # tile_b[(f, i, j), channel]
    acc = cuda.local.array((THREAD_M, THREAD_N), float32)
    a_frag = cuda.local.array(THREAD_M, float32)
    b_frag = cuda.local.array(THREAD_N, float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * THREADS_M + tx
    r = tid % BLOCK_M
    k_first = tid // BLOCK_M
    for tile_m in range(cuda.blockIdx.y, (pixels + BLOCK_M - 1) // BLOCK_M, cuda.gridDim.y):
        for tile_n in range(cuda.blockIdx.x, (c + BLOCK_N - 1) // BLOCK_N, cuda.gridDim.x):
            row0 = tile_m * BLOCK_M
            col0 = tile_n * BLOCK_N
            pix = row0 + r
            live = pix < pixels
            img = pix // plane
            rest = pix - img * plane
            i_h = rest // w
            th0 = i_h + p  # dy row (times S) that tap i = 0 of this input pixel came from
            tw0 = rest - i_h * w + p
            for tm in range(THREAD_M):
                for tn in range(THREAD_N):
                    acc[tm, tn] = float32(0.0)
            for t0 in range(0, fkk, BLOCK_K):
                for load in range(A_LOADS):
                    kq = k_first + load * A_STEP
                    t = t0 + kq
                    v = float32(0.0)
                    if live and t < fkk:
                        fil = t // kk
                        tap = t - fil * kk
                        i = tap // k
                        t_h = th0 - i
                        t_w = tw0 - (tap - i * k)
                        if t_h >= 0 and t_w >= 0:
                            o_h = t_h // s
                            o_w = t_w // s
                            if o_h * s == t_h and o_w * s == t_w and o_h < oh and o_w < ow:
                                v = dy[img, fil, o_h, o_w]
                    tile_a[kq, r] = v
                for load in range(B_LOADS):
                    e = tid + load * THREADS
                    kq = e % BLOCK_K
                    col = e // BLOCK_K
                    t = t0 + kq
                    ch = col0 + col
                    v = float32(0.0)
                    if ch < c and t < fkk:
                        fil = t // kk
                        v = w2d[fil, ch * kk + t - fil * kk]
                    tile_b[kq, col] = v
                cuda.syncthreads()
                _tile_product(acc, a_frag, b_frag, tile_a, tile_b, tx, ty)
                cuda.syncthreads()
            for tm in range(THREAD_M):
                pix = row0 + tx + tm * THREADS_M
                if pix < pixels:
                    img = pix // plane
                    rest = pix - img * plane
                    i_h = rest // w
                    i_w = rest - i_h * w
                    for tn in range(THREAD_N):
                        ch = col0 + ty + tn * THREADS_N
                        if ch < c:
                            dx[img, ch, i_h, i_w] = acc[tm, tn]


@gpu_kernel(DWEIGHT_SIGNATURE, fastmath=True)
def conv_implicit_gemm_dweight_kernel(work, dy, x, k, s, p):
    """work[z, f, q] = sum over slice z of the pixels of patch[pix, q] * dy[pix, f]; q = C*K*K sums dy alone."""
    splits, f, width = work.shape
    n, c, h, w = x.shape
    oh, ow = dy.shape[2], dy.shape[3]
    kk = k * k
    ckk = c * kk
    plane = oh * ow
    pixels = n * plane
    length = ((pixels + splits - 1) // splits + BLOCK_K - 1) // BLOCK_K * BLOCK_K  # slice_length()
    tile_a = cuda.shared.array((BLOCK_K, TILE_A_COLS), float32)  # tile_a[pixel, q]
    tile_b = cuda.shared.array((BLOCK_K, TILE_B_COLS), float32)  # tile_b[pixel, filter]
    acc = cuda.local.array((THREAD_M, THREAD_N), float32)
    a_frag = cuda.local.array(THREAD_M, float32)
    b_frag = cuda.local.array(THREAD_N, float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * THREADS_M + tx
    r = tid % BLOCK_M
    k_first = tid // BLOCK_M
    for z in range(cuda.blockIdx.z, splits, cuda.gridDim.z):
        k_begin = z * length
        k_end = min(k_begin + length, pixels)
        for tile_m in range(cuda.blockIdx.y, (width + BLOCK_M - 1) // BLOCK_M, cuda.gridDim.y):
            for tile_n in range(cuda.blockIdx.x, (f + BLOCK_N - 1) // BLOCK_N, cuda.gridDim.x):
                row0 = tile_m * BLOCK_M
                col0 = tile_n * BLOCK_N
                # the weight this thread stages: its channel and tap, once per tile
                q = row0 + r
                ch = q // kk
                tap = q - ch * kk
                i = tap // k
                j = tap - i * k
                for tm in range(THREAD_M):
                    for tn in range(THREAD_N):
                        acc[tm, tn] = float32(0.0)
                for k0 in range(k_begin, k_end, BLOCK_K):  # an empty slice leaves acc at 0
                    for load in range(A_LOADS):
                        kq = k_first + load * A_STEP
                        pix = k0 + kq
                        v = float32(0.0)
                        if pix < k_end:
                            if q == ckk:
                                v = float32(1.0)
                            elif q < ckk:
                                img = pix // plane
                                rest = pix - img * plane
                                o_h = rest // ow
                                ih = o_h * s - p + i
                                iw = (rest - o_h * ow) * s - p + j
                                if ih >= 0 and ih < h and iw >= 0 and iw < w:
                                    v = x[img, ch, ih, iw]
                        tile_a[kq, r] = v
                    for load in range(B_LOADS):
                        e = tid + load * THREADS
                        kq = e % BLOCK_K
                        col = e // BLOCK_K
                        pix = k0 + kq
                        fil = col0 + col
                        v = float32(0.0)
                        if pix < k_end and fil < f:
                            img = pix // plane
                            rest = pix - img * plane
                            o_h = rest // ow
                            v = dy[img, fil, o_h, rest - o_h * ow]
                        tile_b[kq, col] = v
                    cuda.syncthreads()
                    _tile_product(acc, a_frag, b_frag, tile_a, tile_b, tx, ty)
                    cuda.syncthreads()
                for tm in range(THREAD_M):
                    qq = row0 + tx + tm * THREADS_M
                    for tn in range(THREAD_N):
                        fil = col0 + ty + tn * THREADS_N
                        if qq < width and fil < f:
                            work[z, fil, qq] = acc[tm, tn]


@gpu_kernel(REDUCE_SIGNATURE, fastmath=True)
def conv_implicit_gemm_dweight_reduce_kernel(dweight2d, dbias, work, has_dbias):
    """dW2d = sum_z work[z, :, :CKK], dbias = sum_z work[z, :, CKK]: the slices in order, one thread an element."""
    splits, f, width = work.shape
    ckk = width - 1
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, f * width, stride):
        fil = e // width
        q = e - fil * width
        acc = float32(0.0)
        for z in range(splits):
            acc += work[z, fil, q]
        if q < ckk:
            dweight2d[fil, q] = acc
        elif has_dbias:
            dbias[fil] = acc


# ------------------------------------------------------------------------------------------------
# Launchers
# ------------------------------------------------------------------------------------------------


@implements("conv2d_implicit_gemm_forward", "cuda")
def conv2d_implicit_gemm_forward_cuda(y, x, weight, bias, stride=1, padding=0, stream=0):
    """One launch: a 64 x 16 tile of (output pixels x filters) per block."""
    n, c, h, w, oh, ow, f, k = _check_forward("cuda", y, x, weight, bias, stride, padding)
    grid = tiles_2d(n * oh * ow, f, BLOCK_M, BLOCK_N)
    conv_implicit_gemm_forward_kernel[grid, (THREADS_M, THREADS_N), stream](
        y, x, weight.reshape(f, c * k * k), _no_bias_device() if bias is None else bias, np.int32(bias is not None),
        np.int32(k), np.int32(stride), np.int32(padding))


@implements("conv2d_implicit_gemm_backward", "cuda")
def conv2d_implicit_gemm_backward_cuda(dx, dweight, dbias, work, dy, x, weight, stride=1, padding=0, stream=0):
    """Three launches: the weight gradient's slices and their sum (dbias with them), then dx (if asked for)."""
    n, c, h, w, oh, ow, f, k, splits = _check_backward("cuda", dx, dweight, dbias, work, dy, x, weight, stride,
                                                       padding)
    ckk = c * k * k
    sizes = (np.int32(k), np.int32(stride), np.int32(padding))
    grid = (*tiles_2d(ckk + 1, f, BLOCK_M, BLOCK_N), min(splits, 2) if SIMULATOR else min(splits, 65535))
    conv_implicit_gemm_dweight_kernel[grid, (THREADS_M, THREADS_N), stream](work, dy, x, *sizes)
    launch_1d(conv_implicit_gemm_dweight_reduce_kernel, f * (ckk + 1), stream=stream)(
        dweight.reshape(f, ckk), _no_bias_device() if dbias is None else dbias, work, np.int32(dbias is not None))
    if dx is not None:
        grid = tiles_2d(n * h * w, c, BLOCK_M, BLOCK_N)
        conv_implicit_gemm_dx_kernel[grid, (THREADS_M, THREADS_N), stream](dx, dy, weight.reshape(f, ckk), *sizes)
