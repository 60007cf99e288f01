"""Reference solution for the average-pooling exercise (chapter 5)."""

import numpy as np
from numba import njit, prange


@njit(parallel=True)
def avgpool2_forward(y, x):
    n, c, oh, ow = y.shape
    for plane in prange(n * c):
        img, ch = plane // c, plane % c
        for i in range(oh):
            for j in range(ow):
                top = x[img, ch, 2 * i, 2 * j] + x[img, ch, 2 * i, 2 * j + 1]
                bottom = x[img, ch, 2 * i + 1, 2 * j] + x[img, ch, 2 * i + 1, 2 * j + 1]
                y[img, ch, i, j] = np.float32(0.25) * (top + bottom)


@njit(parallel=True)
def avgpool2_backward(dx, dy):
    n, c, h, w = dx.shape
    oh, ow = dy.shape[2], dy.shape[3]
    for plane in prange(n * c):
        img, ch = plane // c, plane % c
        for i in range(h):
            for j in range(w):
                inside = i // 2 < oh and j // 2 < ow
                dx[img, ch, i, j] = np.float32(0.25) * dy[img, ch, i // 2, j // 2] if inside else np.float32(0.0)
