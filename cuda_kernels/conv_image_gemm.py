"""Convolution on the CPU one image at a time: each thread builds one image's patch matrix in its own
cache-sized workspace and multiplies it with single-threaded BLAS (Caffe's layout, not im2col's).

Why not conv.py's im2col + GEMM here: for a batch, im2col writes K*K copies of the whole input
(5 MiB for LeNet's first layer at batch 64: out of L2), the GEMM's N is the channel count (6 or 16:
BLAS's worst shape), and two permutes move the result between NCHW and rows. Per image, the patch
matrix is (C*K*K, L) — 80-90 KiB for LeNet, in L2 — the GEMM's long side is the image's pixels, and
its output is already NCHW.

The wide-row trick (stride 1): pad the image to (Hp, Wp) and number output pixels q = row * Wp + col,
as if the output were Wp wide. Then patch entry (c, i, j) of pixel q is padded[c, flat q + i*Wp + j],
so each row of the patch matrix is one contiguous copy of L = (OH - 1) * Wp + OW floats instead of OH
copies of OW floats (OW is 10-28 here: too short to vectorize). The K - 1 columns q = row*Wp + OW ..
row*Wp + Wp - 1 of each output row are junk that the forward pass skips and the backward pass sees as
zeros. Strides above 1 use rows of exactly OW pixels (Wq = OW).

Shapes: x (N, C, H, W); weight (F, C, K, K); bias (F,); y (N, F, OH, OW); padded (N, C, Hp, Wp) saved
by forward for backward; work (T, workspace_floats) with T >= Numba's thread count, one row per thread:
  [patches (C*K*K, L) | out_wide (F, L), or dout^T (L, F) | dweight^T partial (C*K*K, F) | dbias partial (F,)
   | dpadded (C, Hp, Wp)]
Per image, forward: patches = rows of padded; out_wide = W2d (F, CKK) @ patches; y = out_wide + bias.
Backward: dout^T = dy spread over the wide rows, transposed (junk rows 0); dW^T += patches @ dout^T;
dpatches = W2d^T @ dout (written over patches); dpadded = sum of dpatches' rows at their offsets.

Napkin math (LeNet c2, batch 64): 2*64*16*150*100 = 31 MFLOP forward, in 64 GEMMs of 16x150x136
(0.65 MFLOP each); the patch rows copied per image are 82 KiB.
CPU only: the design is about one core's caches and single-threaded BLAS per thread; on a GPU one big
im2col GEMM over the batch (conv.py) is what fills the device.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .backend import implements
from .blas_calls import ensure_warm, sgemm_block
from .checks import check_array
from .conv import _geometry
from .shapes import CONV_IMAGE_GEMM, conv_image_gemm_layout, conv_image_gemm_shapes, conv_image_gemm_workspace_floats

ALGORITHM = CONV_IMAGE_GEMM
workspace_floats = conv_image_gemm_workspace_floats

CPU_ONLY = ("CPU only: per-image patch matrices sized for one core's cache and single-threaded BLAS per "
            "thread; on a GPU conv.py's im2col + GEMM over the whole batch fills the device")


def buffer_shapes(x_shape, weight_shape, stride=1, padding=0, threads=None) -> dict:
    """The caller-owned buffers for this process's Numba thread count (shapes.conv_image_gemm_shapes)."""
    threads = numba.config.NUMBA_NUM_THREADS if threads is None else threads
    return conv_image_gemm_shapes(x_shape, weight_shape, stride, padding, threads)


# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------


def _check_weight(op, weight):
    wshape = check_array(op, "weight", weight, "cpu", ndim=4)
    if wshape[2] != wshape[3]:
        raise ValueError(f"{op}: argument 'weight' expects shape (F, C, K, K), got {wshape}")
    return wshape


def _check(op, y_name, y, padded, work, xshape, wshape, stride, padding):
    """Checks the buffers against the input's shape; returns the number of threads to run."""
    f, c, k, _ = wshape
    n, c, h, w, oh, ow = _geometry(op, xshape, k, stride, padding)
    check_array(op, y_name, y, "cpu", shape=(n, f, oh, ow))
    check_array(op, "padded", padded, "cpu", shape=(n, c, h + 2 * padding, w + 2 * padding))
    floats = workspace_floats(xshape, wshape, stride, padding)
    threads = numba.get_num_threads()
    check_array(op, "work", work, "cpu", shape=(None, floats))
    if work.shape[0] < threads:
        raise ValueError(f"{op}: argument 'work' needs a row per Numba thread: expects shape (>={threads}, {floats}),"
                         f" got {tuple(work.shape)}")
    return threads


# ------------------------------------------------------------------------------------------------
# Reference
# ------------------------------------------------------------------------------------------------
# None here (a CPU-only op): conv.py's im2col composition on the NumPy backend is its reference.


# ------------------------------------------------------------------------------------------------
# CPU twin: prange over one band of images per thread, each image in the thread's own workspace
# ------------------------------------------------------------------------------------------------


# Per-image steps (called by one thread on its own image and workspace)


@njit(cache=True, inline="always")
def _copy(dst, src):
    # A loop over views, indexed from range(): no negative-index fix-up, so LLVM vectorizes it. (Slice
    # assignment has a fixed cost per call in Numba; indexing one big array at offset + q was not vectorized.)
    for q in range(dst.shape[0]):
        dst[q] = src[q]


@njit(cache=True, inline="always")
def _add_scalar(dst, src, value):
    for q in range(dst.shape[0]):
        dst[q] = src[q] + value


@njit(cache=True, inline="always")
def _accumulate(dst, src):
    for q in range(dst.shape[0]):
        dst[q] += src[q]


@njit(cache=True)
def _pad_image(padded_img, x_img, p):
    c, h, w = x_img.shape
    if p > 0:
        padded_img[:] = np.float32(0.0)
    for ch in range(c):
        for r in range(h):
            _copy(padded_img[ch, r + p, p:p + w], x_img[ch, r])


@njit(cache=True)
def _build_patches(ws, padded_img, k, s, oh, ow, wq, length):
    """ws[0 : CKK*L] = the image's patch matrix, row (c, i, j) holding what tap (i, j) of channel c sees."""
    c, hp, wp = padded_img.shape
    flat = padded_img.reshape(-1)
    row = 0
    for ch in range(c):
        for i in range(k):
            for j in range(k):
                dst = row * length
                if s == 1:  # one contiguous copy: the wide-row trick
                    src = ch * hp * wp + i * wp + j
                    _copy(ws[dst:dst + length], flat[src:src + length])
                else:
                    for r in range(oh):
                        for col in range(ow):
                            ws[dst + r * wq + col] = padded_img[ch, r * s + i, col * s + j]
                row += 1


@njit(cache=True)
def _scatter_patches(dpadded_img, ws, k, s, oh, ow, wq, length):
    """dpadded = sum over rows (c, i, j) of dpatches placed back at the offsets _build_patches read."""
    c, hp, wp = dpadded_img.shape
    flat = dpadded_img.reshape(-1)
    flat[:] = np.float32(0.0)
    row = 0
    for ch in range(c):
        for i in range(k):
            for j in range(k):
                src = row * length
                if s == 1:
                    dst = ch * hp * wp + i * wp + j
                    _accumulate(flat[dst:dst + length], ws[src:src + length])
                else:
                    for r in range(oh):
                        for col in range(ow):
                            dpadded_img[ch, r * s + i, col * s + j] += ws[src + r * wq + col]
                row += 1


# Forward and backward: prange over one band of images per thread

@njit(parallel=True, cache=True)
def _forward(y, padded, work, x, weight2d, bias, has_bias, k, s, p, wq, length, threads, scalars):
    n = x.shape[0]
    f, ckk = weight2d.shape
    oh, ow = y.shape[2], y.shape[3]
    out_at = ckk * length
    w_flat = weight2d.reshape(-1)
    for t in prange(threads):
        ws = work[t]
        for img in range(t * n // threads, (t + 1) * n // threads):
            _pad_image(padded[img], x[img], p)
            _build_patches(ws, padded[img], k, s, oh, ow, wq, length)
            sgemm_block(ws, out_at, length, w_flat, 0, ckk, ws, 0, length, f, length, ckk, False, False, scalars)
            for ch in range(f):
                b = bias[ch] if has_bias else np.float32(0.0)
                for r in range(oh):
                    start = out_at + ch * length + r * wq
                    _add_scalar(y[img, ch, r], ws[start:start + ow], b)


@njit(parallel=True, cache=True)
def _backward(dx, dweight2d, dbias, work, dy, padded, weight2d, need_dx, k, s, p, wq, length, threads, scalars):
    n, f, oh, ow = dy.shape
    ckk = weight2d.shape[1]
    c, hp, wp = padded.shape[1], padded.shape[2], padded.shape[3]
    dout_at = ckk * length
    dw_at = dout_at + f * length
    db_at = dw_at + f * ckk
    dpad_at = db_at + f
    w_flat = weight2d.reshape(-1)
    for t in prange(threads):
        ws = work[t]
        ws[dw_at:dpad_at] = np.float32(0.0)  # this thread's dweight and dbias partial sums
        for img in range(t * n // threads, (t + 1) * n // threads):
            # dy transposed into the wide rows, (L, F): junk rows must read as zero gradient
            ws[dout_at:dw_at] = np.float32(0.0)
            for ch in range(f):
                total = np.float32(0.0)
                for r in range(oh):
                    row = dy[img, ch, r]
                    at = dout_at + r * wq * f + ch
                    for col in range(ow):
                        ws[at + col * f] = row[col]
                        total += row[col]
                ws[db_at + ch] += total
            _build_patches(ws, padded[img], k, s, oh, ow, wq, length)
            # dW^T (CKK, F) += patches (CKK, L) @ dout^T (L, F): scalars[0:2] = [1, 1]. (As dW = dout @
            # patches^T, the same product runs several times slower in OpenBLAS at LeNet's shapes.)
            sgemm_block(ws, dw_at, f, ws, 0, length, ws, dout_at, f, ckk, f, length, False, False, scalars)
            if need_dx:
                # dpatches (CKK, L) = W2d^T @ (dout^T)^T, over the patches: scalars[2:4] = [1, 0]
                sgemm_block(ws, 0, length, w_flat, 0, ckk, ws, dout_at, f, ckk, length, f, True, True, scalars[2:])
                dpadded = ws[dpad_at:dpad_at + c * hp * wp].reshape((c, hp, wp))
                _scatter_patches(dpadded, ws, k, s, oh, ow, wq, length)
                for ch in range(c):
                    for r in range(dx.shape[2]):
                        _copy(dx[img, ch, r], dpadded[ch, r + p, p:p + dx.shape[3]])
    # the partial sums of every thread, added in a fixed order (deterministic)
    dweight2d[:] = np.float32(0.0)
    dbias[:] = np.float32(0.0)
    for t in range(threads):
        dweight2d += work[t, dw_at:db_at].reshape((ckk, f)).T
        dbias += work[t, db_at:dpad_at]


@implements("conv2d_image_gemm_forward", "cpu", only=CPU_ONLY)
def conv2d_image_gemm_forward(y, padded, work, x, weight, bias, stride=1, padding=0):
    """y = conv(x, weight) + bias; saves the padded input in ``padded`` for the backward pass.

    y (N, F, OH, OW); padded (N, C, H+2P, W+2P); work from buffer_shapes(); x (N, C, H, W);
    weight (F, C, K, K); bias (F,) or None.
    """
    op = "conv2d_image_gemm_forward"
    f, c, k, _ = _check_weight(op, weight)
    xshape = check_array(op, "x", x, "cpu", shape=(None, c, None, None))
    threads = _check(op, "y", y, padded, work, xshape, weight.shape, stride, padding)
    if bias is not None:
        check_array("conv2d_image_gemm_forward", "bias", bias, "cpu", shape=(f,))
    _, _, _, _, wq, length = conv_image_gemm_layout(k, stride, padding, x.shape[2], x.shape[3])
    ensure_warm()
    _forward(y, padded, work, x, weight.reshape(f, -1), bias if bias is not None else weight.reshape(-1),
             bias is not None, k, stride, padding, wq, length, threads, np.array([1, 0], np.float32))


@implements("conv2d_image_gemm_backward", "cpu", only=CPU_ONLY)
def conv2d_image_gemm_backward(dx, dweight, dbias, work, dy, padded, weight, stride=1, padding=0):
    """Gradients of conv2d_image_gemm_forward; ``dx`` may be None (the network's input needs none).

    dx (N, C, H, W) or None; dweight (F, C, K, K); dbias (F,) or None; work from buffer_shapes();
    dy (N, F, OH, OW); padded saved by the forward pass; weight (F, C, K, K).
    """
    op = "conv2d_image_gemm_backward"
    f, c, k, _ = _check_weight(op, weight)
    n, _, hp, wp = check_array(op, "padded", padded, "cpu", shape=(None, c, None, None))
    x_shape = (n, c, hp - 2 * padding, wp - 2 * padding)
    if dx is not None:
        check_array(op, "dx", dx, "cpu", shape=x_shape)
    threads = _check(op, "dy", dy, padded, work, x_shape, weight.shape, stride, padding)
    check_array(op, "dweight", dweight, "cpu", shape=weight.shape)
    if dbias is not None:
        check_array(op, "dbias", dbias, "cpu", shape=(f,))
    _, _, _, _, wq, length = conv_image_gemm_layout(k, stride, padding, x_shape[2], x_shape[3])
    ensure_warm()
    _backward(dx if dx is not None else padded, dweight.reshape(f, -1),
              dbias if dbias is not None else np.empty(f, np.float32), work, dy, padded, weight.reshape(f, -1),
              dx is not None, k, stride, padding, wq, length, threads, np.array([1, 1, 1, 0], np.float32))


# ------------------------------------------------------------------------------------------------
# GPU kernels
# ------------------------------------------------------------------------------------------------
# None: this op exists on the CPU backend only (CPU_ONLY says why); on a GPU, conv.py's im2col + GEMM runs.


# ------------------------------------------------------------------------------------------------
# Launchers
# ------------------------------------------------------------------------------------------------
# None: the CPU twin's two entry points above are the whole op (CPU only).
