"""Max-pooling forward (saves where each maximum came from) and backward (routes the gradient there).

Shapes: x, dx (N, C, H, W); y, dy, argmax (N, C, OH, OW) with OH = (H - K) // S + 1, likewise OW;
argmax (int32) holds the flat index ih*W + iw of the maximum inside its (H, W) plane. Ties go to the
first maximum in row-major window order, on every backend.

Napkin math: forward reads K*K inputs per output (from cache: each input is read K*K/S^2 times, once
from DRAM) and writes 8 bytes per output; backward writes every input once. 2x2 stride-2 pooling
moves ~1.5 bytes per input FLOP-free: purely bandwidth-bound.
Backward gathers instead of scattering: each input pixel looks at the (at most ceil(K/S)^2) windows
that contain it and sums the gradients of those whose argmax is itself. Overlapping windows (S < K)
therefore need no atomics, and the result is deterministic.
CPU versions: the general window loop, and the 2x2 stride-2 window spelled out by hand (what a loop with
constant trip counts buys: registers and SIMD instead of a scalar loop).
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float32, njit, prange

from .backend import implements
from .checks import INDEX, check_array, check_positive, float_dtype
from .launch import gpu_kernel, launch_1d
from .shapes import pool_output_size
from .threads import serial_below_grain

# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------


def _check_pool(op, backend, x, y, argmax, kernel_size, stride, x_name, y_name):
    check_positive(op, "kernel_size", kernel_size)
    check_positive(op, "stride", stride)
    dt = float_dtype(backend)
    n, c, h, w = check_array(op, x_name, x, backend, dtype=dt, ndim=4)
    oh, ow = pool_output_size(h, kernel_size, stride), pool_output_size(w, kernel_size, stride)
    if oh < 1 or ow < 1:
        raise ValueError(f"{op}: a {kernel_size}x{kernel_size} window does not fit a {h}x{w} input")
    check_array(op, y_name, y, backend, shape=(n, c, oh, ow), dtype=dt)
    check_array(op, "argmax", argmax, backend, shape=(n, c, oh, ow), dtype=INDEX)
    return n, c, h, w, oh, ow


# ------------------------------------------------------------------------------------------------
# Reference: NumPy, float64-capable
# ------------------------------------------------------------------------------------------------


@implements("maxpool_forward", "numpy")
def maxpool_forward_reference(y, argmax, x, kernel_size, stride):
    n, c, h, w, oh, ow = _check_pool("maxpool_forward", "numpy", x, y, argmax, kernel_size, stride, "x", "y")
    k, s = kernel_size, stride
    sn, sc, sh, sw = x.strides
    windows = np.lib.stride_tricks.as_strided(x, (n, c, oh, ow, k, k), (sn, sc, sh * s, sw * s, sh, sw))
    flat = windows.reshape(n, c, oh, ow, k * k)
    best = flat.argmax(axis=-1)  # the first maximum, as every backend does
    y[...] = np.take_along_axis(flat, best[..., None], -1)[..., 0]
    rows = np.arange(oh)[:, None] * s + best // k
    cols = np.arange(ow)[None, :] * s + best % k
    argmax[...] = rows * w + cols


@implements("maxpool_backward", "numpy")
def maxpool_backward_reference(dx, dy, argmax, kernel_size, stride):
    n, c, h, w, oh, ow = _check_pool("maxpool_backward", "numpy", dx, dy, argmax, kernel_size, stride, "dx", "dy")
    planes = np.zeros((n * c, h * w), dx.dtype)
    np.add.at(planes, (np.repeat(np.arange(n * c), oh * ow), argmax.reshape(-1)), dy.reshape(-1))
    dx[...] = planes.reshape(dx.shape)


# ------------------------------------------------------------------------------------------------
# CPU twin: prange over (image, channel) planes
# ------------------------------------------------------------------------------------------------
# A plane belongs to one thread, so the backward scatter inside it has no races.


@serial_below_grain
@njit(parallel=True, cache=True)
def _maxpool_forward_cpu(y, argmax, x, k, s):
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for plane in prange(n * c):
        x_plane = x[plane // c, plane % c]
        for o_h in range(oh):
            best_row, where_row = y[plane // c, plane % c, o_h], argmax[plane // c, plane % c, o_h]
            for o_w in range(ow):
                best = x_plane[o_h * s, o_w * s]
                where = (o_h * s) * w + o_w * s
                for ki in range(k):
                    src = x_plane[o_h * s + ki]
                    for kj in range(k):
                        v = src[o_w * s + kj]
                        if v > best:  # strict: the first maximum wins, as on every backend
                            best = v
                            where = (o_h * s + ki) * w + o_w * s + kj
                best_row[o_w] = best
                where_row[o_w] = where


@serial_below_grain
@njit(parallel=True, cache=True)
def _maxpool2x2_forward_cpu(y, argmax, x):
    """The 2x2, stride-2 window of nearly every CNN, spelled out: with the window loops unrolled by
    hand, LLVM keeps everything in registers; the general loop above, whose trip counts it does not
    know, it neither unrolls nor vectorizes."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for plane in prange(n * c):
        x_plane = x[plane // c, plane % c]
        for o_h in range(oh):
            top, bottom = x_plane[2 * o_h], x_plane[2 * o_h + 1]
            best_row, where_row = y[plane // c, plane % c, o_h], argmax[plane // c, plane % c, o_h]
            for o_w in range(ow):
                at = 2 * o_h * w + 2 * o_w
                best, where = top[2 * o_w], at
                if top[2 * o_w + 1] > best:
                    best, where = top[2 * o_w + 1], at + 1
                if bottom[2 * o_w] > best:
                    best, where = bottom[2 * o_w], at + w
                if bottom[2 * o_w + 1] > best:
                    best, where = bottom[2 * o_w + 1], at + w + 1
                best_row[o_w] = best
                where_row[o_w] = where


@serial_below_grain
@njit(parallel=True, cache=True)
def _maxpool_backward_cpu(dx, dy, argmax):
    n, c, h, w = dx.shape
    oh, ow = dy.shape[2], dy.shape[3]
    for plane in prange(n * c):
        dx_plane = dx[plane // c, plane % c].reshape(-1)
        dx_plane[:] = np.float32(0.0)
        for o_h in range(oh):
            grads, where = dy[plane // c, plane % c, o_h], argmax[plane // c, plane % c, o_h]
            for o_w in range(ow):
                dx_plane[where[o_w]] += grads[o_w]


@implements("maxpool_forward", "cpu")
def maxpool_forward_cpu(y, argmax, x, kernel_size, stride):
    _check_pool("maxpool_forward", "cpu", x, y, argmax, kernel_size, stride, "x", "y")
    if kernel_size == 2 and stride == 2:
        _maxpool2x2_forward_cpu(y, argmax, x)
    else:
        _maxpool_forward_cpu(y, argmax, x, kernel_size, stride)


@implements("maxpool_backward", "cpu")
def maxpool_backward_cpu(dx, dy, argmax, kernel_size, stride):
    _check_pool("maxpool_backward", "cpu", dx, dy, argmax, kernel_size, stride, "dx", "dy")
    _maxpool_backward_cpu(dx, dy, argmax)


# ------------------------------------------------------------------------------------------------
# GPU kernels: one thread per output (forward) or per input pixel (backward), grid-stride
# ------------------------------------------------------------------------------------------------


@gpu_kernel("void(float32[:, :, :, ::1], int32[:, :, :, ::1], float32[:, :, :, ::1], int32, int32)")
def maxpool_forward_kernel(y, argmax, x, k, s):
    n, c, oh, ow = y.shape
    w = x.shape[3]
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, n * c * oh * ow, stride):
        o_w = e % ow
        o_h = (e // ow) % oh
        ch = (e // (ow * oh)) % c
        img = e // (ow * oh * c)
        best = x[img, ch, o_h * s, o_w * s]
        where = (o_h * s) * w + o_w * s
        for ki in range(k):
            for kj in range(k):
                v = x[img, ch, o_h * s + ki, o_w * s + kj]
                if v > best:
                    best = v
                    where = (o_h * s + ki) * w + o_w * s + kj
        y[img, ch, o_h, o_w] = best
        argmax[img, ch, o_h, o_w] = where


@gpu_kernel("void(float32[:, :, :, ::1], float32[:, :, :, ::1], int32[:, :, :, ::1], int32, int32)")
def maxpool_backward_kernel(dx, dy, argmax, k, s):
    """Gather: one thread per input pixel, over the windows that contain it."""
    n, c, h, w = dx.shape
    oh, ow = dy.shape[2], dy.shape[3]
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, n * c * h * w, stride):
        iw = e % w
        ih = (e // w) % h
        ch = (e // (w * h)) % c
        img = e // (w * h * c)
        me = ih * w + iw
        first_h = max(0, (ih - k + s) // s)  # the first window whose rows reach ih
        first_w = max(0, (iw - k + s) // s)
        acc = float32(0.0)
        for o_h in range(first_h, min(oh, ih // s + 1)):
            for o_w in range(first_w, min(ow, iw // s + 1)):
                if argmax[img, ch, o_h, o_w] == me:
                    acc += dy[img, ch, o_h, o_w]
        dx[img, ch, ih, iw] = acc


# ------------------------------------------------------------------------------------------------
# Launchers
# ------------------------------------------------------------------------------------------------


@implements("maxpool_forward", "cuda")
def maxpool_forward_cuda(y, argmax, x, kernel_size, stride, block=None, stream=0):
    _check_pool("maxpool_forward", "cuda", x, y, argmax, kernel_size, stride, "x", "y")
    launch_1d(maxpool_forward_kernel, y.size, block, stream)(y, argmax, x, np.int32(kernel_size), np.int32(stride))


@implements("maxpool_backward", "cuda")
def maxpool_backward_cuda(dx, dy, argmax, kernel_size, stride, block=None, stream=0):
    _check_pool("maxpool_backward", "cuda", dx, dy, argmax, kernel_size, stride, "dx", "dy")
    launch_1d(maxpool_backward_kernel, dx.size, block, stream)(dx, dy, argmax, np.int32(kernel_size),
                                                               np.int32(stride))
