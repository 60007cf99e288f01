"""Reference solution for the Adam exercise (chapter 7)."""

import math

import numpy as np
from numba import njit, prange


@njit(parallel=True)
def adam_step(params, m, v, grads, lr, beta1, beta2, eps, step):
    one = np.float32(1.0)
    step_size = np.float32(lr / (1.0 - beta1 ** step))
    inv_sqrt_bc2 = np.float32(1.0 / math.sqrt(1.0 - beta2 ** step))
    for i in prange(params.size):
        g = grads[i]
        m_i = beta1 * m[i] + (one - beta1) * g
        v_i = beta2 * v[i] + (one - beta2) * g * g
        m[i], v[i] = m_i, v_i
        params[i] -= step_size * m_i / (math.sqrt(v_i) * inv_sqrt_bc2 + eps)
