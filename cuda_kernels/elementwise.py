"""Elementwise ops: fill, activations (ReLU / tanh / sigmoid) forward and backward, bias add, dropout,
scale, axpy, add, and swapping the two leading axes of a 3-D array (sequences batch-first <-> time-major).
Any shape; every array C-contiguous; the kernels see flat 1-D views.

Napkin math: n elements, 1-3 FLOPs each, 8-12 bytes each (one or two reads, one write): about
0.1-0.3 FLOP/byte, deep in the memory-bound corner of the roofline. The only goal is to stream memory
at the copy bandwidth: coalesced grid-stride loops, one pass, no temporaries.

Dropout draws its mask from a counter-based hash of (seed, index), the same integer arithmetic on
every backend, so the NumPy reference, the CPU twin and the GPU agree bit for bit on which units drop.
The seed changes every step, so the kernel reads it from device memory (an int64 array of one element
that the Dropout layer writes before the step): a CUDA graph replays kernel arguments as captured, and a
replayed step must still draw a fresh mask. ``seed`` may also be a plain int (the launcher then copies it
into a buffer of its own first).
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32, njit, prange

from .backend import implements
from .checks import check_array, float_dtype
from .cpu_tanh import tanh_float32
from .launch import check_not_capturing, cpu_and_gpu, current_stream, gpu_kernel, launch_1d
from .threads import serial_below_grain

ACTIVATIONS = {"relu": 1, "tanh": 2, "sigmoid": 3}
ACT_RELU, ACT_TANH, ACT_SIGMOID = 1, 2, 3

# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------


def _flat(x):
    return x.reshape(x.size) if len(x.shape) != 1 else x


def _check_same(op, backend, **arrays):
    """All arrays of an elementwise op share the first one's shape."""
    dt = float_dtype(backend)
    names = list(arrays)
    shape = check_array(op, names[0], arrays[names[0]], backend, dtype=dt)
    for name in names[1:]:
        check_array(op, name, arrays[name], backend, shape=shape, dtype=dt)
    return shape


def _check_bias_rows(backend, out, x, bias):
    dt = float_dtype(backend)
    rows, cols = check_array("bias_add", "x", x, backend, dtype=dt, ndim=2)
    check_array("bias_add", "out", out, backend, shape=(rows, cols), dtype=dt)
    check_array("bias_add", "bias", bias, backend, shape=(cols,), dtype=dt)
    return rows, cols


def _check_dropout(backend, out, mask, x, p, seed):
    _check_same("dropout_forward", backend, out=out, mask=mask, x=x)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout_forward: argument 'p' must be in [0, 1), got {p!r}")
    if hasattr(seed, "shape"):
        check_array("dropout_forward", "seed", seed, backend, shape=(1,), dtype=np.int64)


def _host_seed(seed) -> int:
    """The seed as an int: a plain int, or the one element of a host int64 array."""
    return int(seed[0]) if hasattr(seed, "shape") else int(seed)


_CALL_SEED: list = []  # cuda: the launcher's own seed buffer for calls with a plain int seed


def _device_seed(seed, stream):
    """The int64 (1,) device array the kernel reads the seed from: the caller's, or the launcher's own buffer,
    written first on the stream (a pageable source, staged by the driver before the call returns)."""
    if hasattr(seed, "shape"):
        return seed
    check_not_capturing("dropout_forward with a plain int seed (frozen into the graph; pass an int64 array)")
    if not _CALL_SEED:
        _CALL_SEED.append(cuda.device_array(1, np.int64))
    _CALL_SEED[0].copy_to_device(np.array([seed], np.int64), stream=stream if stream else current_stream())
    return _CALL_SEED[0]


def _check_swap(backend, out, x):
    dt = float_dtype(backend)
    a, b, c = check_array("swap_leading_axes", "x", x, backend, dtype=dt, ndim=3)
    check_array("swap_leading_axes", "out", out, backend, shape=(b, a, c), dtype=dt)
    return a, b, c


def _check_activation(op, activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"{op}: argument 'activation' must be one of {list(ACTIVATIONS)}, got {activation!r}")


# ------------------------------------------------------------------------------------------------
# Reference: NumPy, float64-capable
# ------------------------------------------------------------------------------------------------

# The dropout hash: plain integer arithmetic, valid in NumPy (uint64 arrays, below), Numba and CUDA (compiled
# for both in the next section), so every backend draws the same mask.

MASK32 = 0xFFFFFFFF


def hash_uniform_bits(seed, index):
    """A 32-bit mix of (seed, index) (murmur3-style finalizer); only the low 32 bits are kept."""
    x = (index * 0x9E3779B1 + seed * 0x85EBCA77 + 0x165667B1) & MASK32
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) & MASK32
    x ^= x >> 12
    x = (x * 0x297A2D39) & MASK32
    x ^= x >> 15
    return x


INV_2_24 = 1.0 / 16777216.0  # 24 random bits -> a float32 uniform in [0, 1) without rounding to 1


@implements("fill", "numpy")
def fill_reference(out, value):
    check_array("fill", "out", out, "numpy", dtype=None)
    out[...] = value


def _activation_reference(x, act):
    if act == "relu":
        return np.maximum(x, 0)
    if act == "tanh":
        return np.tanh(x)
    return 1 / (1 + np.exp(-x))


def _activation_grad_reference(dy, y, act):
    if act == "relu":
        return dy * (y > 0)
    if act == "tanh":
        return dy * (1 - y * y)
    return dy * y * (1 - y)


@implements("activation_forward", "numpy")
def activation_forward_reference(out, x, activation):
    _check_same("activation_forward", "numpy", out=out, x=x)
    _check_activation("activation_forward", activation)
    out[...] = _activation_reference(x, activation)


@implements("activation_backward", "numpy")
def activation_backward_reference(dx, dy, y, activation):
    _check_same("activation_backward", "numpy", dx=dx, dy=dy, y=y)
    _check_activation("activation_backward", activation)
    dx[...] = _activation_grad_reference(dy, y, activation)


@implements("bias_add", "numpy")
def bias_add_reference(out, x, bias):
    _check_bias_rows("numpy", out, x, bias)
    out[...] = x + bias


def dropout_mask_reference(shape, p, seed, dtype=np.float64):
    index = np.arange(int(np.prod(shape)), dtype=np.uint64)
    bits = hash_uniform_bits(np.uint64(seed), index)
    uniform = (bits >> np.uint64(8)).astype(np.float32) * np.float32(INV_2_24)
    return np.where(uniform >= np.float32(p), 1 / (1 - p), 0).astype(dtype).reshape(shape)


@implements("dropout_forward", "numpy")
def dropout_forward_reference(out, mask, x, p, seed):
    _check_dropout("numpy", out, mask, x, p, seed)
    mask[...] = dropout_mask_reference(x.shape, p, _host_seed(seed), x.dtype)
    out[...] = x * mask


@implements("multiply", "numpy")
def multiply_reference(out, a, b):
    _check_same("multiply", "numpy", out=out, a=a, b=b)
    out[...] = a * b


@implements("add", "numpy")
def add_reference(out, a, b):
    _check_same("add", "numpy", out=out, a=a, b=b)
    out[...] = a + b


@implements("scale", "numpy")
def scale_reference(out, x, alpha):
    _check_same("scale", "numpy", out=out, x=x)
    out[...] = alpha * x


@implements("axpy", "numpy")
def axpy_reference(y, x, alpha):
    _check_same("axpy", "numpy", y=y, x=x)
    y += alpha * x


@implements("swap_leading_axes", "numpy")
def swap_leading_axes_reference(out, x):
    """out[b, a, c] = x[a, b, c]: batch-first (N, T, F) <-> time-major (T, N, F) sequences."""
    _check_swap("numpy", out, x)
    out[...] = x.transpose(1, 0, 2)


# ------------------------------------------------------------------------------------------------
# Element update: one body, compiled for the CPU twin and for the GPU kernel
# ------------------------------------------------------------------------------------------------
# One element's arithmetic, compiled for the CPU twins' prange loops and the GPU kernels. Not tanh: the CPU
# twin has its own vectorizable rational (cpu_tanh.py), the GPU math.tanh. The one-operation ops (fill, add,
# multiply, axpby, bias add) and the index shuffle (swap) have no arithmetic worth sharing.


def _relu(v):
    return max(v, float32(0.0))


def _sigmoid(v):
    return float32(1.0) / (float32(1.0) + math.exp(-v))


def _activation_grad(dy, y, act):
    """dL/dx from dL/dy and the forward's output y."""
    if act == ACT_RELU:
        return dy if y > float32(0.0) else float32(0.0)
    if act == ACT_TANH:
        return dy * (float32(1.0) - y * y)
    return dy * y * (float32(1.0) - y)


def _dropout_scale(bits, p, keep_scale):
    """An element's mask value from its hash: keep_scale, or 0 when dropped (24 bits -> a uniform in [0, 1))."""
    uniform = float32(bits >> 8) * float32(INV_2_24)
    return keep_scale if uniform >= p else float32(0.0)


# fastmath for the device functions, as their kernels (a device function does not take its kernel's flags).
_relu_cpu_body, _relu_gpu_body = cpu_and_gpu(_relu)
_sigmoid_cpu_body, _sigmoid_gpu_body = cpu_and_gpu(_sigmoid)
_activation_grad_cpu_body, _activation_grad_gpu_body = cpu_and_gpu(_activation_grad, fastmath=True)
_hash_cpu, _hash_gpu = cpu_and_gpu(hash_uniform_bits)
_dropout_scale_cpu_body, _dropout_scale_gpu_body = cpu_and_gpu(_dropout_scale)


# ------------------------------------------------------------------------------------------------
# CPU twin: Numba prange over flat views, the element bodies inlined
# ------------------------------------------------------------------------------------------------


@serial_below_grain
@njit(parallel=True, cache=True)
def _fill_cpu(out, value):
    for i in prange(out.size):
        out[i] = value


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _activation_forward_cpu(out, x, act):
    for i in prange(x.size):
        v = x[i]
        if act == ACT_RELU:
            out[i] = _relu_cpu_body(v)
        elif act == ACT_TANH:
            out[i] = tanh_float32(v)  # vectorizes; np.tanh would be a scalar libm call per element
        else:
            out[i] = _sigmoid_cpu_body(v)


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _activation_backward_cpu(dx, dy, y, act):
    for i in prange(y.size):
        dx[i] = _activation_grad_cpu_body(dy[i], y[i], act)


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _bias_add_cpu(out, x, bias):
    for i in prange(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = x[i, j] + bias[j]


@serial_below_grain
@njit(parallel=True, cache=True)
def _dropout_forward_cpu(out, mask, x, p, seed):
    keep_scale = np.float32(1.0) / (np.float32(1.0) - p)
    for i in prange(x.size):
        m = _dropout_scale_cpu_body(_hash_cpu(seed, i), p, keep_scale)
        mask[i] = m
        out[i] = x[i] * m


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _multiply_cpu(out, a, b):
    for i in prange(a.size):
        out[i] = a[i] * b[i]


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _add_cpu(out, a, b):
    for i in prange(a.size):
        out[i] = a[i] + b[i]


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _axpby_cpu(y, x, alpha, beta):
    for i in prange(x.size):
        y[i] = alpha * x[i] + beta * y[i] if beta != 0 else alpha * x[i]


@serial_below_grain
@njit(parallel=True, cache=True)
def _swap_leading_axes_cpu(out, x):
    a, b, c = x.shape
    for j in prange(b):
        for i in range(a):
            for k in range(c):
                out[j, i, k] = x[i, j, k]


@implements("swap_leading_axes", "cpu")
def swap_leading_axes_cpu(out, x):
    _check_swap("cpu", out, x)
    _swap_leading_axes_cpu(out, x)


@implements("fill", "cpu")
def fill_cpu(out, value):
    check_array("fill", "out", out, "cpu")
    _fill_cpu(_flat(out), np.float32(value))


@implements("activation_forward", "cpu")
def activation_forward_cpu(out, x, activation):
    _check_same("activation_forward", "cpu", out=out, x=x)
    _check_activation("activation_forward", activation)
    _activation_forward_cpu(_flat(out), _flat(x), ACTIVATIONS[activation])


@implements("activation_backward", "cpu")
def activation_backward_cpu(dx, dy, y, activation):
    _check_same("activation_backward", "cpu", dx=dx, dy=dy, y=y)
    _check_activation("activation_backward", activation)
    _activation_backward_cpu(_flat(dx), _flat(dy), _flat(y), ACTIVATIONS[activation])


@implements("bias_add", "cpu")
def bias_add_cpu(out, x, bias):
    _check_bias_rows("cpu", out, x, bias)
    _bias_add_cpu(out, x, bias)


@implements("dropout_forward", "cpu")
def dropout_forward_cpu(out, mask, x, p, seed):
    _check_dropout("cpu", out, mask, x, p, seed)
    _dropout_forward_cpu(_flat(out), _flat(mask), _flat(x), np.float32(p), np.int64(_host_seed(seed)))


@implements("multiply", "cpu")
def multiply_cpu(out, a, b):
    _check_same("multiply", "cpu", out=out, a=a, b=b)
    _multiply_cpu(_flat(out), _flat(a), _flat(b))


@implements("add", "cpu")
def add_cpu(out, a, b):
    _check_same("add", "cpu", out=out, a=a, b=b)
    _add_cpu(_flat(out), _flat(a), _flat(b))


@implements("scale", "cpu")
def scale_cpu(out, x, alpha):
    _check_same("scale", "cpu", out=out, x=x)
    _axpby_cpu(_flat(out), _flat(x), np.float32(alpha), np.float32(0.0))


@implements("axpy", "cpu")
def axpy_cpu(y, x, alpha):
    _check_same("axpy", "cpu", y=y, x=x)
    _axpby_cpu(_flat(y), _flat(x), np.float32(alpha), np.float32(1.0))


# ------------------------------------------------------------------------------------------------
# GPU kernels: one grid-stride loop each (coalesced: consecutive threads touch consecutive floats)
# ------------------------------------------------------------------------------------------------


@gpu_kernel("void(float32[::1], float32)")
def fill_kernel(out, value):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, stride):
        out[i] = value


# No fastmath here: with it, math.tanh becomes tanh.approx.f32 (relative error up to 2^-11, beyond the tests'
# tolerance; docs/benchmarks.md). The kernel is memory-bound: exact costs nothing.
@gpu_kernel("void(float32[::1], float32[::1], int32)")
def activation_forward_kernel(out, x, act):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, stride):
        v = x[i]
        if act == ACT_RELU:
            out[i] = _relu_gpu_body(v)
        elif act == ACT_TANH:
            out[i] = math.tanh(v)
        else:
            out[i] = _sigmoid_gpu_body(v)


@gpu_kernel("void(float32[::1], float32[::1], float32[::1], int32)", fastmath=True)
def activation_backward_kernel(dx, dy, y, act):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, y.size, stride):
        dx[i] = _activation_grad_gpu_body(dy[i], y[i], act)


@gpu_kernel("void(float32[:, ::1], float32[:, ::1], float32[::1])", fastmath=True)
def bias_add_kernel(out, x, bias):
    rows, cols = x.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, rows * cols, stride):
        i = e // cols
        j = e - i * cols
        out[i, j] = x[i, j] + bias[j]


@gpu_kernel("void(float32[::1], float32[::1], float32[::1], float32, int64[::1])")
def dropout_forward_kernel(out, mask, x, p, seed_state):
    seed = seed_state[0]  # from device memory: a replayed graph draws this step's mask
    keep_scale = float32(1.0) / (float32(1.0) - p)
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, stride):
        m = _dropout_scale_gpu_body(_hash_gpu(seed, i), p, keep_scale)
        mask[i] = m
        out[i] = x[i] * m


@gpu_kernel("void(float32[::1], float32[::1], float32[::1])", fastmath=True)
def multiply_kernel(out, a, b):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, a.size, stride):
        out[i] = a[i] * b[i]


@gpu_kernel("void(float32[::1], float32[::1], float32[::1])", fastmath=True)
def add_kernel(out, a, b):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, a.size, stride):
        out[i] = a[i] + b[i]


@gpu_kernel("void(float32[::1], float32[::1], float32, float32)", fastmath=True)
def axpby_kernel(y, x, alpha, beta):
    """y = alpha*x + beta*y (beta == 0: y is not read)."""
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, stride):
        if beta != float32(0.0):
            y[i] = alpha * x[i] + beta * y[i]
        else:
            y[i] = alpha * x[i]


@gpu_kernel("void(float32[:, :, ::1], float32[:, :, ::1])")
def swap_leading_axes_kernel(out, x):
    a, b, c = x.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, a * b * c, stride):  # e walks `out` in memory order: coalesced writes
        k = e % c
        i = (e // c) % a
        j = e // (c * a)
        out[j, i, k] = x[i, j, k]


# ------------------------------------------------------------------------------------------------
# Launchers
# ------------------------------------------------------------------------------------------------


@implements("fill", "cuda")
def fill_cuda(out, value, block=None, stream=0):
    check_array("fill", "out", out, "cuda")
    out = _flat(out)
    launch_1d(fill_kernel, out.size, block, stream)(out, np.float32(value))


@implements("activation_forward", "cuda")
def activation_forward_cuda(out, x, activation, block=None, stream=0):
    _check_same("activation_forward", "cuda", out=out, x=x)
    _check_activation("activation_forward", activation)
    launch_1d(activation_forward_kernel, x.size, block, stream)(_flat(out), _flat(x), np.int32(ACTIVATIONS[activation]))


@implements("activation_backward", "cuda")
def activation_backward_cuda(dx, dy, y, activation, block=None, stream=0):
    _check_same("activation_backward", "cuda", dx=dx, dy=dy, y=y)
    _check_activation("activation_backward", activation)
    launch_1d(activation_backward_kernel, y.size, block, stream)(
        _flat(dx), _flat(dy), _flat(y), np.int32(ACTIVATIONS[activation]))


@implements("bias_add", "cuda")
def bias_add_cuda(out, x, bias, block=None, stream=0):
    rows, cols = _check_bias_rows("cuda", out, x, bias)
    launch_1d(bias_add_kernel, rows * cols, block, stream)(out, x, bias)


@implements("dropout_forward", "cuda")
def dropout_forward_cuda(out, mask, x, p, seed, block=None, stream=0):
    _check_dropout("cuda", out, mask, x, p, seed)
    seed = _device_seed(seed, stream)
    launch_1d(dropout_forward_kernel, x.size, block, stream)(_flat(out), _flat(mask), _flat(x), np.float32(p), seed)


@implements("multiply", "cuda")
def multiply_cuda(out, a, b, block=None, stream=0):
    _check_same("multiply", "cuda", out=out, a=a, b=b)
    launch_1d(multiply_kernel, a.size, block, stream)(_flat(out), _flat(a), _flat(b))


@implements("add", "cuda")
def add_cuda(out, a, b, block=None, stream=0):
    _check_same("add", "cuda", out=out, a=a, b=b)
    launch_1d(add_kernel, a.size, block, stream)(_flat(out), _flat(a), _flat(b))


@implements("scale", "cuda")
def scale_cuda(out, x, alpha, block=None, stream=0):
    _check_same("scale", "cuda", out=out, x=x)
    launch_1d(axpby_kernel, x.size, block, stream)(_flat(out), _flat(x), np.float32(alpha), np.float32(0.0))


@implements("axpy", "cuda")
def axpy_cuda(y, x, alpha, block=None, stream=0):
    _check_same("axpy", "cuda", y=y, x=x)
    launch_1d(axpby_kernel, x.size, block, stream)(_flat(y), _flat(x), np.float32(alpha), np.float32(1.0))


@implements("swap_leading_axes", "cuda")
def swap_leading_axes_cuda(out, x, block=None, stream=0):
    _check_swap("cuda", out, x)
    launch_1d(swap_leading_axes_kernel, x.size, block, stream)(out, x)
