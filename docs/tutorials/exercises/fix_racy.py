"""Exercise (chapter 10): fix a racy kernel.

block_sum_kernel sums x block by block: block b adds up x[b*THREADS : (b+1)*THREADS] (a tail past the
end of x counts as 0) in a shared-memory tree and writes the sum to out[b]. It gives the right answer in
the plain simulator, most of the time. On a GPU it does not: it has data races. Find them with the
sanitizer, then fix the kernel (keep its name, arguments and THREADS):
    python cli.py sanitize docs/tutorials/exercises/fix_racy.py
    python cli.py --device sim check --only fix_racy
The grader runs your kernel under the sanitizer (a race, a divergent barrier or an out-of-bounds index
fails it, with the sanitizer's first finding) and checks the sums on sizes that straddle a block.
"""

import numpy as np
from numba import cuda, float32

THREADS = 64


@cuda.jit
def block_sum_kernel(out, x):
    """out[b] = the sum of x[b*THREADS : (b+1)*THREADS], float32; launched with THREADS threads a block."""
    partial = cuda.shared.array(THREADS, float32)
    tx = cuda.threadIdx.x
    i = cuda.blockIdx.x * THREADS + tx
    partial[tx] = x[i] if i < x.size else float32(0.0)
    stride = THREADS // 2
    while stride > 0:
        if tx < stride:
            partial[tx] += partial[tx + stride]
        stride //= 2
    if tx == 0:
        out[cuda.blockIdx.x] = partial[0]


if __name__ == "__main__":  # what `cli.py sanitize` runs: one small launch
    x = np.arange(100, dtype=np.float32)
    blocks = (x.size + THREADS - 1) // THREADS
    out = cuda.to_device(np.zeros(blocks, np.float32))
    block_sum_kernel[blocks, THREADS](out, cuda.to_device(x))
    print("block sums:", out.copy_to_host(), "expected:", [float(x[:64].sum()), float(x[64:].sum())])
