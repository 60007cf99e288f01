"""Exercise (chapter 2): a warp-shuffle sum. Each warp of the grid adds 32 consecutive floats with
``cuda.shfl_down_sync``: no shared memory, no ``syncthreads``.

The grader launches it as warp_sum_kernel[blocks, threads](out, x) with threads a multiple of 32 and
exactly one output per warp of the grid (out.size == blocks * threads // 32 >= x.size / 32), on sizes
that straddle a warp (1, 31, 32, 33, ...). Grade it with:
    python cli.py --device sim check --only warp_sum
"""

from numba import cuda, float32  # noqa: F401

FULL_MASK = 0xFFFFFFFF


@cuda.jit
def warp_sum_kernel(out, x):
    """out (warps,), x (n,): float32. Warp w (the threads w*32 .. w*32+31 of the grid) writes
    out[w] = x[32*w] + ... + x[32*w + 31], elements past the end of x counting as 0. Every lane must reach
    every shuffle named by its mask: a lane past the end adds a float32(0.0), it does not return early."""
    raise NotImplementedError("write the kernel: see docs/tutorials/02-first-kernel.md, 'Summing a warp'")
