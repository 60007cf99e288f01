"""Reference solution for the max-pooling backward exercise (chapter 5)."""

import numpy as np
from numba import cuda, float32, njit, prange


@cuda.jit
def maxpool_backward_kernel(dx, dy, argmax, k, stride):
    n, c, h, w = dx.shape
    oh, ow = dy.shape[2], dy.shape[3]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, dx.size, step):
        iw, ih = e % w, (e // w) % h
        ch, img = (e // (w * h)) % c, e // (w * h * c)
        acc = float32(0.0)
        for o_h in range(max(0, (ih - k + stride) // stride), min(oh, ih // stride + 1)):
            for o_w in range(max(0, (iw - k + stride) // stride), min(ow, iw // stride + 1)):
                if argmax[img, ch, o_h, o_w] == ih * w + iw:
                    acc += dy[img, ch, o_h, o_w]
        dx[img, ch, ih, iw] = acc


@njit(parallel=True)
def maxpool_backward_cpu(dx, dy, argmax, k, stride):
    n, c, h, w = dx.shape
    oh, ow = dy.shape[2], dy.shape[3]
    for plane in prange(n * c):
        img, ch = plane // c, plane % c
        for i in range(h):
            for j in range(w):
                dx[img, ch, i, j] = np.float32(0.0)
        for i in range(oh):
            for j in range(ow):
                at = argmax[img, ch, i, j]
                dx[img, ch, at // w, at % w] += dy[img, ch, i, j]
