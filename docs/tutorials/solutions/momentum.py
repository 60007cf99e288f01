"""Reference solution for the momentum exercise (chapter 7)."""

from numba import njit, prange


@njit(parallel=True)
def momentum_step(params, buf, grads, lr, momentum, first_step):
    for i in prange(params.size):
        b = grads[i] if first_step else momentum * buf[i] + grads[i]
        buf[i] = b
        params[i] -= lr * b
