"""Reference solution for the im2col exercise (chapter 5)."""

import numpy as np
from numba import cuda, float32, njit, prange


@cuda.jit
def im2col_kernel(cols, x, k, stride, padding):
    n, c, h, w = x.shape
    ow = (w + 2 * padding - k) // stride + 1
    oh = (h + 2 * padding - k) // stride + 1
    width = cols.shape[1]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, cols.shape[0] * width, step):
        r, q = e // width, e % width
        img, o_h, o_w = r // (oh * ow), (r // ow) % oh, r % ow
        ch, ki, kj = q // (k * k), (q // k) % k, q % k
        ih, iw = o_h * stride - padding + ki, o_w * stride - padding + kj
        inside = 0 <= ih < h and 0 <= iw < w
        cols[r, q] = x[img, ch, ih, iw] if inside else float32(0.0)


@njit(parallel=True)
def im2col_cpu(cols, x, k, stride, padding):
    n, c, h, w = x.shape
    ow = (w + 2 * padding - k) // stride + 1
    oh = (h + 2 * padding - k) // stride + 1
    for r in prange(cols.shape[0]):
        img, o_h, o_w = r // (oh * ow), (r // ow) % oh, r % ow
        for ch in range(c):
            for ki in range(k):
                for kj in range(k):
                    ih, iw = o_h * stride - padding + ki, o_w * stride - padding + kj
                    inside = 0 <= ih < h and 0 <= iw < w
                    cols[r, (ch * k + ki) * k + kj] = x[img, ch, ih, iw] if inside else np.float32(0.0)
