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
from numba import cuda, float32, njit, prange

from .backend import implements
from .checks import check_array, float_dtype
from .launch import cpu_and_gpu, gpu_kernel, launch_1d

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


@implements("sgd_step", "numpy")
def sgd_step_reference(params, momentum_buf, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                       nesterov=False, first_step=True):
    _check_buffers("sgd_step", "numpy", params, grads=grads, momentum_buf=momentum_buf)
    g = grads + weight_decay * params
    if momentum != 0:
        momentum_buf[...] = g if first_step else momentum * momentum_buf + (1 - dampening) * g
        g = g + momentum * momentum_buf if nesterov else momentum_buf
    params -= lr * g


@implements("adagrad_step", "numpy")
def adagrad_step_reference(params, sum_sq, grads, lr, eps=1e-10, weight_decay=0.0, lr_decay=0.0, step=1):
    _check_buffers("adagrad_step", "numpy", params, grads=grads, sum_sq=sum_sq)
    _check_step("adagrad_step", step)
    g = grads + weight_decay * params
    sum_sq += g * g
    params -= adagrad_rate(lr, lr_decay, step) * g / (np.sqrt(sum_sq) + eps)


@implements("rmsprop_step", "numpy")
def rmsprop_step_reference(params, square_avg, momentum_buf, grads, lr, alpha=0.99, eps=1e-8, weight_decay=0.0,
                           momentum=0.0):
    _check_buffers("rmsprop_step", "numpy", params, grads=grads, square_avg=square_avg, momentum_buf=momentum_buf)
    g = grads + weight_decay * params
    square_avg[...] = alpha * square_avg + (1 - alpha) * g * g
    avg = np.sqrt(square_avg) + eps
    if momentum > 0:
        momentum_buf[...] = momentum * momentum_buf + g / avg
        params -= lr * momentum_buf
    else:
        params -= lr * g / avg


@implements("adam_step", "numpy")
def adam_step_reference(params, exp_avg, exp_avg_sq, grads, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                        weight_decay=0.0, step=1, decoupled_weight_decay=False):
    _check_buffers("adam_step", "numpy", params, grads=grads, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)
    _check_step("adam_step", step)
    g = grads
    if decoupled_weight_decay:
        params *= 1 - lr * weight_decay
    elif weight_decay:
        g = g + weight_decay * params
    exp_avg[...] = beta1 * exp_avg + (1 - beta1) * g
    exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * g * g
    step_size, inv_sqrt_bc2 = adam_scalars(lr, beta1, beta2, step)
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


@njit(parallel=True, cache=True, fastmath=True)
def _sgd_cpu(p, buf, grad, lr, momentum, dampening, wd, nesterov, first_step):
    for i in prange(p.size):
        _sgd_cpu_body(p, buf, grad, i, lr, momentum, dampening, wd, nesterov, first_step)


@njit(parallel=True, cache=True, fastmath=True)
def _adagrad_cpu(p, sum_sq, grad, clr, eps, wd):
    for i in prange(p.size):
        _adagrad_cpu_body(p, sum_sq, grad, i, clr, eps, wd)


@njit(parallel=True, cache=True, fastmath=True)
def _rmsprop_cpu(p, square_avg, buf, grad, lr, alpha, eps, wd, momentum):
    for i in prange(p.size):
        _rmsprop_cpu_body(p, square_avg, buf, grad, i, lr, alpha, eps, wd, momentum)


@njit(parallel=True, cache=True, fastmath=True)
def _adam_cpu(p, m, v, grad, beta1, beta2, eps, wd, decay_factor, step_size, inv_sqrt_bc2, decoupled):
    for i in prange(p.size):
        _adam_cpu_body(p, m, v, grad, i, beta1, beta2, eps, wd, decay_factor, step_size, inv_sqrt_bc2, decoupled)


f32 = np.float32


@implements("sgd_step", "cpu")
def sgd_step_cpu(params, momentum_buf, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 first_step=True):
    _check_buffers("sgd_step", "cpu", params, grads=grads, momentum_buf=momentum_buf)
    _sgd_cpu(params, params if momentum_buf is None else momentum_buf, grads, f32(lr), f32(momentum), f32(dampening),
             f32(weight_decay), bool(nesterov), bool(first_step))


@implements("adagrad_step", "cpu")
def adagrad_step_cpu(params, sum_sq, grads, lr, eps=1e-10, weight_decay=0.0, lr_decay=0.0, step=1):
    _check_buffers("adagrad_step", "cpu", params, grads=grads, sum_sq=sum_sq)
    _check_step("adagrad_step", step)
    _adagrad_cpu(params, sum_sq, grads, f32(adagrad_rate(lr, lr_decay, step)), f32(eps), f32(weight_decay))


@implements("rmsprop_step", "cpu")
def rmsprop_step_cpu(params, square_avg, momentum_buf, grads, lr, alpha=0.99, eps=1e-8, weight_decay=0.0,
                     momentum=0.0):
    _check_buffers("rmsprop_step", "cpu", params, grads=grads, square_avg=square_avg, momentum_buf=momentum_buf)
    _rmsprop_cpu(params, square_avg, params if momentum_buf is None else momentum_buf, grads, f32(lr), f32(alpha),
                 f32(eps), f32(weight_decay), f32(momentum))


@implements("adam_step", "cpu")
def adam_step_cpu(params, exp_avg, exp_avg_sq, grads, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                  step=1, decoupled_weight_decay=False):
    _check_buffers("adam_step", "cpu", params, grads=grads, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)
    _check_step("adam_step", step)
    step_size, inv_sqrt_bc2 = adam_scalars(lr, beta1, beta2, step)
    _adam_cpu(params, exp_avg, exp_avg_sq, grads, f32(beta1), f32(beta2), f32(eps), f32(weight_decay),
              f32(1 - lr * weight_decay), f32(step_size), f32(inv_sqrt_bc2), bool(decoupled_weight_decay))


# ------------------------------------------------------------------------------------------------
# GPU kernels: grid-stride loops around the element updates
# ------------------------------------------------------------------------------------------------

SGD_SIG = "void(float32[::1], float32[::1], float32[::1], float32, float32, float32, float32, int32, int32)"
ADAGRAD_SIG = "void(float32[::1], float32[::1], float32[::1], float32, float32, float32)"
RMSPROP_SIG = ("void(float32[::1], float32[::1], float32[::1], float32[::1], float32, float32, float32, float32, "
               "float32)")
ADAM_SIG = ("void(float32[::1], float32[::1], float32[::1], float32[::1], float32, float32, float32, float32, "
            "float32, float32, float32, int32)")


@gpu_kernel(SGD_SIG, fastmath=True)
def sgd_kernel(p, buf, grad, lr, momentum, dampening, wd, nesterov, first_step):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, p.size, stride):
        _sgd_gpu_body(p, buf, grad, i, lr, momentum, dampening, wd, nesterov, first_step)


@gpu_kernel(ADAGRAD_SIG, fastmath=True)
def adagrad_kernel(p, sum_sq, grad, clr, eps, wd):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, p.size, stride):
        _adagrad_gpu_body(p, sum_sq, grad, i, clr, eps, wd)


@gpu_kernel(RMSPROP_SIG, fastmath=True)
def rmsprop_kernel(p, square_avg, buf, grad, lr, alpha, eps, wd, momentum):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, p.size, stride):
        _rmsprop_gpu_body(p, square_avg, buf, grad, i, lr, alpha, eps, wd, momentum)


@gpu_kernel(ADAM_SIG, fastmath=True)
def adam_kernel(p, m, v, grad, beta1, beta2, eps, wd, decay_factor, step_size, inv_sqrt_bc2, decoupled):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, p.size, stride):
        _adam_gpu_body(p, m, v, grad, i, beta1, beta2, eps, wd, decay_factor, step_size, inv_sqrt_bc2, decoupled)


# ------------------------------------------------------------------------------------------------
# Launchers: the step's scalars (bias corrections, Adagrad's decayed rate) computed once on the host
# ------------------------------------------------------------------------------------------------


@implements("sgd_step", "cuda")
def sgd_step_cuda(params, momentum_buf, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                  first_step=True, block=None, stream=0):
    size = _check_buffers("sgd_step", "cuda", params, grads=grads, momentum_buf=momentum_buf)
    launch_1d(sgd_kernel, size, block, stream)(
        params, params if momentum_buf is None else momentum_buf, grads, f32(lr), f32(momentum), f32(dampening),
        f32(weight_decay), np.int32(nesterov), np.int32(first_step))


@implements("adagrad_step", "cuda")
def adagrad_step_cuda(params, sum_sq, grads, lr, eps=1e-10, weight_decay=0.0, lr_decay=0.0, step=1, block=None,
                      stream=0):
    size = _check_buffers("adagrad_step", "cuda", params, grads=grads, sum_sq=sum_sq)
    _check_step("adagrad_step", step)
    launch_1d(adagrad_kernel, size, block, stream)(params, sum_sq, grads, f32(adagrad_rate(lr, lr_decay, step)),
                                                   f32(eps), f32(weight_decay))


@implements("rmsprop_step", "cuda")
def rmsprop_step_cuda(params, square_avg, momentum_buf, grads, lr, alpha=0.99, eps=1e-8, weight_decay=0.0,
                      momentum=0.0, block=None, stream=0):
    size = _check_buffers("rmsprop_step", "cuda", params, grads=grads, square_avg=square_avg,
                          momentum_buf=momentum_buf)
    launch_1d(rmsprop_kernel, size, block, stream)(
        params, square_avg, params if momentum_buf is None else momentum_buf, grads, f32(lr), f32(alpha), f32(eps),
        f32(weight_decay), f32(momentum))


@implements("adam_step", "cuda")
def adam_step_cuda(params, exp_avg, exp_avg_sq, grads, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                   step=1, decoupled_weight_decay=False, block=None, stream=0):
    size = _check_buffers("adam_step", "cuda", params, grads=grads, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)
    _check_step("adam_step", step)
    step_size, inv_sqrt_bc2 = adam_scalars(lr, beta1, beta2, step)
    launch_1d(adam_kernel, size, block, stream)(
        params, exp_avg, exp_avg_sq, grads, f32(beta1), f32(beta2), f32(eps), f32(weight_decay),
        f32(1 - lr * weight_decay), f32(step_size), f32(inv_sqrt_bc2), np.int32(decoupled_weight_decay))
