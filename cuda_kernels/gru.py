"""The GRU cell, PyTorch's gate order (r, z, n) and PyTorch's n gate (b_hn inside the reset product): all
three gates and the new state in one fused kernel, forward and backward through one time step of BPTT. The
GEMMs around it are ``gemm``'s.

Shapes: xproj, hproj, gates, dxproj, dhproj (N, 3H), gate k of row n in columns [k*H, (k+1)*H); h_prev,
h, dh_out, dh_next, dh_prev (N, H).
Forward, per step t (the caller's GEMMs, then ``gru_cell_forward``):
    xproj = x_t @ w_ih^T + b_ih          for all T steps at once, one (N*T, I) @ (I, 3H) GEMM before the loop
    hproj = h_prev @ w_hh^T + b_hh       per step, b_hh in the GEMM's epilogue; kept apart from xproj
                                         (and saved for backward) because n multiplies its third part by r
    r = sigmoid(xproj_r + hproj_r)       z = sigmoid(xproj_z + hproj_z)
    n = tanh(xproj_n + r * hproj_n)      h = (1 - z) * n + z * h_prev
    ``gates`` = [r, z, n] (may be ``xproj`` itself: in place, each element reads before it writes)
Backward, per step (``gru_cell_backward``, then one GEMM):
    dh       = dh_out + dh_next
    dn_pre   = dh * (1 - z) * (1 - n^2)
    dz_pre   = dh * (h_prev - n) * z(1-z)
    dr_pre   = dn_pre * hproj_n * r(1-r)
    dxproj   = [dr_pre, dz_pre, dn_pre]          the gradient of x_t @ w_ih^T + b_ih
    dhproj   = [dr_pre, dz_pre, dn_pre * r]      the gradient of h_prev @ w_hh^T + b_hh
    dh_prev  = dh * z  (+ dhproj @ w_hh, the GEMM, added with beta = 1)
and after the loop, over all T steps at once: dx = dxproj @ w_ih, dw_ih = dxproj^T @ x, db_ih = column sums
of dxproj, dw_hh = dhproj^T @ h_prev, db_hh = column sums of dhproj.

Napkin math: the GEMMs are 2*N*3H*(I + H) FLOPs a step forward, twice that backward: 3x the Elman RNN's,
3/4 of the LSTM's. The cell is N*H elements, ~20 FLOPs and 3 exp/tanh each on 44 bytes (read 3 + 3
projections and h_prev, write 3 gates and h): memory-bound and, at the bench's N = 64, H = 128, far
shorter than one launch. Fusing makes it one launch a step instead of ~10 (two sums and two sigmoids, a
product, a sum and a tanh, the interpolation); the GRU pays a second (N, 3H) buffer a step over the LSTM,
because its hidden projection cannot be summed into the input one.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32, njit, prange, uint64
from scipy.special import expit

from .backend import implements
from .checks import check_array, check_dtype_family, float_dtype
from .cpu_tanh import tanh_float32
from .launch import cpu_and_gpu, gpu_kernel, launch_1d
from .threads import serial_below_grain

GATES = 3  # r, z, n

# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------


def _check_forward(backend, h, gates, xproj, hproj, h_prev):
    op = "gru_cell_forward"
    dt = float_dtype(backend)
    n, hidden = check_array(op, "h_prev", h_prev, backend, dtype=dt, ndim=2)
    for name, x in (("xproj", xproj), ("hproj", hproj), ("gates", gates)):
        check_array(op, name, x, backend, shape=(n, GATES * hidden), dtype=dt)
    check_array(op, "h", h, backend, shape=(n, hidden), dtype=dt)
    check_dtype_family(op, backend, h=h, gates=gates, xproj=xproj, hproj=hproj, h_prev=h_prev)
    return n, hidden


def _check_backward(backend, dxproj, dhproj, dh_prev, dh_out, dh_next, gates, hproj, h_prev):
    op = "gru_cell_backward"
    dt = float_dtype(backend)
    n, hidden = check_array(op, "h_prev", h_prev, backend, dtype=dt, ndim=2)
    for name, x in (("dh_out", dh_out), ("dh_next", dh_next), ("dh_prev", dh_prev)):
        check_array(op, name, x, backend, shape=(n, hidden), dtype=dt)
    for name, x in (("gates", gates), ("hproj", hproj), ("dxproj", dxproj), ("dhproj", dhproj)):
        check_array(op, name, x, backend, shape=(n, GATES * hidden), dtype=dt)
    check_dtype_family(op, backend, dxproj=dxproj, dhproj=dhproj, dh_prev=dh_prev, dh_out=dh_out, dh_next=dh_next,
                       gates=gates, hproj=hproj, h_prev=h_prev)
    return n, hidden


# ------------------------------------------------------------------------------------------------
# Reference: NumPy, float64-capable
# ------------------------------------------------------------------------------------------------


@implements("gru_cell_forward", "numpy")
def gru_cell_forward_reference(h, gates, xproj, hproj, h_prev):
    """gates = [r, z, n] = [sigmoid(xr + hr), sigmoid(xz + hz), tanh(xn + r*hn)]; h = (1-z)*n + z*h_prev.
    ``gates`` may be ``xproj`` itself (activated in place)."""
    _, hh = _check_forward("numpy", h, gates, xproj, hproj, h_prev)
    r = expit(xproj[:, :hh] + hproj[:, :hh])
    z = expit(xproj[:, hh:2 * hh] + hproj[:, hh:2 * hh])
    n = np.tanh(xproj[:, 2 * hh:] + r * hproj[:, 2 * hh:])
    gates[:, :hh], gates[:, hh:2 * hh], gates[:, 2 * hh:] = r, z, n
    h[...] = (1 - z) * n + z * h_prev


@implements("gru_cell_backward", "numpy")
def gru_cell_backward_reference(dxproj, dhproj, dh_prev, dh_out, dh_next, gates, hproj, h_prev):
    """The gradients of both projections (dxproj, dhproj) and dh_prev's direct part dh*z (the caller adds
    dhproj @ w_hh), from the gradient flowing into h (dh_out + dh_next), the saved gates, hproj and h_prev."""
    _, hh = _check_backward("numpy", dxproj, dhproj, dh_prev, dh_out, dh_next, gates, hproj, h_prev)
    r, z, n = gates[:, :hh], gates[:, hh:2 * hh], gates[:, 2 * hh:]
    dh = dh_out + dh_next
    dn_pre = dh * (1 - z) * (1 - n * n)
    dz_pre = dh * (h_prev - n) * z * (1 - z)
    dr_pre = dn_pre * hproj[:, 2 * hh:] * r * (1 - r)
    dxproj[:, :hh], dxproj[:, hh:2 * hh], dxproj[:, 2 * hh:] = dr_pre, dz_pre, dn_pre
    dhproj[:, :hh], dhproj[:, hh:2 * hh], dhproj[:, 2 * hh:] = dr_pre, dz_pre, dn_pre * r
    dh_prev[...] = dh * z


# ------------------------------------------------------------------------------------------------
# Element update: one body, CPU and GPU
# ------------------------------------------------------------------------------------------------
# The backward has no tanh (n is saved), so all of its arithmetic is shared; the forward shares the sigmoid
# (the CPU twin's tanh is its vectorizable rational, cpu_tanh.py; the GPU's math.tanh without fastmath).


def _sigmoid(v):
    return float32(1.0) / (float32(1.0) + math.exp(-v))


def _gru_backward_element(dh, r, z, n, hn, h_prev):
    """(d pre_r, d pre_z, d pre_n, d hproj_n, dh_prev's direct part) of one unit."""
    one = float32(1.0)
    dn_pre = dh * (one - z) * (one - n * n)
    dr_pre = dn_pre * hn * r * (one - r)
    return dr_pre, dh * (h_prev - n) * z * (one - z), dn_pre, dn_pre * r, dh * z


_sigmoid_cpu, _sigmoid_gpu = cpu_and_gpu(_sigmoid)
_backward_cpu_body, _backward_gpu_body = cpu_and_gpu(_gru_backward_element, fastmath=True)


# ------------------------------------------------------------------------------------------------
# CPU twin: prange over rows, each row's H units in a plain inner loop
# ------------------------------------------------------------------------------------------------


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _gru_cell_forward_cpu(h, gates, xproj, hproj, h_prev):
    n, hidden = h_prev.shape
    for row in prange(n):
        for j in range(hidden):
            r = _sigmoid_cpu(xproj[row, j] + hproj[row, j])
            z = _sigmoid_cpu(xproj[row, hidden + j] + hproj[row, hidden + j])
            nn = tanh_float32(xproj[row, 2 * hidden + j] + r * hproj[row, 2 * hidden + j])
            gates[row, j] = r
            gates[row, hidden + j] = z
            gates[row, 2 * hidden + j] = nn
            h[row, j] = (np.float32(1.0) - z) * nn + z * h_prev[row, j]


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _gru_cell_backward_cpu(dxproj, dhproj, dh_prev, dh_out, dh_next, gates, hproj, h_prev):
    n, hidden = h_prev.shape
    for row in prange(n):
        for j in range(hidden):
            dr, dz, dn, dhn, dhp = _backward_cpu_body(dh_out[row, j] + dh_next[row, j], gates[row, j],
                                                      gates[row, hidden + j], gates[row, 2 * hidden + j],
                                                      hproj[row, 2 * hidden + j], h_prev[row, j])
            dxproj[row, j] = dr
            dxproj[row, hidden + j] = dz
            dxproj[row, 2 * hidden + j] = dn
            dhproj[row, j] = dr
            dhproj[row, hidden + j] = dz
            dhproj[row, 2 * hidden + j] = dhn
            dh_prev[row, j] = dhp


@implements("gru_cell_forward", "cpu")
def gru_cell_forward_cpu(h, gates, xproj, hproj, h_prev):
    _check_forward("cpu", h, gates, xproj, hproj, h_prev)
    _gru_cell_forward_cpu(h, gates, xproj, hproj, h_prev)


@implements("gru_cell_backward", "cpu")
def gru_cell_backward_cpu(dxproj, dhproj, dh_prev, dh_out, dh_next, gates, hproj, h_prev):
    _check_backward("cpu", dxproj, dhproj, dh_prev, dh_out, dh_next, gates, hproj, h_prev)
    _gru_cell_backward_cpu(dxproj, dhproj, dh_prev, dh_out, dh_next, gates, hproj, h_prev)


# ------------------------------------------------------------------------------------------------
# GPU kernels: one grid-stride loop over the N*H units, all three gates per thread
# ------------------------------------------------------------------------------------------------
# A thread owns unit e = (row, j) and touches row*3H + j + {0, H, 2H} of each (N, 3H) array: coalesced
# streams. Flat arrays and unsigned indices, as in lstm.py (the backward: 91 registers with 2-D arrays, 78
# flat, 42 flat with unsigned indices).
# The forward has no fastmath (math.tanh would become tanh.approx.f32, tests/test_ptx.py); the backward has
# no tanh and takes it (FMA contraction).

_FLAT = "float32[::1]"


@gpu_kernel(f"void({', '.join([_FLAT] * 5)}, uint64)")
def gru_cell_forward_kernel(h, gates, xproj, hproj, h_prev, hidden):
    h2 = hidden + hidden
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for signed in range(start, h.size, stride):
        e = uint64(signed)
        at = e + (e // hidden) * h2  # row*3H + j
        r = _sigmoid_gpu(xproj[at] + hproj[at])
        z = _sigmoid_gpu(xproj[at + hidden] + hproj[at + hidden])
        nn = math.tanh(xproj[at + h2] + r * hproj[at + h2])
        gates[at] = r
        gates[at + hidden] = z
        gates[at + h2] = nn
        h[e] = (float32(1.0) - z) * nn + z * h_prev[e]


@gpu_kernel(f"void({', '.join([_FLAT] * 8)}, uint64)", fastmath=True)
def gru_cell_backward_kernel(dxproj, dhproj, dh_prev, dh_out, dh_next, gates, hproj, h_prev, hidden):
    h2 = hidden + hidden
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for signed in range(start, h_prev.size, stride):
        e = uint64(signed)
        at = e + (e // hidden) * h2  # row*3H + j
        dr, dz, dn, dhn, dhp = _backward_gpu_body(dh_out[e] + dh_next[e], gates[at], gates[at + hidden],
                                                  gates[at + h2], hproj[at + h2], h_prev[e])
        dxproj[at] = dr
        dxproj[at + hidden] = dz
        dxproj[at + h2] = dn
        dhproj[at] = dr
        dhproj[at + hidden] = dz
        dhproj[at + h2] = dhn
        dh_prev[e] = dhp


# ------------------------------------------------------------------------------------------------
# Launchers
# ------------------------------------------------------------------------------------------------


def _flat(*arrays):
    """The kernels' 1-D views (every array was checked C-contiguous)."""
    return [a.reshape(a.size) for a in arrays]


@implements("gru_cell_forward", "cuda")
def gru_cell_forward_cuda(h, gates, xproj, hproj, h_prev, block=None, stream=0):
    n, hidden = _check_forward("cuda", h, gates, xproj, hproj, h_prev)
    launch_1d(gru_cell_forward_kernel, n * hidden, block, stream)(*_flat(h, gates, xproj, hproj, h_prev),
                                                                 np.uint64(hidden))


@implements("gru_cell_backward", "cuda")
def gru_cell_backward_cuda(dxproj, dhproj, dh_prev, dh_out, dh_next, gates, hproj, h_prev, block=None, stream=0):
    n, hidden = _check_backward("cuda", dxproj, dhproj, dh_prev, dh_out, dh_next, gates, hproj, h_prev)
    launch_1d(gru_cell_backward_kernel, n * hidden, block, stream)(
        *_flat(dxproj, dhproj, dh_prev, dh_out, dh_next, gates, hproj, h_prev), np.uint64(hidden))
