"""Two measurement kernels for the roofline: a streaming copy (the bandwidth ceiling) and an
FMA-bound loop (the FP32 compute ceiling). Not ops of the engine; the bench times them.

Copy: 8 bytes moved per element (read + write), no FLOPs.
FMA:  each thread runs FMA_ITERATIONS FMAs on each of FMA_CHAINS independent accumulators
      (independent chains hide the FMA latency), 2 FLOPs per FMA, no memory traffic but one store.
      The loop body repeats the 8 FMAs FMA_UNROLL times (32 FMAs per trip): with one round per trip,
      Numba's 64-bit loop counter (setp/selp/add.s64 in the PTX) came after every 8 FMAs and took issue
      slots from them, which held the probe far below the FP32 peak.
"""

from __future__ import annotations

from numba import cuda, float32

from .launch import gpu_kernel

FMA_CHAINS, FMA_ITERATIONS, FMA_UNROLL = 8, 4096, 4


@gpu_kernel("void(float32[::1], float32[::1])")
def copy_ceiling_kernel(out, x):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, stride):
        out[i] = x[i]


@gpu_kernel("void(float32[::1], float32, float32)", fastmath=True)
def fma_ceiling_kernel(out, a, b):
    i = cuda.grid(1)
    x0 = float32(i) * float32(1e-9)
    x1 = x0 + float32(1.0)
    x2 = x0 + float32(2.0)
    x3 = x0 + float32(3.0)
    x4 = x0 + float32(4.0)
    x5 = x0 + float32(5.0)
    x6 = x0 + float32(6.0)
    x7 = x0 + float32(7.0)
    for _ in range(FMA_ITERATIONS // FMA_UNROLL):
        for _ in range(FMA_UNROLL):  # a constant trip count: unrolled, no counter inside
            x0 = x0 * a + b
            x1 = x1 * a + b
            x2 = x2 * a + b
            x3 = x3 * a + b
            x4 = x4 * a + b
            x5 = x5 * a + b
            x6 = x6 * a + b
            x7 = x7 * a + b
    if i < out.size:  # one store keeps the compiler from removing the loop
        out[i] = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7


def fma_flops(threads: int) -> int:
    return 2 * FMA_CHAINS * FMA_ITERATIONS * threads
