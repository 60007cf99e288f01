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
The per-step loops themselves are ops too, ``lstm_sequence_forward`` and ``lstm_sequence_backward``: on a GPU
(and in the reference) one GEMM and one cell a step, as above; on the CPU, while a step is small, the whole
recurrence in one compiled call (no Python between steps: at the digits LSTM's size that was a third of the time).

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

import numba
import numpy as np
from numba import cuda, float32, njit, prange, uint64
from scipy.special import expit

from .backend import get_backend, implements
from .blas_calls import (
    ACT_NONE,
    SPLIT_MIN_FLOPS,
    _scalars,
    apply_epilogue,
    gemm_blas_split,
    k_piece_for,
    sgemm_k_pieces,
)
from .checks import check_array, check_dtype_family, check_in, float_dtype
from .cpu_tanh import sigmoid_float32, tanh_float32
from .launch import cpu_and_gpu, gpu_kernel, launch_1d
from .threads import serial_below_grain

GATES = 4  # i, f, g, o
SEQUENCE_CPU_VERSIONS = ("fused", "steps")  # the CPU's two versions of the whole recurrence (see below)

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


def _check_sequence_gates(op, backend, gates):
    """The (T, N, 4H) gates array that fixes the sizes of a sequence op; returns T, N, 4H and H."""
    steps, n, width = check_array(op, "gates", gates, backend, dtype=float_dtype(backend), ndim=3)
    hidden = width // GATES
    if width != GATES * hidden or hidden == 0:
        raise ValueError(f"{op}: argument 'gates' expects a last axis of 4 * hidden_size, "
                         f"got shape {tuple(gates.shape)}")
    return steps, n, width, hidden


def _check_sequence_forward(backend, hs, cs, gates, weight_hh, bias_hh):
    op = "lstm_sequence_forward"
    dt = float_dtype(backend)
    steps, n, width, hidden = _check_sequence_gates(op, backend, gates)
    check_array(op, "hs", hs, backend, shape=(steps + 1, n, hidden), dtype=dt)
    check_array(op, "cs", cs, backend, shape=(steps + 1, n, hidden), dtype=dt)
    check_array(op, "weight_hh", weight_hh, backend, shape=(width, hidden), dtype=dt)
    check_array(op, "bias_hh", bias_hh, backend, shape=(width,), dtype=dt)
    check_dtype_family(op, backend, hs=hs, cs=cs, gates=gates, weight_hh=weight_hh, bias_hh=bias_hh)
    return steps, n, hidden


def _check_sequence_backward(backend, dpre, dh, dc, dys, gates, cs, weight_hh):
    op = "lstm_sequence_backward"
    dt = float_dtype(backend)
    steps, n, width, hidden = _check_sequence_gates(op, backend, gates)
    check_array(op, "dpre", dpre, backend, shape=(steps, n, width), dtype=dt)
    check_array(op, "dys", dys, backend, shape=(steps, n, hidden), dtype=dt)
    check_array(op, "cs", cs, backend, shape=(steps + 1, n, hidden), dtype=dt)
    check_array(op, "dh", dh, backend, shape=(n, hidden), dtype=dt)
    check_array(op, "dc", dc, backend, shape=(n, hidden), dtype=dt)
    check_array(op, "weight_hh", weight_hh, backend, shape=(width, hidden), dtype=dt)
    check_dtype_family(op, backend, dpre=dpre, dh=dh, dc=dc, dys=dys, gates=gates, cs=cs, weight_hh=weight_hh)
    return steps, n, hidden


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


# The whole recurrence, step by step through a backend's gemm and cell ops: the reference, and on a GPU the
# launcher (one GEMM and one cell launch a step).
#   forward:  gates[t] += h_{t-1} @ W_hh^T + b_hh; cell -> hs[t+1], cs[t+1], gates[t] activated
#   backward: dh, dc zeroed; per step from the last: cell -> dpre[t], dc (in place); dh = dpre[t] @ W_hh

_NUMPY, _CUDA = get_backend("numpy"), get_backend("cuda")


def _sequence_forward_by_steps(k, hs, cs, gates, weight_hh, bias_hh):
    for step in range(gates.shape[0]):
        k.gemm(gates[step], hs[step], weight_hh, beta=1.0, trans_b=True, bias=bias_hh)
        k.lstm_cell_forward(hs[step + 1], cs[step + 1], gates[step], gates[step], cs[step])


def _sequence_backward_by_steps(k, dpre, dh, dc, dys, gates, cs, weight_hh, initial_h_grad):
    k.fill(dh, 0.0)
    k.fill(dc, 0.0)
    for step in reversed(range(gates.shape[0])):
        k.lstm_cell_backward(dpre[step], dc, dys[step], dh, dc, gates[step], cs[step + 1], cs[step])
        if step or initial_h_grad:
            k.gemm(dh, dpre[step], weight_hh)


@implements("lstm_sequence_forward", "numpy")
def lstm_sequence_forward_reference(hs, cs, gates, weight_hh, bias_hh):
    """Every step of the LSTM: on entry hs[0], cs[0] hold the initial states and gates[t] the input
    projection x_t W_ih^T + b_ih of step t; on return hs[t+1], cs[t+1] hold h_t, c_t and gates[t] the
    activated gates (i, f, g, o), as lstm_cell_forward leaves them, for backward."""
    _check_sequence_forward("numpy", hs, cs, gates, weight_hh, bias_hh)
    _sequence_forward_by_steps(_NUMPY, hs, cs, gates, weight_hh, bias_hh)


@implements("lstm_sequence_backward", "numpy")
def lstm_sequence_backward_reference(dpre, dh, dc, dys, gates, cs, weight_hh, initial_h_grad=True):
    """BPTT through every step: dpre[t] (the gradient of step t's pre-activations) from dys (the gradient of
    every h_t from outside), the saved gates and cs. On return dc is the gradient of c0 and, with
    ``initial_h_grad``, dh that of h0 (without it, the last GEMM is skipped and dh is scratch)."""
    _check_sequence_backward("numpy", dpre, dh, dc, dys, gates, cs, weight_hh)
    _sequence_backward_by_steps(_NUMPY, dpre, dh, dc, dys, gates, cs, weight_hh, initial_h_grad)


# ------------------------------------------------------------------------------------------------
# Element update: one body, CPU and GPU
# ------------------------------------------------------------------------------------------------
# Only the arithmetic without tanh: the CPU twin computes tanh and sigmoid with its vectorizable rationals
# (cpu_tanh.py), the GPU with math.tanh (and without fastmath, which would make it tanh.approx.f32).


def _sigmoid(v):
    return float32(1.0) / (float32(1.0) + math.exp(-v))


def _lstm_backward_element(dh, dc_next, i, f, g, o, tc, c_prev):
    """(d pre_i, d pre_f, d pre_g, d pre_o, dc_prev) of one unit, given tc = tanh(c)."""
    one = float32(1.0)
    dc = dc_next + dh * o * (one - tc * tc)
    return (dc * g * i * (one - i), dc * c_prev * f * (one - f), dc * i * (one - g * g), dh * tc * o * (one - o),
            dc * f)


_sigmoid_gpu = cpu_and_gpu(_sigmoid)[1]  # the CPU rows use cpu_tanh.sigmoid_float32 (SIMD code)
_backward_cpu_body, _backward_gpu_body = cpu_and_gpu(_lstm_backward_element)


# ------------------------------------------------------------------------------------------------
# CPU twin: per row, loops of a few streams each (SIMD code); prange over rows; the whole recurrence fused
# ------------------------------------------------------------------------------------------------
# One loop over a row's H units touching all 9 arrays stays scalar: LLVM cannot rule out that the arrays
# overlap (``gates`` may be ``pre``) and gives up on the run-time checks for so many pointers. Split into
# loops of one to three streams, each becomes SIMD code (tanh and sigmoid are cpu_tanh.py's vectorizable
# rationals; exp would be a scalar libm call). Arrays are flat and indices unsigned (a signed index pays
# Numba's negative-index wraparound on every access, which LLVM does not vectorize either). Fast math without
# its no-infinities flag: a saturated gate's exp(100) is inf, and 1 / (1 + inf) must still be 0.
FINITE_OR_NOT = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(cache=True, fastmath=FINITE_OR_NOT, error_model="numpy")
def _lstm_forward_row(h, c, gates, pre, c_prev, row, hidden):
    """One row of lstm_cell_forward on flat arrays: the gates block by block, then c, then h. The gates are
    activated in place, after a copy from ``pre`` when it is another array: a loop from ``pre`` into ``gates``
    when they are the same array fails LLVM's run-time overlap test and runs scalar (docs/benchmarks.md)."""
    hid = uint64(hidden)
    at, unit = uint64(row) * uint64(GATES) * hid, uint64(row) * hid
    if pre.ctypes.data != gates.ctypes.data:
        for j in range(at, at + 4 * hid):
            gates[j] = pre[j]
    for j in range(at, at + hid + hid):  # i, f
        gates[j] = sigmoid_float32(gates[j])
    for j in range(at + 2 * hid, at + 3 * hid):  # g
        gates[j] = tanh_float32(gates[j])
    for j in range(at + 3 * hid, at + 4 * hid):  # o
        gates[j] = sigmoid_float32(gates[j])
    for j in range(uint64(0), hid):
        c[unit + j] = gates[at + hid + j] * c_prev[unit + j] + gates[at + j] * gates[at + 2 * hid + j]
    for j in range(uint64(0), hid):
        h[unit + j] = gates[at + 3 * hid + j] * tanh_float32(c[unit + j])


@njit(cache=True, fastmath=FINITE_OR_NOT, error_model="numpy")
def _lstm_backward_row(dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev, row, hidden):
    """One row of lstm_cell_backward on flat arrays, in two passes: dpre_o and dc (parked in dpre_i's
    slots), then dpre_i, dpre_f, dpre_g and dc_prev from dc. dc_prev may be dc_next (each unit reads its
    own dc_next before writing its dc_prev)."""
    hid, one = uint64(hidden), float32(1.0)
    at, unit = uint64(row) * uint64(GATES) * hid, uint64(row) * hid
    for j in range(uint64(0), hid):
        dh = dh_out[unit + j] + dh_next[unit + j]
        tc = tanh_float32(c[unit + j])
        o = gates[at + 3 * hid + j]
        dpre[at + 3 * hid + j] = dh * tc * o * (one - o)
        dpre[at + j] = dc_next[unit + j] + dh * o * (one - tc * tc)
    for j in range(uint64(0), hid):
        dc = dpre[at + j]
        i, f, g = gates[at + j], gates[at + hid + j], gates[at + 2 * hid + j]
        dpre[at + j] = dc * g * i * (one - i)
        dpre[at + hid + j] = dc * c_prev[unit + j] * f * (one - f)
        dpre[at + 2 * hid + j] = dc * i * (one - g * g)
        dc_prev[unit + j] = dc * f


@serial_below_grain
@njit(parallel=True, cache=True)
def _lstm_cell_forward_cpu(h, c, gates, pre, c_prev):
    n, hidden = c.shape
    flat = (h.reshape(-1), c.reshape(-1), gates.reshape(-1), pre.reshape(-1), c_prev.reshape(-1))
    for row in prange(n):
        _lstm_forward_row(*flat, row, hidden)


@serial_below_grain
@njit(parallel=True, cache=True)
def _lstm_cell_backward_cpu(dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev):
    n, hidden = c.shape
    flat = (dpre.reshape(-1), dc_prev.reshape(-1), dh_out.reshape(-1), dh_next.reshape(-1), dc_next.reshape(-1),
            gates.reshape(-1), c.reshape(-1), c_prev.reshape(-1))
    for row in prange(n):
        _lstm_backward_row(*flat, row, hidden)


# The whole recurrence in one compiled call, on the calling thread: per step one single-threaded SGEMM and the
# cell, with no trip back to Python (at the digits LSTM's size the Python calls, checks and dispatch between
# steps took as long as a third of the steps' work: docs/benchmarks.md). Used while a step's GEMM is below
# blas_calls.SPLIT_MIN_FLOPS (it would run on one thread anyway) or with one thread.


@njit(cache=True)
def _lstm_sequence_forward_fused(hs, cs, gates, weight_hh, bias_hh, k_piece):
    steps, n, width = gates.shape
    hidden = hs.shape[2]
    hs_flat, gates_flat, w_flat = hs.reshape(-1), gates.reshape(-1), weight_hh.reshape(-1)
    scalars = _scalars(1.0, 1.0)  # gates[t] += h_{t-1} @ W_hh^T
    for step in range(steps):
        sgemm_k_pieces(gates_flat, step * n * width, width, hs_flat, step * n * hidden, hidden, w_flat, 0, hidden,
                       n, width, hidden, False, True, scalars, k_piece)
        apply_epilogue(gates[step], 0, n, 0, width, bias_hh, True, ACT_NONE)
        h, c, c_prev = hs[step + 1].reshape(-1), cs[step + 1].reshape(-1), cs[step].reshape(-1)
        g = gates[step].reshape(-1)
        for row in range(n):
            _lstm_forward_row(h, c, g, g, c_prev, row, hidden)


@njit(cache=True)
def _lstm_sequence_backward_fused(dpre, dh, dc, dys, gates, cs, weight_hh, initial_h_grad, k_piece):
    steps, n, width = gates.shape
    hidden = dh.shape[1]
    dh[:] = 0.0
    dc[:] = 0.0
    dh_flat, dc_flat, dpre_flat, w_flat = dh.reshape(-1), dc.reshape(-1), dpre.reshape(-1), weight_hh.reshape(-1)
    scalars = _scalars(1.0, 0.0)  # dh_{t-1} = dpre_t @ W_hh
    for step in range(steps - 1, -1, -1):
        dy, g = dys[step].reshape(-1), gates[step].reshape(-1)
        c, c_prev, d = cs[step + 1].reshape(-1), cs[step].reshape(-1), dpre[step].reshape(-1)
        for row in range(n):
            _lstm_backward_row(d, dc_flat, dy, dh_flat, dc_flat, g, c, c_prev, row, hidden)
        if step > 0 or initial_h_grad:
            sgemm_k_pieces(dh_flat, 0, hidden, dpre_flat, step * n * width, width, w_flat, 0, hidden, n, hidden,
                           width, False, False, scalars, k_piece)


def _fused_pays(n, hidden, version):
    """Which CPU version of the recurrence runs: the one asked for, else fused while a step's GEMM would
    stay on one thread anyway."""
    if version is not None:
        check_in("lstm_sequence", "version", version, SEQUENCE_CPU_VERSIONS)
        return version == "fused"
    return 2.0 * n * GATES * hidden * hidden < SPLIT_MIN_FLOPS or numba.get_num_threads() == 1


@implements("lstm_cell_forward", "cpu")
def lstm_cell_forward_cpu(h, c, gates, pre, c_prev):
    _check_forward("cpu", h, c, gates, pre, c_prev)
    _lstm_cell_forward_cpu(h, c, gates, pre, c_prev)


@implements("lstm_cell_backward", "cpu")
def lstm_cell_backward_cpu(dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev):
    _check_backward("cpu", dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev)
    _lstm_cell_backward_cpu(dpre, dc_prev, dh_out, dh_next, dc_next, gates, c, c_prev)


@implements("lstm_sequence_forward", "cpu")
def lstm_sequence_forward_cpu(hs, cs, gates, weight_hh, bias_hh, version=None):
    """``version``: "fused" (the recurrence in one compiled call, one thread) or "steps" (a GEMM split over
    the threads and a prange cell per step); by default fused while a step's GEMM is small."""
    _, n, hidden = _check_sequence_forward("cpu", hs, cs, gates, weight_hh, bias_hh)
    if _fused_pays(n, hidden, version):
        _lstm_sequence_forward_fused(hs, cs, gates, weight_hh, bias_hh, k_piece_for(hidden))
        return
    for step in range(gates.shape[0]):
        gemm_blas_split(gates[step], hs[step], weight_hh, 1.0, 1.0, False, True, bias_hh, ACT_NONE)
        _lstm_cell_forward_cpu(hs[step + 1], cs[step + 1], gates[step], gates[step], cs[step])


@implements("lstm_sequence_backward", "cpu")
def lstm_sequence_backward_cpu(dpre, dh, dc, dys, gates, cs, weight_hh, initial_h_grad=True, version=None):
    _, n, hidden = _check_sequence_backward("cpu", dpre, dh, dc, dys, gates, cs, weight_hh)
    if _fused_pays(n, hidden, version):
        _lstm_sequence_backward_fused(dpre, dh, dc, dys, gates, cs, weight_hh, bool(initial_h_grad),
                                      k_piece_for(GATES * hidden))
        return
    dh[:] = 0.0
    dc[:] = 0.0
    for step in reversed(range(gates.shape[0])):
        _lstm_cell_backward_cpu(dpre[step], dc, dys[step], dh, dc, gates[step], cs[step + 1], cs[step])
        if step or initial_h_grad:
            gemm_blas_split(dh, dpre[step], weight_hh, 1.0, 0.0, False, False, None, ACT_NONE)


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


@implements("lstm_sequence_forward", "cuda")
def lstm_sequence_forward_cuda(hs, cs, gates, weight_hh, bias_hh):
    _check_sequence_forward("cuda", hs, cs, gates, weight_hh, bias_hh)
    _sequence_forward_by_steps(_CUDA, hs, cs, gates, weight_hh, bias_hh)


@implements("lstm_sequence_backward", "cuda")
def lstm_sequence_backward_cuda(dpre, dh, dc, dys, gates, cs, weight_hh, initial_h_grad=True):
    _check_sequence_backward("cuda", dpre, dh, dc, dys, gates, cs, weight_hh)
    _sequence_backward_by_steps(_CUDA, dpre, dh, dc, dys, gates, cs, weight_hh, initial_h_grad)
