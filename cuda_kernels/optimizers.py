"""Optimizer updates: one elementwise pass over one flat float32 buffer of every parameter.

Formulas exactly as PyTorch documents torch.optim (maximize=False, no amsgrad, RMSprop not centered):
  SGD      g = grad + wd*p;  buf = g (first step) or momentum*buf + (1-dampening)*g;
           g = g + momentum*buf (nesterov) or buf;  p -= lr*g
  Adagrad  clr = lr / (1 + (step-1)*lr_decay);  g = grad + wd*p;  sum += g*g;  p -= clr*g/(sqrt(sum)+eps)
  RMSprop  g = grad + wd*p;  sq = alpha*sq + (1-alpha)*g*g;  avg = sqrt(sq)+eps;
           buf = momentum*buf + g/avg, p -= lr*buf  (momentum > 0)   or   p -= lr*g/avg
  Adam     g = grad + wd*p (Adam) | p *= 1 - lr*wd (AdamW, decoupled);  m = b1*m + (1-b1)*g;
           v = b2*v + (1-b2)*g*g;  p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
Scalars that depend only on the step (bias corrections, Adagrad's decayed rate) are computed once on
the host in float64 and passed in as float32, so the kernels do float32 arithmetic only.

Step scalars in device memory. Everything that changes from one step to the next (the learning rate after
its schedule, Adam's step_size = lr/(1-b1^t), 1/sqrt(1-b2^t) and AdamW's 1 - lr*wd, Adagrad's decayed rate,
SGD's first-step flag) reaches the kernels through a small float32 array ``scalars`` (STEP_SCALARS values,
laid out by ``step_scalars``), never as a kernel argument: a CUDA graph freezes kernel arguments at capture,
and a replayed step must still see this step's values. The host computes them (a schedule is any Python
function of the step) and copies them into the array on the device's stream before the step's launches
(the optimizer's ``begin_step``; outside the graph when it is replayed). Every backend takes the same array:
the CPU twins and the references read it too. Called with ``lr=`` (and ``step=``) instead, a launcher
computes the scalars itself (on a GPU: one small copy into a buffer of its own before the launch).

Shapes: params, grads and every state buffer (P,) float32, contiguous; P = all of a model's
parameters, so a whole model updates in one launch (as llm.c does).

Subnormals: every kernel stores decaying state (momentum, Adam's m and v, RMSprop's averages) flushed to
zero once it falls below the smallest normal float32 (1.2e-38): explicitly, so the CPU twins, the GPU
kernels (whose fastmath flushes arithmetic anyway) and the simulator store the same state. A weight whose
gradient stays 0 (a dead ReLU's) has its m multiplied by beta1 each step and reaches the subnormal range
after ~800 steps. Intel's cores compute subnormal results through a microcode assist (Intel's optimization
manual: on the order of 100 cycles each); this project's AMD Zen 4 takes none (docs/benchmarks.md, "Adam in
the step"), so here the flush is a guard, not a speed-up. It changes the update by less than 1e-30.

Napkin math: Adam reads p, g, m, v and writes p, m, v: 28 bytes and ~12 FLOPs per parameter. 10M
parameters = 280 MB per step, so the ceiling is the copy bandwidth (~25 GB/s here: ~11 ms; an H100's
~3 TB/s: ~0.1 ms). SGD with momentum moves 20 bytes per parameter.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32, njit, prange, uint64

from .backend import implements
from .checks import check_array, float_dtype
from .launch import check_not_capturing, cpu_and_gpu, current_stream, gpu_kernel, launch_1d
from .threads import serial_below_grain

# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------


def _check_buffers(op, backend, params, **buffers):
    dt = float_dtype(backend)
    (size,) = check_array(op, "params", params, backend, dtype=dt, ndim=1)
    for name, buf in buffers.items():
        if buf is not None:
            check_array(op, name, buf, backend, shape=(size,), dtype=dt)
    return size


def _check_step(op, step):
    if int(step) != step or step < 1:
        raise ValueError(f"{op}: argument 'step' counts from 1, got {step!r}")


# ------------------------------------------------------------------------------------------------
# Reference: NumPy, literal transcriptions of the formulas above
# ------------------------------------------------------------------------------------------------


def adagrad_rate(lr, lr_decay, step):
    return lr / (1 + (step - 1) * lr_decay)


def adam_scalars(lr, beta1, beta2, step):
    """(step_size, 1/sqrt(bias_correction2)) as PyTorch computes them (host-side, once per step)."""
    return lr / (1 - beta1 ** step), 1 / math.sqrt(1 - beta2 ** step)


STEP_SCALARS = 4  # the length of every optimizer's step-scalars array (the longest layout, Adam's, uses 3)
OPTIMIZER_KINDS = ("sgd", "adagrad", "rmsprop", "adam")


def step_scalars(kind, lr, step=1, beta1=0.9, beta2=0.999, weight_decay=0.0, lr_decay=0.0, **_other_hyper):
    """The values the ``kind`` optimizer's kernel reads from its ``scalars`` array at step ``step`` (from 1),
    as float64 on the host (STEP_SCALARS of them, unused ones 0):
    sgd [lr, first step 1/0]; adagrad [lr/(1+(step-1)*lr_decay)]; rmsprop [lr];
    adam [lr/(1-b1^t), 1/sqrt(1-b2^t), 1-lr*wd (AdamW's decay factor)].
    Other hyper-parameters (momentum, eps, ...) are accepted and ignored: they never change between steps."""
    _check_step(f"step_scalars({kind!r})", step)
    out = np.zeros(STEP_SCALARS)
    if kind == "sgd":
        out[:2] = lr, 1.0 if step == 1 else 0.0
    elif kind == "adagrad":
        out[0] = adagrad_rate(lr, lr_decay, step)
    elif kind == "rmsprop":
        out[0] = lr
    elif kind == "adam":
        out[:3] = (*adam_scalars(lr, beta1, beta2, step), 1 - lr * weight_decay)
    else:
        raise ValueError(f"step_scalars: unknown optimizer {kind!r}; expected one of {OPTIMIZER_KINDS}")
    return out


for _backend in ("numpy", "cpu", "cuda"):  # host arithmetic, the same on every backend
    implements("step_scalars", _backend)(step_scalars)


def _check_scalars(op, backend, lr, scalars):
    """Exactly one of ``lr`` (the step's values computed here) and ``scalars`` (read from the array)."""
    if (lr is None) == (scalars is None):
        raise ValueError(f"{op}: pass either lr= (values for this call) or scalars= (the step-scalars array the "
                         f"kernel reads), not {'both' if lr is not None else 'neither'}")
    if scalars is not None:
        check_array(op, "scalars", scalars, backend, shape=(STEP_SCALARS,), dtype=float_dtype(backend))


def _host_scalars(op, backend, lr, scalars, kind, **hyper):
    """The scalars array a CPU twin or a reference reads: the one given, or this call's values."""
    _check_scalars(op, backend, lr, scalars)
    if scalars is not None:
        return scalars
    return step_scalars(kind, lr, **hyper).astype(float_dtype(backend))


_CALL_SCALARS: dict = {}  # cuda: one step-scalars buffer per op for calls with lr= (written before each launch)


def _device_scalars(op, lr, scalars, kind, stream, **hyper):
    """The scalars array a GPU kernel reads: the one given, or a buffer of the launcher's own that this call's
    values are copied into first, on the stream (a pageable source: the driver stages it before returning, so
    back-to-back calls cannot overwrite each other's values). Not inside a graph capture: the copy would freeze
    the values, which is what the scalars array exists to avoid."""
    _check_scalars(op, "cuda", lr, scalars)
    if scalars is not None:
        return scalars
    check_not_capturing(f"{op} with lr= (values frozen into the graph; pass scalars=)")
    buf = _CALL_SCALARS.get(op)
    if buf is None:
        buf = _CALL_SCALARS[op] = cuda.device_array(STEP_SCALARS, np.float32)
    buf.copy_to_device(step_scalars(kind, lr, **hyper).astype(np.float32),
                       stream=stream if stream else current_stream())
    return buf


@implements("sgd_step", "numpy")
def sgd_step_reference(params, momentum_buf, grads, lr=None, momentum=0.0, dampening=0.0, weight_decay=0.0,
                       nesterov=False, first_step=True, scalars=None):
    _check_buffers("sgd_step", "numpy", params, grads=grads, momentum_buf=momentum_buf)
    s = _host_scalars("sgd_step", "numpy", lr, scalars, "sgd", step=1 if first_step else 2)
    lr, first_step = s[0], s[1] != 0
    g = grads + weight_decay * params
    if momentum != 0:
        momentum_buf[...] = g if first_step else momentum * momentum_buf + (1 - dampening) * g
        g = g + momentum * momentum_buf if nesterov else momentum_buf
    params -= lr * g


@implements("adagrad_step", "numpy")
def adagrad_step_reference(params, sum_sq, grads, lr=None, eps=1e-10, weight_decay=0.0, lr_decay=0.0, step=1,
                           scalars=None):
    _check_buffers("adagrad_step", "numpy", params, grads=grads, sum_sq=sum_sq)
    _check_step("adagrad_step", step)
    clr = _host_scalars("adagrad_step", "numpy", lr, scalars, "adagrad", step=step, lr_decay=lr_decay)[0]
    g = grads + weight_decay * params
    sum_sq += g * g
    params -= clr * g / (np.sqrt(sum_sq) + eps)


@implements("rmsprop_step", "numpy")
def rmsprop_step_reference(params, square_avg, momentum_buf, grads, lr=None, alpha=0.99, eps=1e-8, weight_decay=0.0,
                           momentum=0.0, scalars=None):
    _check_buffers("rmsprop_step", "numpy", params, grads=grads, square_avg=square_avg, momentum_buf=momentum_buf)
    lr = _host_scalars("rmsprop_step", "numpy", lr, scalars, "rmsprop")[0]
    g = grads + weight_decay * params
    square_avg[...] = alpha * square_avg + (1 - alpha) * g * g
    avg = np.sqrt(square_avg) + eps
    if momentum > 0:
        momentum_buf[...] = momentum * momentum_buf + g / avg
        params -= lr * momentum_buf
    else:
        params -= lr * g / avg


@implements("adam_step", "numpy")
def adam_step_reference(params, exp_avg, exp_avg_sq, grads, lr=None, beta1=0.9, beta2=0.999, eps=1e-8,
                        weight_decay=0.0, step=1, decoupled_weight_decay=False, scalars=None):
    _check_buffers("adam_step", "numpy", params, grads=grads, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)
    _check_step("adam_step", step)
    step_size, inv_sqrt_bc2, decay_factor = _host_scalars(
        "adam_step", "numpy", lr, scalars, "adam", step=step, beta1=beta1, beta2=beta2, weight_decay=weight_decay)[:3]
    g = grads
    if decoupled_weight_decay:
        params *= decay_factor  # 1 - lr * weight_decay
    elif weight_decay:
        g = g + weight_decay * params
    exp_avg[...] = beta1 * exp_avg + (1 - beta1) * g
    exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * g * g
    params -= step_size * exp_avg / (np.sqrt(exp_avg_sq) * inv_sqrt_bc2 + eps)


# ------------------------------------------------------------------------------------------------
# Element update: one body, compiled for the CPU twin and for the GPU kernel
# ------------------------------------------------------------------------------------------------
# One parameter's update for the CPU twin's prange loop and the GPU kernel, given the buffers and the index
# as in llm.c's adamw.cuh: inlined, it compiles as a hand-written loop body would (scalars in and a tuple out
# ran slower in Adam's CPU twin and took RMSprop's kernel more registers). The flush is inline: a body cannot
# call another body (each target needs its own compiled copy).

FLT_MIN = np.float32(np.finfo(np.float32).tiny)  # the smallest normal float32


def _sgd_update(p, buf, grad, i, lr, momentum, dampening, wd, nesterov, first_step):
    g = grad[i] + wd * p[i]
    if momentum != float32(0.0):  # buf is read only now: without momentum it may be p itself
        b = g if first_step else momentum * buf[i] + (float32(1.0) - dampening) * g
        b = b if abs(b) >= FLT_MIN else float32(0.0)
        buf[i] = b
        g = g + momentum * b if nesterov else b
    p[i] -= lr * g


def _adagrad_update(p, sum_sq, grad, i, clr, eps, wd):
    g = grad[i] + wd * p[i]
    s = sum_sq[i] + g * g
    sum_sq[i] = s
    p[i] -= clr * g / (math.sqrt(s) + eps)


def _rmsprop_update(p, square_avg, buf, grad, i, lr, alpha, eps, wd, momentum):
    g = grad[i] + wd * p[i]
    sq = alpha * square_avg[i] + (float32(1.0) - alpha) * g * g
    sq = sq if abs(sq) >= FLT_MIN else float32(0.0)
    square_avg[i] = sq
    update = g / (math.sqrt(sq) + eps)
    if momentum > float32(0.0):  # buf is read only now: without momentum it may be p itself
        update = momentum * buf[i] + update
        update = update if abs(update) >= FLT_MIN else float32(0.0)
        buf[i] = update
    p[i] -= lr * update


def _adam_update(p, m, v, grad, i, beta1, beta2, eps, wd, decay_factor, step_size, inv_sqrt_bc2, decoupled):
    w = p[i]
    g = grad[i]
    if decoupled:
        w *= decay_factor
    else:
        g += wd * w
    m_i = beta1 * m[i] + (float32(1.0) - beta1) * g
    m_i = m_i if abs(m_i) >= FLT_MIN else float32(0.0)
    v_i = beta2 * v[i] + (float32(1.0) - beta2) * g * g
    v_i = v_i if abs(v_i) >= FLT_MIN else float32(0.0)
    m[i] = m_i
    v[i] = v_i
    p[i] = w - step_size * m_i / (math.sqrt(v_i) * inv_sqrt_bc2 + eps)


# fastmath for the device functions, as their kernels (a device function does not take its kernel's flags).
_sgd_cpu_body, _sgd_gpu_body = cpu_and_gpu(_sgd_update, fastmath=True)
_adagrad_cpu_body, _adagrad_gpu_body = cpu_and_gpu(_adagrad_update, fastmath=True)
_rmsprop_cpu_body, _rmsprop_gpu_body = cpu_and_gpu(_rmsprop_update, fastmath=True)
_adam_cpu_body, _adam_gpu_body = cpu_and_gpu(_adam_update, fastmath=True)


# ------------------------------------------------------------------------------------------------
# CPU twin: prange over the flat buffer, the element update inlined
# ------------------------------------------------------------------------------------------------
# An unsigned index and NumPy's error model make each loop SIMD code (docs/benchmarks.md measures it): a
# signed index pays Numba's negative-index wraparound on every access, and the default error model a
# divide-by-zero test on every division; LLVM vectorizes neither.


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _sgd_cpu(p, buf, grad, scalars, momentum, dampening, wd, nesterov):
    lr, first_step = scalars[0], scalars[1] != float32(0.0)
    for i in prange(uint64(p.size)):
        _sgd_cpu_body(p, buf, grad, i, lr, momentum, dampening, wd, nesterov, first_step)


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _adagrad_cpu(p, sum_sq, grad, scalars, eps, wd):
    clr = scalars[0]
    for i in prange(uint64(p.size)):
        _adagrad_cpu_body(p, sum_sq, grad, i, clr, eps, wd)


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _rmsprop_cpu(p, square_avg, buf, grad, scalars, alpha, eps, wd, momentum):
    lr = scalars[0]
    for i in prange(uint64(p.size)):
        _rmsprop_cpu_body(p, square_avg, buf, grad, i, lr, alpha, eps, wd, momentum)


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _adam_cpu(p, m, v, grad, scalars, beta1, beta2, eps, wd, decoupled):
    step_size, inv_sqrt_bc2, decay_factor = scalars[0], scalars[1], scalars[2]
    for i in prange(uint64(p.size)):
        _adam_cpu_body(p, m, v, grad, i, beta1, beta2, eps, wd, decay_factor, step_size, inv_sqrt_bc2, decoupled)


f32 = np.float32


@implements("sgd_step", "cpu")
def sgd_step_cpu(params, momentum_buf, grads, lr=None, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, first_step=True, scalars=None):
    _check_buffers("sgd_step", "cpu", params, grads=grads, momentum_buf=momentum_buf)
    scalars = _host_scalars("sgd_step", "cpu", lr, scalars, "sgd", step=1 if first_step else 2)
    _sgd_cpu(params, params if momentum_buf is None else momentum_buf, grads, scalars, f32(momentum),
             f32(dampening), f32(weight_decay), bool(nesterov))


@implements("adagrad_step", "cpu")
def adagrad_step_cpu(params, sum_sq, grads, lr=None, eps=1e-10, weight_decay=0.0, lr_decay=0.0, step=1,
                     scalars=None):
    _check_buffers("adagrad_step", "cpu", params, grads=grads, sum_sq=sum_sq)
    _check_step("adagrad_step", step)
    scalars = _host_scalars("adagrad_step", "cpu", lr, scalars, "adagrad", step=step, lr_decay=lr_decay)
    _adagrad_cpu(params, sum_sq, grads, scalars, f32(eps), f32(weight_decay))


@implements("rmsprop_step", "cpu")
def rmsprop_step_cpu(params, square_avg, momentum_buf, grads, lr=None, alpha=0.99, eps=1e-8, weight_decay=0.0,
                     momentum=0.0, scalars=None):
    _check_buffers("rmsprop_step", "cpu", params, grads=grads, square_avg=square_avg, momentum_buf=momentum_buf)
    scalars = _host_scalars("rmsprop_step", "cpu", lr, scalars, "rmsprop")
    _rmsprop_cpu(params, square_avg, params if momentum_buf is None else momentum_buf, grads, scalars, f32(alpha),
                 f32(eps), f32(weight_decay), f32(momentum))


@implements("adam_step", "cpu")
def adam_step_cpu(params, exp_avg, exp_avg_sq, grads, lr=None, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                  step=1, decoupled_weight_decay=False, scalars=None):
    _check_buffers("adam_step", "cpu", params, grads=grads, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)
    _check_step("adam_step", step)
    scalars = _host_scalars("adam_step", "cpu", lr, scalars, "adam", step=step, beta1=beta1, beta2=beta2,
                            weight_decay=weight_decay)
    _adam_cpu(params, exp_avg, exp_avg_sq, grads, scalars, f32(beta1), f32(beta2), f32(eps), f32(weight_decay),
              bool(decoupled_weight_decay))


# ------------------------------------------------------------------------------------------------
# GPU kernels: grid-stride loops around the element updates, the step's scalars read from device memory
# ------------------------------------------------------------------------------------------------

SGD_SIG = "void(float32[::1], float32[::1], float32[::1], float32[::1], float32, float32, float32, int32)"
ADAGRAD_SIG = "void(float32[::1], float32[::1], float32[::1], float32[::1], float32, float32)"
RMSPROP_SIG = ("void(float32[::1], float32[::1], float32[::1], float32[::1], float32[::1], float32, float32, "
               "float32, float32)")
ADAM_SIG = ("void(float32[::1], float32[::1], float32[::1], float32[::1], float32[::1], float32, float32, float32, "
            "float32, int32)")


@gpu_kernel(SGD_SIG, fastmath=True)
def sgd_kernel(p, buf, grad, scalars, momentum, dampening, wd, nesterov):
    lr, first_step = scalars[0], scalars[1] != float32(0.0)
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, p.size, stride):
        _sgd_gpu_body(p, buf, grad, i, lr, momentum, dampening, wd, nesterov, first_step)


@gpu_kernel(ADAGRAD_SIG, fastmath=True)
def adagrad_kernel(p, sum_sq, grad, scalars, eps, wd):
    clr = scalars[0]
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, p.size, stride):
        _adagrad_gpu_body(p, sum_sq, grad, i, clr, eps, wd)


@gpu_kernel(RMSPROP_SIG, fastmath=True)
def rmsprop_kernel(p, square_avg, buf, grad, scalars, alpha, eps, wd, momentum):
    lr = scalars[0]
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, p.size, stride):
        _rmsprop_gpu_body(p, square_avg, buf, grad, i, lr, alpha, eps, wd, momentum)


@gpu_kernel(ADAM_SIG, fastmath=True)
def adam_kernel(p, m, v, grad, scalars, beta1, beta2, eps, wd, decoupled):
    step_size, inv_sqrt_bc2, decay_factor = scalars[0], scalars[1], scalars[2]
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, p.size, stride):
        _adam_gpu_body(p, m, v, grad, i, beta1, beta2, eps, wd, decay_factor, step_size, inv_sqrt_bc2, decoupled)


# ------------------------------------------------------------------------------------------------
# Launchers: the step's scalars from the caller's array (scalars=) or computed here from lr= and step=
# ------------------------------------------------------------------------------------------------


@implements("sgd_step", "cuda")
def sgd_step_cuda(params, momentum_buf, grads, lr=None, momentum=0.0, dampening=0.0, weight_decay=0.0,
                  nesterov=False, first_step=True, scalars=None, block=None, stream=0):
    size = _check_buffers("sgd_step", "cuda", params, grads=grads, momentum_buf=momentum_buf)
    scalars = _device_scalars("sgd_step", lr, scalars, "sgd", stream, step=1 if first_step else 2)
    launch_1d(sgd_kernel, size, block, stream)(
        params, params if momentum_buf is None else momentum_buf, grads, scalars, f32(momentum), f32(dampening),
        f32(weight_decay), np.int32(nesterov))


@implements("adagrad_step", "cuda")
def adagrad_step_cuda(params, sum_sq, grads, lr=None, eps=1e-10, weight_decay=0.0, lr_decay=0.0, step=1,
                      scalars=None, block=None, stream=0):
    size = _check_buffers("adagrad_step", "cuda", params, grads=grads, sum_sq=sum_sq)
    _check_step("adagrad_step", step)
    scalars = _device_scalars("adagrad_step", lr, scalars, "adagrad", stream, step=step, lr_decay=lr_decay)
    launch_1d(adagrad_kernel, size, block, stream)(params, sum_sq, grads, scalars, f32(eps), f32(weight_decay))


@implements("rmsprop_step", "cuda")
def rmsprop_step_cuda(params, square_avg, momentum_buf, grads, lr=None, alpha=0.99, eps=1e-8, weight_decay=0.0,
                      momentum=0.0, scalars=None, block=None, stream=0):
    size = _check_buffers("rmsprop_step", "cuda", params, grads=grads, square_avg=square_avg,
                          momentum_buf=momentum_buf)
    scalars = _device_scalars("rmsprop_step", lr, scalars, "rmsprop", stream)
    launch_1d(rmsprop_kernel, size, block, stream)(
        params, square_avg, params if momentum_buf is None else momentum_buf, grads, scalars, f32(alpha), f32(eps),
        f32(weight_decay), f32(momentum))


@implements("adam_step", "cuda")
def adam_step_cuda(params, exp_avg, exp_avg_sq, grads, lr=None, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                   step=1, decoupled_weight_decay=False, scalars=None, block=None, stream=0):
    size = _check_buffers("adam_step", "cuda", params, grads=grads, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)
    _check_step("adam_step", step)
    scalars = _device_scalars("adam_step", lr, scalars, "adam", stream, step=step, beta1=beta1, beta2=beta2,
                              weight_decay=weight_decay)
    launch_1d(adam_kernel, size, block, stream)(
        params, exp_avg, exp_avg_sq, grads, scalars, f32(beta1), f32(beta2), f32(eps), f32(weight_decay),
        np.int32(decoupled_weight_decay))
