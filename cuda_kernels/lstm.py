"""The LSTM cell, PyTorch's gate order (i, f, g, o): all four gates and the new state in one fused kernel,
forward and backward through one time step of BPTT. The GEMMs around it are ``gemm``'s.

Shapes: pre, gates, dpre (N, 4H), gate k of row n in columns [k*H, (k+1)*H); c_prev, c, h, dh_out,
dh_next, dc_next, dc_prev (N, H).
Forward, per step t (the caller's GEMMs, then ``lstm_cell_forward``):
    pre  = x_t @ w_ih^T + b_ih  +  h_prev @ w_hh^T + b_hh      the x part for all T steps at once, as one
                                                               (N*T, I) @ (I, 4H) GEMM before the loop; the
                                                               h part added per step (beta = 1, b_hh in its
                                                               epilogue)
    i, f, o = sigmoid(pre_i, pre_f, pre_o)   g = tanh(pre_g)   saved as ``gates`` (may be ``pre`` itself:
    c = f * c_prev + i * g                                     in place, each element reads its four
    h = o * tanh(c)                                            pre-activations before writing its gates)
Backward, per step (``lstm_cell_backward``, then one GEMM):
    dh      = dh_out + dh_next                  (this step's output gradient + what step t+1 sent back)
    dc      = dc_next + dh * o * (1 - tanh(c)^2)
    dpre    = [dc * g * i(1-i),  dc * c_prev * f(1-f),  dc * i * (1-g^2),  dh * tanh(c) * o(1-o)]
    dc_prev = dc * f
    dh_prev = dpre @ w_hh                                   (the GEMM, (N, 4H) @ (4H, H))
and after the loop, over all T steps at once: dx = dpre @ w_ih, dw_ih = dpre^T @ x, dw_hh = dpre^T @ h_prev,
db_ih = db_hh = column sums of dpre.

Napkin math: the GEMMs are 2*N*4H*(I + H) FLOPs a step forward, twice that backward: 4x the Elman RNN's.
The cell is N*H elements, ~30 FLOPs and 5 exp/tanh each on 44 bytes (read 4 pre-activations and c_prev,
write 4 gates, c and h): memory-bound, and at the bench's N = 64, H = 128 a step's 360 KB is a fraction of
a microsecond of H200 bandwidth, far below one launch (~10 us). What fusing buys is launches: the gates
done op by op (4 activations, 3 products, a sum, a tanh) would be ~10 launches a step, here 1. The input
projection up front turns T GEMMs of 64 rows into one of N*T rows, which fills a GPU that one step's
(64 x 512) output, 8 tiles of 64x64, cannot.
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

GATES = 4  # i, f, g, o

# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------


def _check_state(op, backend, name, x):
    """The (N, H) array that fixes the sizes of one call; returns them."""
    return check_array(op, name, x, backend, dtype=float_dtype(backend), ndim=2)


def _check_forward(backend, h, c, gates, pre, c_prev):
    op = "lstm_cell_forward"
    dt = float_dtype(backend)
    n, hidden = _check_state(op, backend, "c_prev", c_prev)
    check_array(op, "pre", pre, backend, shape=(n, GATES * hidden), dtype=dt)
    check_array(op, "gates", gates, backend, shape=(n, GATES * hidden), dtype=dt)
    check_array(op, "c", c, backend, shape=(n, hidden), dtype=dt)
    check_array(op, "h", h, backend, shape=(n, hidden), dtype=dt)
    check_dtype_family(op, backend, h=h, c=c, gates=gates, pre=pre, c_prev=c_prev)
    return n, hidden


def _check_backward(backend, dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev):
    op = "lstm_cell_backward"
    dt = float_dtype(backend)
    n, hidden = _check_state(op, backend, "c", c)
    for name, x in (("c_prev", c_prev), ("dh_out", dh_out), ("dh_next", dh_next), ("dc_next", dc_next),
                    ("dc_prev", dc_prev)):
        check_array(op, name, x, backend, shape=(n, hidden), dtype=dt)
    check_array(op, "gates", gates, backend, shape=(n, GATES * hidden), dtype=dt)
    check_array(op, "dpre", dpre, backend, shape=(n, GATES * hidden), dtype=dt)
    check_dtype_family(op, backend, dpre=dpre, dc_prev=dc_prev, dh_out=dh_out, dh_next=dh_next, dc_next=dc_next,
                       gates=gates, c=c, c_prev=c_prev)
    return n, hidden


# ------------------------------------------------------------------------------------------------
# Reference: NumPy, float64-capable
# ------------------------------------------------------------------------------------------------


@implements("lstm_cell_forward", "numpy")
def lstm_cell_forward_reference(h, c, gates, pre, c_prev):
    """gates = [sigmoid(pre_i), sigmoid(pre_f), tanh(pre_g), sigmoid(pre_o)]; c = f*c_prev + i*g;
    h = o*tanh(c). ``gates`` may be ``pre`` itself (activated in place)."""
    _, hh = _check_forward("numpy", h, c, gates, pre, c_prev)
    i, f, g, o = expit(pre[:, :hh]), expit(pre[:, hh:2 * hh]), np.tanh(pre[:, 2 * hh:3 * hh]), expit(pre[:, 3 * hh:])
    c_new = f * c_prev + i * g
    h_new = o * np.tanh(c_new)
    gates[:, :hh], gates[:, hh:2 * hh], gates[:, 2 * hh:3 * hh], gates[:, 3 * hh:] = i, f, g, o
    c[...] = c_new
    h[...] = h_new


@implements("lstm_cell_backward", "numpy")
def lstm_cell_backward_reference(dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev):
    """dpre (the gradient of the four gates' pre-activations) and dc_prev, from the gradients flowing into
    h (dh_out + dh_next) and into c (dc_next), the saved gates, c and c_prev."""
    _, hh = _check_backward("numpy", dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev)
    i, f, g, o = gates[:, :hh], gates[:, hh:2 * hh], gates[:, 2 * hh:3 * hh], gates[:, 3 * hh:]
    tc = np.tanh(c)
    dh = dh_out + dh_next
    dc = dc_next + dh * o * (1 - tc * tc)
    d_i, d_f, d_g, d_o = dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g), dh * tc * o * (1 - o)
    dc_prev[...] = dc * f
    dpre[:, :hh], dpre[:, hh:2 * hh], dpre[:, 2 * hh:3 * hh], dpre[:, 3 * hh:] = d_i, d_f, d_g, d_o


# ------------------------------------------------------------------------------------------------
# Element update: one body, CPU and GPU
# ------------------------------------------------------------------------------------------------
# Only the arithmetic without tanh: the CPU twin computes tanh with its vectorizable rational (cpu_tanh.py),
# the GPU with math.tanh (and without fastmath, which would make it tanh.approx.f32).


def _sigmoid(v):
    return float32(1.0) / (float32(1.0) + math.exp(-v))


def _lstm_backward_element(dh, dc_next, i, f, g, o, tc, c_prev):
    """(d pre_i, d pre_f, d pre_g, d pre_o, dc_prev) of one unit, given tc = tanh(c)."""
    one = float32(1.0)
    dc = dc_next + dh * o * (one - tc * tc)
    return (dc * g * i * (one - i), dc * c_prev * f * (one - f), dc * i * (one - g * g), dh * tc * o * (one - o),
            dc * f)


_sigmoid_cpu, _sigmoid_gpu = cpu_and_gpu(_sigmoid)
_backward_cpu_body, _backward_gpu_body = cpu_and_gpu(_lstm_backward_element)


# ------------------------------------------------------------------------------------------------
# CPU twin: prange over rows, each row's H units in a plain inner loop
# ------------------------------------------------------------------------------------------------


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _lstm_cell_forward_cpu(h, c, gates, pre, c_prev):
    n, hidden = c.shape
    for row in prange(n):
        for j in range(hidden):
            i = _sigmoid_cpu(pre[row, j])
            f = _sigmoid_cpu(pre[row, hidden + j])
            g = tanh_float32(pre[row, 2 * hidden + j])
            o = _sigmoid_cpu(pre[row, 3 * hidden + j])
            c_new = f * c_prev[row, j] + i * g
            gates[row, j] = i
            gates[row, hidden + j] = f
            gates[row, 2 * hidden + j] = g
            gates[row, 3 * hidden + j] = o
            c[row, j] = c_new
            h[row, j] = o * tanh_float32(c_new)


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _lstm_cell_backward_cpu(dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev):
    n, hidden = c.shape
    for row in prange(n):
        for j in range(hidden):
            d_i, d_f, d_g, d_o, d_c = _backward_cpu_body(
                dh_out[row, j] + dh_next[row, j], dc_next[row, j], gates[row, j], gates[row, hidden + j],
                gates[row, 2 * hidden + j], gates[row, 3 * hidden + j], tanh_float32(c[row, j]), c_prev[row, j])
            dpre[row, j] = d_i
            dpre[row, hidden + j] = d_f
            dpre[row, 2 * hidden + j] = d_g
            dpre[row, 3 * hidden + j] = d_o
            dc_prev[row, j] = d_c


@implements("lstm_cell_forward", "cpu")
def lstm_cell_forward_cpu(h, c, gates, pre, c_prev):
    _check_forward("cpu", h, c, gates, pre, c_prev)
    _lstm_cell_forward_cpu(h, c, gates, pre, c_prev)


@implements("lstm_cell_backward", "cpu")
def lstm_cell_backward_cpu(dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev):
    _check_backward("cpu", dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev)
    _lstm_cell_backward_cpu(dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev)


# ------------------------------------------------------------------------------------------------
# GPU kernels: one grid-stride loop over the N*H units, all four gates per thread
# ------------------------------------------------------------------------------------------------
# A thread owns unit e = (row, j) and reads its four gates at row*4H + j + {0, H, 2H, 3H}: consecutive
# threads read consecutive floats in each of the four column blocks (four coalesced streams). The arrays are
# flat, the indices unsigned: for a signed index Numba wraps a negative one around (a compare and an add per
# access, every array's size kept in registers). Measured for sm_90 (cuda_kernels.ptx): this backward took
# 88 registers with 2-D arrays, 64 flat, 36 flat with unsigned indices (occupancy on an H100/H200 with 256-
# thread blocks: 2, 4, then 6 blocks a SM). All index arithmetic stays uint64: a uint64 meeting an int64
# becomes a float64. No fastmath: it would turn math.tanh into tanh.approx.f32 (tests/test_ptx.py).

_FLAT = "float32[::1]"


@gpu_kernel(f"void({', '.join([_FLAT] * 5)}, uint64)")
def lstm_cell_forward_kernel(h, c, gates, pre, c_prev, hidden):
    h2 = hidden + hidden
    h3 = h2 + hidden
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for signed in range(start, c.size, stride):
        e = uint64(signed)
        at = e + (e // hidden) * h3  # row*4H + j
        i = _sigmoid_gpu(pre[at])
        f = _sigmoid_gpu(pre[at + hidden])
        g = math.tanh(pre[at + h2])
        o = _sigmoid_gpu(pre[at + h3])
        c_new = f * c_prev[e] + i * g
        gates[at] = i
        gates[at + hidden] = f
        gates[at + h2] = g
        gates[at + h3] = o
        c[e] = c_new
        h[e] = o * math.tanh(c_new)


@gpu_kernel(f"void({', '.join([_FLAT] * 8)}, uint64)")
def lstm_cell_backward_kernel(dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev, hidden):
    h2 = hidden + hidden
    h3 = h2 + hidden
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for signed in range(start, c.size, stride):
        e = uint64(signed)
        at = e + (e // hidden) * h3  # row*4H + j
        d_i, d_f, d_g, d_o, d_c = _backward_gpu_body(dh_out[e] + dh_next[e], dc_next[e], gates[at],
                                                     gates[at + hidden], gates[at + h2], gates[at + h3],
                                                     math.tanh(c[e]), c_prev[e])
        dpre[at] = d_i
        dpre[at + hidden] = d_f
        dpre[at + h2] = d_g
        dpre[at + h3] = d_o
        dc_prev[e] = d_c


# ------------------------------------------------------------------------------------------------
# Launchers
# ------------------------------------------------------------------------------------------------


def _flat(*arrays):
    """The kernels' 1-D views (every array was checked C-contiguous)."""
    return [a.reshape(a.size) for a in arrays]


@implements("lstm_cell_forward", "cuda")
def lstm_cell_forward_cuda(h, c, gates, pre, c_prev, block=None, stream=0):
    n, hidden = _check_forward("cuda", h, c, gates, pre, c_prev)
    launch_1d(lstm_cell_forward_kernel, n * hidden, block, stream)(*_flat(h, c, gates, pre, c_prev), np.uint64(hidden))


@implements("lstm_cell_backward", "cuda")
def lstm_cell_backward_cuda(dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev, block=None, stream=0):
    n, hidden = _check_backward("cuda", dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev)
    launch_1d(lstm_cell_backward_kernel, n * hidden, block, stream)(
        *_flat(dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev), np.uint64(hidden))
