"""Reference solution for the warp-shuffle sum exercise (chapter 2)."""

from numba import cuda, float32

FULL_MASK = 0xFFFFFFFF


@cuda.jit
def warp_sum_kernel(out, x):
    i = cuda.grid(1)
    value = x[i] if i < x.size else float32(0.0)  # a lane past the end still takes part in every shuffle
    offset = 16
    while offset > 0:  # 16, 8, 4, 2, 1: lane l adds lane l + offset's partial sum
        value += cuda.shfl_down_sync(FULL_MASK, value, offset)
        offset //= 2
    if cuda.laneid == 0:
        out[i // 32] = value
