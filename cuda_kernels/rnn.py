"""The Elman RNN step (tanh): forward, and backward through one time step of BPTT.

Shapes: x_t (N, I); h_prev, h_t, dh_out, dh_next, dpre, dh_prev (N, H); w_ih (H, I); w_hh (H, H);
bias (H,).
Forward:  h_t = tanh(x_t @ w_ih^T + h_prev @ w_hh^T + bias)
          = two GEMMs; the second adds into the first's result and applies bias + tanh in its
          epilogue, so the pre-activation never makes a separate trip through memory.
Backward: dpre    = (dh_out + dh_next) * (1 - h_t^2)     one fused elementwise kernel: the gradient
                                                         from this step's output and from step t+1
          dx_t    = dpre @ w_ih            dh_prev = dpre @ w_hh
          dw_ih  += dpre^T @ x_t           dw_hh  += dpre^T @ h_prev      db += column sums of dpre
          (the weight gradients accumulate over time steps: GEMMs with beta = 1)

Napkin math per step: forward 2*N*H*(I + H) FLOPs; backward twice that. At the bench's batch 64,
I = 64, H = 128 one step is 3 MFLOP on ~100 KiB of weights: small GEMMs, so launch overhead and the
sequential dependence over time, not FLOPs, bound an RNN on a GPU.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from numba import cuda, float32, njit, prange

from .backend import BACKEND_NAMES, get_backend, implements
from .checks import check_array, float_dtype
from .launch import gpu_kernel, launch_1d
from .threads import serial_below_grain

# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------


def _check_tanh_backward(backend, dpre, dh_out, dh_next, h):
    dt = float_dtype(backend)
    shape = check_array("rnn_tanh_backward", "h", h, backend, dtype=dt, ndim=2)
    for name, arr in (("dpre", dpre), ("dh_out", dh_out), ("dh_next", dh_next)):
        check_array("rnn_tanh_backward", name, arr, backend, shape=shape, dtype=dt)


# ------------------------------------------------------------------------------------------------
# Reference: NumPy, float64-capable
# ------------------------------------------------------------------------------------------------


@implements("rnn_tanh_backward", "numpy")
def rnn_tanh_backward_reference(dpre, dh_out, dh_next, h):
    """dpre = (dh_out + dh_next) * (1 - h^2)."""
    _check_tanh_backward("numpy", dpre, dh_out, dh_next, h)
    dpre[...] = (dh_out + dh_next) * (1 - h * h)


# ------------------------------------------------------------------------------------------------
# CPU twin: prange over the flat arrays
# ------------------------------------------------------------------------------------------------


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _rnn_tanh_backward_cpu(dpre, dh_out, dh_next, h):
    for i in prange(h.size):
        v = h[i]
        dpre[i] = (dh_out[i] + dh_next[i]) * (np.float32(1.0) - v * v)


@implements("rnn_tanh_backward", "cpu")
def rnn_tanh_backward_cpu(dpre, dh_out, dh_next, h):
    _check_tanh_backward("cpu", dpre, dh_out, dh_next, h)
    _rnn_tanh_backward_cpu(dpre.reshape(-1), dh_out.reshape(-1), dh_next.reshape(-1), h.reshape(-1))


# ------------------------------------------------------------------------------------------------
# GPU kernels: one grid-stride loop
# ------------------------------------------------------------------------------------------------


@gpu_kernel("void(float32[::1], float32[::1], float32[::1], float32[::1])", fastmath=True)
def rnn_tanh_backward_kernel(dpre, dh_out, dh_next, h):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, h.size, stride):
        v = h[i]
        dpre[i] = (dh_out[i] + dh_next[i]) * (float32(1.0) - v * v)


# ------------------------------------------------------------------------------------------------
# Launchers: the GPU kernel above, then the step composed the same way on every backend
# ------------------------------------------------------------------------------------------------


@implements("rnn_tanh_backward", "cuda")
def rnn_tanh_backward_cuda(dpre, dh_out, dh_next, h, block=None, stream=0):
    _check_tanh_backward("cuda", dpre, dh_out, dh_next, h)
    n = h.size
    launch_1d(rnn_tanh_backward_kernel, n, block, stream)(dpre.reshape(n), dh_out.reshape(n), dh_next.reshape(n),
                                                          h.reshape(n))


# The step, composed from GEMMs and the fused kernel above, through whichever backend is given.


def rnn_step_forward(kernels, h_t, x_t, h_prev, w_ih, w_hh, bias):
    """h_t = tanh(x_t @ w_ih^T + h_prev @ w_hh^T + bias); h_t is what backward needs (saved by the caller)."""
    kernels.gemm(h_t, x_t, w_ih, trans_b=True)
    kernels.gemm(h_t, h_prev, w_hh, beta=1.0, trans_b=True, bias=bias, activation="tanh")


def rnn_step_backward(kernels, dx_t, dh_prev, dw_ih, dw_hh, dbias, dpre, dh_out, dh_next, h_t, x_t, h_prev,
                      w_ih, w_hh, accumulate=True):
    """One BPTT step. ``dx_t`` may be None (no input gradient wanted). Weight gradients are added to
    (accumulate=True) or overwritten (accumulate=False, for the first step processed, t = T-1)."""
    kernels.rnn_tanh_backward(dpre, dh_out, dh_next, h_t)
    beta = 1.0 if accumulate else 0.0
    kernels.gemm(dw_ih, dpre, x_t, beta=beta, trans_a=True)
    kernels.gemm(dw_hh, dpre, h_prev, beta=beta, trans_a=True)
    kernels.column_sums(dbias, dpre, accumulate=accumulate)
    kernels.gemm(dh_prev, dpre, w_hh)
    if dx_t is not None:
        kernels.gemm(dx_t, dpre, w_ih)


for _name in BACKEND_NAMES:
    implements("rnn_step_forward", _name)(partial(rnn_step_forward, get_backend(_name)))
    implements("rnn_step_backward", _name)(partial(rnn_step_backward, get_backend(_name)))
