"""Reference solution for the racy-kernel exercise (chapter 10): two barriers. The first makes every
thread's load visible before anyone reads a neighbour's slot; the one inside the loop ends each halving
step before the next reads what it wrote (and, the other way round, keeps a slot from being overwritten
while it is still being read)."""

import numpy as np
from numba import cuda, float32

THREADS = 64


@cuda.jit
def block_sum_kernel(out, x):
    partial = cuda.shared.array(THREADS, float32)
    tx = cuda.threadIdx.x
    i = cuda.blockIdx.x * THREADS + tx
    partial[tx] = x[i] if i < x.size else float32(0.0)
    cuda.syncthreads()
    stride = THREADS // 2
    while stride > 0:
        if tx < stride:
            partial[tx] += partial[tx + stride]
        cuda.syncthreads()
        stride //= 2
    if tx == 0:
        out[cuda.blockIdx.x] = partial[0]


if __name__ == "__main__":
    x = np.arange(100, dtype=np.float32)
    blocks = (x.size + THREADS - 1) // THREADS
    out = cuda.to_device(np.zeros(blocks, np.float32))
    block_sum_kernel[blocks, THREADS](out, cuda.to_device(x))
    print("block sums:", out.copy_to_host(), "expected:", [float(x[:64].sum()), float(x[64:].sum())])
