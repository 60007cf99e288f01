"""Batch normalization over NCHW (per channel): training forward (batch statistics, running
averages updated), eval forward (running statistics), and backward.

Shapes: x, y, dx, dy (N, C, H, W); gamma, beta, dgamma, dbeta, mean, invstd, running_mean,
running_var (C,). M = N*H*W values per channel.
Forward (train): mean = sum(x)/M; var = sum((x-mean)^2)/M; invstd = 1/sqrt(var+eps);
                 y = gamma*(x-mean)*invstd + beta;
                 running_mean = (1-momentum)*running_mean + momentum*mean
                 running_var  = (1-momentum)*running_var  + momentum*var*M/(M-1)   (PyTorch: unbiased)
Backward:        xhat = (x-mean)*invstd; dbeta = sum(dy); dgamma = sum(dy*xhat);
                 dx = gamma*invstd/M * (M*dy - dbeta - xhat*dgamma)
mean and invstd are saved by the forward pass for the backward one (caller-owned buffers).

Napkin math: training forward reads x three times (mean, variance, normalize) and writes y once:
16 bytes and ~8 FLOPs per element; backward reads x and dy twice and writes dx: ~20 bytes. Memory-
bound. On the GPU one block owns a channel and reduces with a shared-memory tree (no atomics).
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

BN_THREADS = 32 if SIMULATOR else 256
BN_MAX_BLOCKS = 2 if SIMULATOR else 4096


# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------


def _check_bn(op, backend, x, y, channel_arrays):
    dt = float_dtype(backend)
    n, c, h, w = check_array(op, "x", x, backend, dtype=dt, ndim=4)
    check_array(op, "y" if "backward" not in op else "dx", y, backend, shape=(n, c, h, w), dtype=dt)
    for name, arr in channel_arrays.items():
        check_array(op, name, arr, backend, shape=(c,), dtype=dt)
    if n * h * w < 2 and op == "batchnorm_forward_train":
        raise ValueError(f"{op}: need more than one value per channel to normalize, got input shape {(n, c, h, w)}")
    return n, c, h, w


# ------------------------------------------------------------------------------------------------
# Reference: NumPy, float64-capable
# ------------------------------------------------------------------------------------------------


@implements("batchnorm_forward_train", "numpy")
def batchnorm_forward_train_reference(y, mean, invstd, running_mean, running_var, x, gamma, beta, momentum=0.1,
                                      eps=1e-5):
    n, c, h, w = _check_bn("batchnorm_forward_train", "numpy", x, y, dict(
        mean=mean, invstd=invstd, running_mean=running_mean, running_var=running_var, gamma=gamma, beta=beta))
    m = n * h * w
    mean[...] = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    invstd[...] = 1 / np.sqrt(var + eps)
    shape = (1, c, 1, 1)
    y[...] = gamma.reshape(shape) * (x - mean.reshape(shape)) * invstd.reshape(shape) + beta.reshape(shape)
    running_mean[...] = (1 - momentum) * running_mean + momentum * mean
    running_var[...] = (1 - momentum) * running_var + momentum * var * m / (m - 1)


@implements("batchnorm_forward_eval", "numpy")
def batchnorm_forward_eval_reference(y, x, gamma, beta, running_mean, running_var, eps=1e-5):
    n, c, h, w = _check_bn("batchnorm_forward_eval", "numpy", x, y, dict(
        gamma=gamma, beta=beta, running_mean=running_mean, running_var=running_var))
    shape = (1, c, 1, 1)
    scale = gamma / np.sqrt(running_var + eps)
    y[...] = (x - running_mean.reshape(shape)) * scale.reshape(shape) + beta.reshape(shape)


@implements("batchnorm_backward", "numpy")
def batchnorm_backward_reference(dx, dgamma, dbeta, dy, x, mean, invstd, gamma):
    n, c, h, w = _check_bn("batchnorm_backward", "numpy", x, dx, dict(
        dgamma=dgamma, dbeta=dbeta, mean=mean, invstd=invstd, gamma=gamma))
    check_array("batchnorm_backward", "dy", dy, "numpy", shape=(n, c, h, w), dtype=None)
    m, shape = n * h * w, (1, c, 1, 1)
    xhat = (x - mean.reshape(shape)) * invstd.reshape(shape)
    dbeta[...] = dy.sum(axis=(0, 2, 3))
    dgamma[...] = (dy * xhat).sum(axis=(0, 2, 3))
    dx[...] = (gamma * invstd / m).reshape(shape) * (m * dy - dbeta.reshape(shape) - xhat * dgamma.reshape(shape))


# ------------------------------------------------------------------------------------------------
# CPU twin: prange over channels; each thread streams its channel's N*H*W values
# ------------------------------------------------------------------------------------------------


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _bn_train_cpu(y, mean, invstd, running_mean, running_var, x, gamma, beta, momentum, eps):
    n, c, h, w = x.shape
    m = n * h * w
    for ch in prange(c):
        total = np.float32(0.0)
        for i in range(n):
            for r in range(h):
                for q in range(w):
                    total += x[i, ch, r, q]
        mu = total / m
        sq = np.float32(0.0)
        for i in range(n):
            for r in range(h):
                for q in range(w):
                    d = x[i, ch, r, q] - mu
                    sq += d * d
        var = sq / m
        inv = np.float32(1.0) / np.sqrt(var + eps)
        g, b = gamma[ch] * inv, beta[ch]
        for i in range(n):
            for r in range(h):
                for q in range(w):
                    y[i, ch, r, q] = g * (x[i, ch, r, q] - mu) + b
        mean[ch], invstd[ch] = mu, inv
        running_mean[ch] = (np.float32(1.0) - momentum) * running_mean[ch] + momentum * mu
        running_var[ch] = (np.float32(1.0) - momentum) * running_var[ch] + momentum * var * m / (m - 1)


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _bn_eval_cpu(y, x, gamma, beta, running_mean, running_var, eps):
    n, c, h, w = x.shape
    for ch in prange(c):
        scale = gamma[ch] / np.sqrt(running_var[ch] + eps)
        shift = beta[ch] - running_mean[ch] * scale
        for i in range(n):
            for r in range(h):
                for q in range(w):
                    y[i, ch, r, q] = x[i, ch, r, q] * scale + shift


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _bn_backward_cpu(dx, dgamma, dbeta, dy, x, mean, invstd, gamma):
    n, c, h, w = x.shape
    m = n * h * w
    for ch in prange(c):
        sum_dy = np.float32(0.0)
        sum_dy_xhat = np.float32(0.0)
        mu, inv = mean[ch], invstd[ch]
        for i in range(n):
            for r in range(h):
                for q in range(w):
                    g = dy[i, ch, r, q]
                    sum_dy += g
                    sum_dy_xhat += g * (x[i, ch, r, q] - mu) * inv
        dbeta[ch], dgamma[ch] = sum_dy, sum_dy_xhat
        k = gamma[ch] * inv / m
        for i in range(n):
            for r in range(h):
                for q in range(w):
                    xhat = (x[i, ch, r, q] - mu) * inv
                    dx[i, ch, r, q] = k * (m * dy[i, ch, r, q] - sum_dy - xhat * sum_dy_xhat)


@implements("batchnorm_forward_train", "cpu")
def batchnorm_forward_train_cpu(y, mean, invstd, running_mean, running_var, x, gamma, beta, momentum=0.1, eps=1e-5):
    _check_bn("batchnorm_forward_train", "cpu", x, y, dict(
        mean=mean, invstd=invstd, running_mean=running_mean, running_var=running_var, gamma=gamma, beta=beta))
    _bn_train_cpu(y, mean, invstd, running_mean, running_var, x, gamma, beta, np.float32(momentum), np.float32(eps))


@implements("batchnorm_forward_eval", "cpu")
def batchnorm_forward_eval_cpu(y, x, gamma, beta, running_mean, running_var, eps=1e-5):
    _check_bn("batchnorm_forward_eval", "cpu", x, y, dict(
        gamma=gamma, beta=beta, running_mean=running_mean, running_var=running_var))
    _bn_eval_cpu(y, x, gamma, beta, running_mean, running_var, np.float32(eps))


@implements("batchnorm_backward", "cpu")
def batchnorm_backward_cpu(dx, dgamma, dbeta, dy, x, mean, invstd, gamma):
    shape = _check_bn("batchnorm_backward", "cpu", x, dx, dict(
        dgamma=dgamma, dbeta=dbeta, mean=mean, invstd=invstd, gamma=gamma))
    check_array("batchnorm_backward", "dy", dy, "cpu", shape=shape)
    _bn_backward_cpu(dx, dgamma, dbeta, dy, x, mean, invstd, gamma)


# ------------------------------------------------------------------------------------------------
# GPU kernels: train and backward one block per channel (block-wide tree reductions); eval grid-stride
# ------------------------------------------------------------------------------------------------


BN4 = "float32[:, :, :, ::1]"
BN1 = "float32[::1]"


@gpu_kernel(f"void({BN4}, {BN1}, {BN1}, {BN1}, {BN1}, {BN4}, {BN1}, {BN1}, float32, float32)", fastmath=True)
def batchnorm_forward_train_kernel(y, mean, invstd, running_mean, running_var, x, gamma, beta, momentum, eps):
    partial = cuda.shared.array(REDUCE_SHARED, float32)
    n, c, h, w = x.shape
    hw = h * w
    m = n * hw
    t = cuda.threadIdx.x
    for ch in range(cuda.blockIdx.x, c, cuda.gridDim.x):
        acc = float32(0.0)
        for e in range(t, m, cuda.blockDim.x):
            p = e % hw
            acc += x[e // hw, ch, p // w, p % w]
        partial[t] = acc
        _fold_block(partial, t)
        mu = partial[0] / float32(m)
        cuda.syncthreads()  # everyone has read partial[0] before it is reused
        acc = float32(0.0)
        for e in range(t, m, cuda.blockDim.x):
            p = e % hw
            d = x[e // hw, ch, p // w, p % w] - mu
            acc += d * d
        partial[t] = acc
        _fold_block(partial, t)
        var = partial[0] / float32(m)
        inv = float32(1.0) / math.sqrt(var + eps)
        g = gamma[ch] * inv
        b = beta[ch]
        for e in range(t, m, cuda.blockDim.x):
            p = e % hw
            i, r, q = e // hw, p // w, p % w
            y[i, ch, r, q] = g * (x[i, ch, r, q] - mu) + b
        if t == 0:
            mean[ch] = mu
            invstd[ch] = inv
            running_mean[ch] = (float32(1.0) - momentum) * running_mean[ch] + momentum * mu
            running_var[ch] = (float32(1.0) - momentum) * running_var[ch] + momentum * var * float32(m) / float32(m - 1)
        cuda.syncthreads()  # the next channel reuses `partial`


@gpu_kernel(f"void({BN4}, {BN4}, {BN1}, {BN1}, {BN1}, {BN1}, float32)", fastmath=True)
def batchnorm_forward_eval_kernel(y, x, gamma, beta, running_mean, running_var, eps):
    n, c, h, w = x.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, n * c * h * w, stride):
        q = e % w
        r = (e // w) % h
        ch = (e // (w * h)) % c
        i = e // (w * h * c)
        scale = gamma[ch] / math.sqrt(running_var[ch] + eps)
        y[i, ch, r, q] = (x[i, ch, r, q] - running_mean[ch]) * scale + beta[ch]


@gpu_kernel(f"void({BN4}, {BN1}, {BN1}, {BN4}, {BN4}, {BN1}, {BN1}, {BN1})", fastmath=True)
def batchnorm_backward_kernel(dx, dgamma, dbeta, dy, x, mean, invstd, gamma):
    sums = cuda.shared.array(REDUCE_SHARED, float32)
    n, c, h, w = x.shape
    hw = h * w
    m = n * hw
    t = cuda.threadIdx.x
    for ch in range(cuda.blockIdx.x, c, cuda.gridDim.x):
        mu = mean[ch]
        inv = invstd[ch]
        acc = float32(0.0)
        for e in range(t, m, cuda.blockDim.x):
            p = e % hw
            acc += dy[e // hw, ch, p // w, p % w]
        sums[t] = acc
        _fold_block(sums, t)
        sum_dy = sums[0]
        cuda.syncthreads()
        acc = float32(0.0)
        for e in range(t, m, cuda.blockDim.x):
            p = e % hw
            i, r, q = e // hw, p // w, p % w
            acc += dy[i, ch, r, q] * (x[i, ch, r, q] - mu) * inv
        sums[t] = acc
        _fold_block(sums, t)
        sum_dy_xhat = sums[0]
        k = gamma[ch] * inv / float32(m)
        for e in range(t, m, cuda.blockDim.x):
            p = e % hw
            i, r, q = e // hw, p // w, p % w
            xhat = (x[i, ch, r, q] - mu) * inv
            dx[i, ch, r, q] = k * (float32(m) * dy[i, ch, r, q] - sum_dy - xhat * sum_dy_xhat)
        if t == 0:
            dbeta[ch] = sum_dy
            dgamma[ch] = sum_dy_xhat
        cuda.syncthreads()


# ------------------------------------------------------------------------------------------------
# Launchers
# ------------------------------------------------------------------------------------------------


def _channel_grid(c):
    return max(1, min(c, BN_MAX_BLOCKS)), BN_THREADS


@implements("batchnorm_forward_train", "cuda")
def batchnorm_forward_train_cuda(y, mean, invstd, running_mean, running_var, x, gamma, beta, momentum=0.1, eps=1e-5,
                                 stream=0):
    n, c, h, w = _check_bn("batchnorm_forward_train", "cuda", x, y, dict(
        mean=mean, invstd=invstd, running_mean=running_mean, running_var=running_var, gamma=gamma, beta=beta))
    blocks, threads = _channel_grid(c)
    batchnorm_forward_train_kernel[blocks, threads, stream](y, mean, invstd, running_mean, running_var, x, gamma, beta,
                                                             np.float32(momentum), np.float32(eps))


@implements("batchnorm_forward_eval", "cuda")
def batchnorm_forward_eval_cuda(y, x, gamma, beta, running_mean, running_var, eps=1e-5, block=None, stream=0):
    _check_bn("batchnorm_forward_eval", "cuda", x, y, dict(
        gamma=gamma, beta=beta, running_mean=running_mean, running_var=running_var))
    launch_1d(batchnorm_forward_eval_kernel, x.size, block, stream)(y, x, gamma, beta, running_mean, running_var,
                                                                    np.float32(eps))


@implements("batchnorm_backward", "cuda")
def batchnorm_backward_cuda(dx, dgamma, dbeta, dy, x, mean, invstd, gamma, stream=0):
    shape = _check_bn("batchnorm_backward", "cuda", x, dx, dict(
        dgamma=dgamma, dbeta=dbeta, mean=mean, invstd=invstd, gamma=gamma))
    check_array("batchnorm_backward", "dy", dy, "cuda", shape=shape)
    blocks, threads = _channel_grid(shape[1])
    batchnorm_backward_kernel[blocks, threads, stream](dx, dgamma, dbeta, dy, x, mean, invstd, gamma)
