"""Layer normalization over the last dimension (per row): forward (saving mean and rstd) and backward.

Shapes: x, y, dx, dy (R, D); gamma, beta, dgamma, dbeta (D,); mean, rstd (R,). A layer folds every
leading axis into R rows (batch, time, ...); D is PyTorch's ``normalized_shape``.
Forward:  mean = sum(x)/D; var = sum((x-mean)^2)/D (biased, as PyTorch); rstd = 1/sqrt(var+eps);
          y = gamma*(x-mean)*rstd + beta
Backward: xhat = (x-mean)*rstd; g = dy*gamma (per row);
          dx = rstd/D * (D*g - sum(g) - xhat*sum(g*xhat))   (sums over the row's D values)
          dgamma = sum over rows of dy*xhat; dbeta = sum over rows of dy
BatchNorm's twin turned sideways: BatchNorm reduces a column (a channel over the batch), LayerNorm a
row (one sample's features), so its statistics need no batch and work at batch size 1 and in eval.

Napkin math: forward reads x three times (mean, variance, normalize) and writes y: 16 bytes and ~8
FLOPs per element; backward reads x and dy twice for dx, once more for dgamma and dbeta: ~28 bytes.
Memory-bound. On the GPU one block owns a row (a shared-memory tree reduction, no atomics); the
parameter gradients are column sums over rows, one thread per column, so a warp reads adjacent values.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32, njit, prange

from .backend import implements
from .checks import check_array, float_dtype
from .launch import SIMULATOR, gpu_kernel, launch_1d
from .reductions import REDUCE_SHARED, _fold_block
from .threads import serial_below_grain

LN_THREADS = 32 if SIMULATOR else 256  # a power of two (the tree), at most REDUCE_SHARED
LN_MAX_BLOCKS = 2 if SIMULATOR else 4096


# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------


def _check_ln(op, backend, x, out, row_arrays, feature_arrays):
    dt = float_dtype(backend)
    rows, d = check_array(op, "x", x, backend, dtype=dt, ndim=2)
    check_array(op, "dx" if "backward" in op else "y", out, backend, shape=(rows, d), dtype=dt)
    for name, arr in row_arrays.items():
        check_array(op, name, arr, backend, shape=(rows,), dtype=dt)
    for name, arr in feature_arrays.items():
        check_array(op, name, arr, backend, shape=(d,), dtype=dt)
    return rows, d


# ------------------------------------------------------------------------------------------------
# Reference: NumPy, float64-capable
# ------------------------------------------------------------------------------------------------


@implements("layernorm_forward", "numpy")
def layernorm_forward_reference(y, mean, rstd, x, gamma, beta, eps=1e-5):
    _check_ln("layernorm_forward", "numpy", x, y, dict(mean=mean, rstd=rstd), dict(gamma=gamma, beta=beta))
    mean[...] = x.mean(axis=1)
    rstd[...] = 1 / np.sqrt(x.var(axis=1) + eps)
    y[...] = gamma * (x - mean[:, None]) * rstd[:, None] + beta


@implements("layernorm_backward", "numpy")
def layernorm_backward_reference(dx, dgamma, dbeta, dy, x, mean, rstd, gamma):
    rows, d = _check_ln("layernorm_backward", "numpy", x, dx, dict(mean=mean, rstd=rstd),
                        dict(dgamma=dgamma, dbeta=dbeta, gamma=gamma))
    check_array("layernorm_backward", "dy", dy, "numpy", shape=(rows, d), dtype=None)
    xhat = (x - mean[:, None]) * rstd[:, None]
    g = dy * gamma
    dbeta[...] = dy.sum(axis=0)
    dgamma[...] = (dy * xhat).sum(axis=0)
    sum_g, sum_g_xhat = g.sum(axis=1, keepdims=True), (g * xhat).sum(axis=1, keepdims=True)
    dx[...] = (rstd / d)[:, None] * (d * g - sum_g - xhat * sum_g_xhat)


# ------------------------------------------------------------------------------------------------
# CPU twin: prange over rows (forward, dx); prange over columns for dgamma and dbeta
# ------------------------------------------------------------------------------------------------


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _ln_forward_cpu(y, mean, rstd, x, gamma, beta, eps):
    rows, d = x.shape
    for i in prange(rows):
        total = np.float32(0.0)
        for j in range(d):
            total += x[i, j]
        mu = total / d
        sq = np.float32(0.0)
        for j in range(d):
            diff = x[i, j] - mu
            sq += diff * diff
        inv = np.float32(1.0) / np.sqrt(sq / d + eps)
        for j in range(d):
            y[i, j] = gamma[j] * (x[i, j] - mu) * inv + beta[j]
        mean[i], rstd[i] = mu, inv


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _ln_backward_dx_cpu(dx, dy, x, mean, rstd, gamma):
    rows, d = x.shape
    for i in prange(rows):
        mu, inv = mean[i], rstd[i]
        sum_g = np.float32(0.0)
        sum_g_xhat = np.float32(0.0)
        for j in range(d):
            g = dy[i, j] * gamma[j]
            sum_g += g
            sum_g_xhat += g * (x[i, j] - mu) * inv
        k = inv / d
        for j in range(d):
            xhat = (x[i, j] - mu) * inv
            dx[i, j] = k * (d * dy[i, j] * gamma[j] - sum_g - xhat * sum_g_xhat)


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _ln_backward_params_cpu(dgamma, dbeta, dy, x, mean, rstd):
    rows, d = x.shape
    for j in prange(d):
        sum_dy = np.float32(0.0)
        sum_dy_xhat = np.float32(0.0)
        for i in range(rows):
            sum_dy += dy[i, j]
            sum_dy_xhat += dy[i, j] * (x[i, j] - mean[i]) * rstd[i]
        dbeta[j], dgamma[j] = sum_dy, sum_dy_xhat


@implements("layernorm_forward", "cpu")
def layernorm_forward_cpu(y, mean, rstd, x, gamma, beta, eps=1e-5):
    _check_ln("layernorm_forward", "cpu", x, y, dict(mean=mean, rstd=rstd), dict(gamma=gamma, beta=beta))
    _ln_forward_cpu(y, mean, rstd, x, gamma, beta, np.float32(eps))


@implements("layernorm_backward", "cpu")
def layernorm_backward_cpu(dx, dgamma, dbeta, dy, x, mean, rstd, gamma):
    shape = _check_ln("layernorm_backward", "cpu", x, dx, dict(mean=mean, rstd=rstd),
                      dict(dgamma=dgamma, dbeta=dbeta, gamma=gamma))
    check_array("layernorm_backward", "dy", dy, "cpu", shape=shape)
    _ln_backward_dx_cpu(dx, dy, x, mean, rstd, gamma)
    _ln_backward_params_cpu(dgamma, dbeta, dy, x, mean, rstd)


# ------------------------------------------------------------------------------------------------
# GPU kernels: forward and dx one block per row (block-wide tree reductions); dgamma/dbeta a thread per column
# ------------------------------------------------------------------------------------------------


LN2 = "float32[:, ::1]"
LN1 = "float32[::1]"


@gpu_kernel(f"void({LN2}, {LN1}, {LN1}, {LN2}, {LN1}, {LN1}, float32)", fastmath=True)
def layernorm_forward_kernel(y, mean, rstd, x, gamma, beta, eps):
    partial = cuda.shared.array(REDUCE_SHARED, float32)
    rows, d = x.shape
    t = cuda.threadIdx.x
    for i in range(cuda.blockIdx.x, rows, cuda.gridDim.x):
        acc = float32(0.0)
        for j in range(t, d, cuda.blockDim.x):
            acc += x[i, j]
        partial[t] = acc
        _fold_block(partial, t)
        mu = partial[0] / float32(d)
        cuda.syncthreads()  # everyone has read partial[0] before it is reused
        acc = float32(0.0)
        for j in range(t, d, cuda.blockDim.x):
            diff = x[i, j] - mu
            acc += diff * diff
        partial[t] = acc
        _fold_block(partial, t)
        inv = float32(1.0) / math.sqrt(partial[0] / float32(d) + eps)
        for j in range(t, d, cuda.blockDim.x):
            y[i, j] = gamma[j] * (x[i, j] - mu) * inv + beta[j]
        if t == 0:
            mean[i] = mu
            rstd[i] = inv
        cuda.syncthreads()  # the next row reuses `partial`


@gpu_kernel(f"void({LN2}, {LN2}, {LN2}, {LN1}, {LN1}, {LN1})", fastmath=True)
def layernorm_backward_dx_kernel(dx, dy, x, mean, rstd, gamma):
    sums = cuda.shared.array(REDUCE_SHARED, float32)
    rows, d = x.shape
    t = cuda.threadIdx.x
    for i in range(cuda.blockIdx.x, rows, cuda.gridDim.x):
        mu = mean[i]
        inv = rstd[i]
        acc = float32(0.0)
        for j in range(t, d, cuda.blockDim.x):
            acc += dy[i, j] * gamma[j]
        sums[t] = acc
        _fold_block(sums, t)
        sum_g = sums[0]
        cuda.syncthreads()
        acc = float32(0.0)
        for j in range(t, d, cuda.blockDim.x):
            acc += dy[i, j] * gamma[j] * (x[i, j] - mu) * inv
        sums[t] = acc
        _fold_block(sums, t)
        sum_g_xhat = sums[0]
        k = inv / float32(d)
        for j in range(t, d, cuda.blockDim.x):
            xhat = (x[i, j] - mu) * inv
            dx[i, j] = k * (float32(d) * dy[i, j] * gamma[j] - sum_g - xhat * sum_g_xhat)
        cuda.syncthreads()


@gpu_kernel(f"void({LN1}, {LN1}, {LN2}, {LN2}, {LN1}, {LN1})", fastmath=True)
def layernorm_backward_params_kernel(dgamma, dbeta, dy, x, mean, rstd):
    rows, d = x.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for j in range(start, d, stride):
        sum_dy = float32(0.0)
        sum_dy_xhat = float32(0.0)
        for i in range(rows):
            sum_dy += dy[i, j]
            sum_dy_xhat += dy[i, j] * (x[i, j] - mean[i]) * rstd[i]
        dbeta[j] = sum_dy
        dgamma[j] = sum_dy_xhat


# ------------------------------------------------------------------------------------------------
# Launchers
# ------------------------------------------------------------------------------------------------


def _row_grid(rows):
    return max(1, min(rows, LN_MAX_BLOCKS)), LN_THREADS


@implements("layernorm_forward", "cuda")
def layernorm_forward_cuda(y, mean, rstd, x, gamma, beta, eps=1e-5, stream=0):
    rows, _ = _check_ln("layernorm_forward", "cuda", x, y, dict(mean=mean, rstd=rstd), dict(gamma=gamma, beta=beta))
    blocks, threads = _row_grid(rows)
    layernorm_forward_kernel[blocks, threads, stream](y, mean, rstd, x, gamma, beta, np.float32(eps))


@implements("layernorm_backward", "cuda")
def layernorm_backward_cuda(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, block=None, stream=0):
    rows, d = _check_ln("layernorm_backward", "cuda", x, dx, dict(mean=mean, rstd=rstd),
                        dict(dgamma=dgamma, dbeta=dbeta, gamma=gamma))
    check_array("layernorm_backward", "dy", dy, "cuda", shape=(rows, d))
    blocks, threads = _row_grid(rows)
    layernorm_backward_dx_kernel[blocks, threads, stream](dx, dy, x, mean, rstd, gamma)
    launch_1d(layernorm_backward_params_kernel, d, block, stream)(dgamma, dbeta, dy, x, mean, rstd)
