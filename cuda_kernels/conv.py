"""Convolution by im2col + GEMM: im2col, col2im, the NCHW <-> rows permutes, and conv2d forward and
backward composed from them and the GEMM family.

Shapes (NCHW input, square kernel K, stride S, padding P, OH = (H + 2P - K) // S + 1, likewise OW):
  x (N, C, H, W); weight (F, C, K, K); bias (F,); y (N, F, OH, OW)
  cols (N*OH*OW, C*K*K): one row per output pixel, holding the input patch it sees
  rows (N*OH*OW, F):     the conv output with one row per output pixel (NHWC order)
Forward:  cols = im2col(x); rows = cols @ W2d^T + bias (GEMM with fused bias); y = rows_to_nchw(rows)
Backward: drows = nchw_to_rows(dy); dW2d = drows^T @ cols; dbias = column sums of drows;
          dcols = drows @ W2d; dx = col2im(dcols)  (sums the overlapping patches)

Napkin math: the GEMM does 2*N*OH*OW*F*C*K*K FLOPs; im2col writes K*K/S^2 times the input (25x for
LeNet's 5x5 stride-1 layers), so at small C the patch matrix, not the FLOPs, dominates memory traffic.
col2im gathers: each input pixel sums the <= K*K patch entries that saw it, so no atomics are needed
and the result does not depend on thread timing.
Versions: im2col + GEMM (here, every backend); conv_image_gemm.py, the CPU's per-image version that
keeps each image's patch matrix in cache.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from numba import cuda, float32, njit, prange

from .backend import BACKEND_NAMES, get_backend, implements
from .checks import check_array, check_positive, float_dtype
from .launch import gpu_kernel, launch_1d
from .shapes import conv_output_size
from .threads import serial_below_grain

# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------


def _geometry(op, x_shape, kernel_size, stride, padding):
    check_positive(op, "kernel_size", kernel_size)
    check_positive(op, "stride", stride)
    if int(padding) != padding or padding < 0:
        raise ValueError(f"{op}: argument 'padding' must be a non-negative integer, got {padding!r}")
    n, c, h, w = x_shape
    oh, ow = conv_output_size(h, kernel_size, stride, padding), conv_output_size(w, kernel_size, stride, padding)
    if oh < 1 or ow < 1:
        raise ValueError(f"{op}: a {kernel_size}x{kernel_size} kernel with padding {padding} does not fit "
                         f"a {h}x{w} input")
    return n, c, h, w, oh, ow


def _check_im2col(op, backend, cols, x, kernel_size, stride, padding, x_name="x", cols_name="cols"):
    dt = float_dtype(backend)
    shape = check_array(op, x_name, x, backend, dtype=dt, ndim=4)
    n, c, h, w, oh, ow = _geometry(op, shape, kernel_size, stride, padding)
    check_array(op, cols_name, cols, backend, shape=(n * oh * ow, c * kernel_size * kernel_size), dtype=dt)
    return n, c, h, w, oh, ow


def _check_permute(op, backend, nchw, rows, nchw_name, rows_name):
    dt = float_dtype(backend)
    n, f, oh, ow = check_array(op, nchw_name, nchw, backend, dtype=dt, ndim=4)
    check_array(op, rows_name, rows, backend, shape=(n * oh * ow, f), dtype=dt)
    return n, f, oh, ow


# ------------------------------------------------------------------------------------------------
# Reference: NumPy, float64-capable
# ------------------------------------------------------------------------------------------------


def _patch_views(padded, k, s, oh, ow):
    """(N, C, K, K, OH, OW) strided view of every patch of a padded input (no copy)."""
    n, c = padded.shape[:2]
    sn, sc, sh, sw = padded.strides
    return np.lib.stride_tricks.as_strided(padded, (n, c, k, k, oh, ow), (sn, sc, sh, sw, sh * s, sw * s),
                                           writeable=False)


@implements("im2col", "numpy")
def im2col_reference(cols, x, kernel_size, stride=1, padding=0):
    n, c, h, w, oh, ow = _check_im2col("im2col", "numpy", cols, x, kernel_size, stride, padding)
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    patches = _patch_views(padded, kernel_size, stride, oh, ow)  # n c ki kj oh ow
    cols[...] = patches.transpose(0, 4, 5, 1, 2, 3).reshape(cols.shape)


@implements("col2im", "numpy")
def col2im_reference(dx, cols, kernel_size, stride=1, padding=0):
    n, c, h, w, oh, ow = _check_im2col("col2im", "numpy", cols, dx, kernel_size, stride, padding, "dx")
    k, s, p = kernel_size, stride, padding
    padded = np.zeros((n, c, h + 2 * p, w + 2 * p), dx.dtype)
    patches = cols.reshape(n, oh, ow, c, k, k)
    for ki in range(k):
        for kj in range(k):
            padded[:, :, ki:ki + s * oh:s, kj:kj + s * ow:s] += patches[:, :, :, :, ki, kj].transpose(0, 3, 1, 2)
    dx[...] = padded[:, :, p:p + h, p:p + w]


@implements("rows_to_nchw", "numpy")
def rows_to_nchw_reference(y, rows):
    n, f, oh, ow = _check_permute("rows_to_nchw", "numpy", y, rows, "y", "rows")
    y[...] = rows.reshape(n, oh, ow, f).transpose(0, 3, 1, 2)


@implements("nchw_to_rows", "numpy")
def nchw_to_rows_reference(rows, y):
    n, f, oh, ow = _check_permute("nchw_to_rows", "numpy", y, rows, "y", "rows")
    rows[...] = y.transpose(0, 2, 3, 1).reshape(rows.shape)


# ------------------------------------------------------------------------------------------------
# CPU twin: prange over output rows (im2col) or over (image, channel) planes (col2im)
# ------------------------------------------------------------------------------------------------


@serial_below_grain
@njit(parallel=True, cache=True)
def _im2col_cpu(cols, x, k, s, p, oh, ow):
    n, c, h, w = x.shape
    for r in prange(n * oh * ow):
        img = r // (oh * ow)
        o_h = (r // ow) % oh
        o_w = r % ow
        q = 0
        for ch in range(c):
            for ki in range(k):
                ih = o_h * s - p + ki
                for kj in range(k):
                    iw = o_w * s - p + kj
                    inside = 0 <= ih < h and 0 <= iw < w
                    cols[r, q] = x[img, ch, ih, iw] if inside else np.float32(0.0)
                    q += 1


@serial_below_grain
@njit(parallel=True, cache=True)
def _col2im_cpu(dx, cols, k, s, p, oh, ow):
    n, c, h, w = dx.shape
    for plane in prange(n * c):
        img = plane // c
        ch = plane % c
        for ih in range(h):
            for iw in range(w):
                acc = np.float32(0.0)
                for ki in range(k):
                    t_h = ih + p - ki
                    if t_h < 0 or t_h % s != 0 or t_h // s >= oh:
                        continue
                    for kj in range(k):
                        t_w = iw + p - kj
                        if t_w < 0 or t_w % s != 0 or t_w // s >= ow:
                            continue
                        acc += cols[(img * oh + t_h // s) * ow + t_w // s, (ch * k + ki) * k + kj]
                dx[img, ch, ih, iw] = acc


@serial_below_grain
@njit(parallel=True, cache=True)
def _rows_to_nchw_cpu(y, rows):
    n, f, oh, ow = y.shape
    for plane in prange(n * f):
        img = plane // f
        ch = plane % f
        for pix in range(oh * ow):
            y[img, ch, pix // ow, pix % ow] = rows[img * oh * ow + pix, ch]


@serial_below_grain
@njit(parallel=True, cache=True)
def _nchw_to_rows_cpu(rows, y):
    n, f, oh, ow = y.shape
    for r in prange(n * oh * ow):
        img = r // (oh * ow)
        pix = r % (oh * ow)
        for ch in range(f):
            rows[r, ch] = y[img, ch, pix // ow, pix % ow]


@implements("im2col", "cpu")
def im2col_cpu(cols, x, kernel_size, stride=1, padding=0):
    n, c, h, w, oh, ow = _check_im2col("im2col", "cpu", cols, x, kernel_size, stride, padding)
    _im2col_cpu(cols, x, kernel_size, stride, padding, oh, ow)


@implements("col2im", "cpu")
def col2im_cpu(dx, cols, kernel_size, stride=1, padding=0):
    n, c, h, w, oh, ow = _check_im2col("col2im", "cpu", cols, dx, kernel_size, stride, padding, "dx")
    _col2im_cpu(dx, cols, kernel_size, stride, padding, oh, ow)


@implements("rows_to_nchw", "cpu")
def rows_to_nchw_cpu(y, rows):
    _check_permute("rows_to_nchw", "cpu", y, rows, "y", "rows")
    _rows_to_nchw_cpu(y, rows)


@implements("nchw_to_rows", "cpu")
def nchw_to_rows_cpu(rows, y):
    _check_permute("nchw_to_rows", "cpu", y, rows, "y", "rows")
    _nchw_to_rows_cpu(rows, y)


# ------------------------------------------------------------------------------------------------
# GPU kernels: one thread per output element, grid-stride; consecutive threads write consecutive floats
# ------------------------------------------------------------------------------------------------


@gpu_kernel("void(float32[:, ::1], float32[:, :, :, ::1], int32, int32, int32, int32, int32)")
def im2col_kernel(cols, x, k, s, p, oh, ow):
    n, c, h, w = x.shape
    width = cols.shape[1]
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, cols.shape[0] * width, stride):
        r = e // width
        q = e - r * width
        img = r // (oh * ow)
        o_h = (r // ow) % oh
        o_w = r % ow
        ch = q // (k * k)
        ki = (q // k) % k
        kj = q % k
        ih = o_h * s - p + ki
        iw = o_w * s - p + kj
        inside = 0 <= ih < h and 0 <= iw < w
        cols[r, q] = x[img, ch, ih, iw] if inside else float32(0.0)


@gpu_kernel("void(float32[:, :, :, ::1], float32[:, ::1], int32, int32, int32, int32, int32)")
def col2im_kernel(dx, cols, k, s, p, oh, ow):
    """Gather: each input pixel sums the patch entries that saw it (no atomics, deterministic)."""
    n, c, h, w = dx.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, n * c * h * w, stride):
        iw = e % w
        ih = (e // w) % h
        ch = (e // (w * h)) % c
        img = e // (w * h * c)
        acc = float32(0.0)
        for ki in range(k):
            t_h = ih + p - ki
            if t_h >= 0 and t_h % s == 0 and t_h // s < oh:
                for kj in range(k):
                    t_w = iw + p - kj
                    if t_w >= 0 and t_w % s == 0 and t_w // s < ow:
                        acc += cols[(img * oh + t_h // s) * ow + t_w // s, (ch * k + ki) * k + kj]
        dx[img, ch, ih, iw] = acc


@gpu_kernel("void(float32[:, :, :, ::1], float32[:, ::1])")
def rows_to_nchw_kernel(y, rows):
    n, f, oh, ow = y.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, n * f * oh * ow, stride):  # e walks y in memory order: coalesced writes
        pix = e % (oh * ow)
        ch = (e // (oh * ow)) % f
        img = e // (oh * ow * f)
        y[img, ch, pix // ow, pix % ow] = rows[img * oh * ow + pix, ch]


@gpu_kernel("void(float32[:, ::1], float32[:, :, :, ::1])")
def nchw_to_rows_kernel(rows, y):
    n, f, oh, ow = y.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, n * f * oh * ow, stride):  # e walks y in memory order: coalesced reads
        pix = e % (oh * ow)
        ch = (e // (oh * ow)) % f
        img = e // (oh * ow * f)
        rows[img * oh * ow + pix, ch] = y[img, ch, pix // ow, pix % ow]


# ------------------------------------------------------------------------------------------------
# Launchers: the GPU kernels above, then conv2d composed the same way on every backend
# ------------------------------------------------------------------------------------------------


@implements("im2col", "cuda")
def im2col_cuda(cols, x, kernel_size, stride=1, padding=0, block=None, stream=0):
    n, c, h, w, oh, ow = _check_im2col("im2col", "cuda", cols, x, kernel_size, stride, padding)
    launch_1d(im2col_kernel, cols.size, block, stream)(
        cols, x, np.int32(kernel_size), np.int32(stride), np.int32(padding), np.int32(oh), np.int32(ow))


@implements("col2im", "cuda")
def col2im_cuda(dx, cols, kernel_size, stride=1, padding=0, block=None, stream=0):
    n, c, h, w, oh, ow = _check_im2col("col2im", "cuda", cols, dx, kernel_size, stride, padding, "dx")
    launch_1d(col2im_kernel, dx.size, block, stream)(
        dx, cols, np.int32(kernel_size), np.int32(stride), np.int32(padding), np.int32(oh), np.int32(ow))


@implements("rows_to_nchw", "cuda")
def rows_to_nchw_cuda(y, rows, block=None, stream=0):
    _check_permute("rows_to_nchw", "cuda", y, rows, "y", "rows")
    launch_1d(rows_to_nchw_kernel, y.size, block, stream)(y, rows)


@implements("nchw_to_rows", "cuda")
def nchw_to_rows_cuda(rows, y, block=None, stream=0):
    _check_permute("nchw_to_rows", "cuda", y, rows, "y", "rows")
    launch_1d(nchw_to_rows_kernel, y.size, block, stream)(rows, y)


# conv2d forward and backward: im2col, GEMM and the permutes above, through whichever backend is given.


def _weight_matrix(weight):
    f = weight.shape[0]
    return weight.reshape(f, weight.size // f)


def conv2d_forward(kernels, y, cols, rows, x, weight, bias, stride=1, padding=0):
    """y = conv(x, weight) + bias. Saves the patch matrix in ``cols`` for the backward pass.

    y (N, F, OH, OW); cols (N*OH*OW, C*K*K); rows (N*OH*OW, F) workspace; x (N, C, H, W);
    weight (F, C, K, K); bias (F,) or None.
    """
    if len(weight.shape) != 4 or weight.shape[2] != weight.shape[3]:
        raise ValueError(f"conv2d_forward: argument 'weight' expects shape (F, C, K, K), got {tuple(weight.shape)}")
    kernels.im2col(cols, x, weight.shape[2], stride, padding)
    kernels.gemm(rows, cols, _weight_matrix(weight), trans_b=True, bias=bias)
    kernels.rows_to_nchw(y, rows)


def conv2d_backward(kernels, dx, dweight, dbias, dcols, drows, dy, cols, weight, stride=1, padding=0):
    """Gradients of conv2d_forward. ``dx`` may be None (no input gradient, e.g. the first layer).

    dx (N, C, H, W) or None; dweight (F, C, K, K); dbias (F,) or None; dcols, drows workspaces shaped
    like cols and rows; dy (N, F, OH, OW); cols saved by the forward pass; weight (F, C, K, K).
    """
    kernels.nchw_to_rows(drows, dy)
    kernels.gemm(_weight_matrix(dweight), drows, cols, trans_a=True)
    if dbias is not None:
        kernels.column_sums(dbias, drows)
    if dx is not None:
        kernels.gemm(dcols, drows, _weight_matrix(weight))
        kernels.col2im(dx, dcols, weight.shape[2], stride, padding)


for _name in BACKEND_NAMES:
    implements("conv2d_forward", _name)(partial(conv2d_forward, get_backend(_name)))
    implements("conv2d_backward", _name)(partial(conv2d_backward, get_backend(_name)))
