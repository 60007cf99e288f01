"""Reference solution for the LeakyReLU exercise (chapter 2)."""

import numpy as np
from numba import cuda, float32, njit, prange


@cuda.jit
def leaky_relu_kernel(out, x, slope):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, stride):
        v = x[i]
        out[i] = v if v > float32(0.0) else slope * v


@njit(parallel=True)
def leaky_relu_cpu(out, x, slope):
    for i in prange(x.size):
        v = x[i]
        out[i] = v if v > np.float32(0.0) else slope * v
