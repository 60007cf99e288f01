"""A block sum in a shared-memory tree with neither of its barriers (the kernel of the fix_racy exercise):
the first read of a neighbour's slot races with that neighbour's load, and each halving step with the last."""
# Ported from: GKLEE tests/dot_product/dot_product.cu (CUDA by Example's dot), both barriers removed
import numpy as np
from _corpus_expect import finding
from numba import cuda, float32

THREADS = 64


@cuda.jit
def block_sum(out, x):
    partial = cuda.shared.array(THREADS, float32)
    tx = cuda.threadIdx.x
    i = cuda.blockIdx.x * THREADS + tx
    partial[tx] = x[i] if i < x.size else float32(0.0)  # <- LOAD
    stride = THREADS // 2
    while stride > 0:
        if tx < stride:
            partial[tx] += partial[tx + stride]  # <- STEP
        stride //= 2
    if tx == 0:
        out[cuda.blockIdx.x] = partial[0]


EXPECT = [finding("race", "LOAD", "STEP", space="shared", hazard="RAW"),
          finding("race", "STEP", space="shared", hazard="RAW")]


def launch():
    x = np.arange(100, dtype=np.float32)
    out = cuda.to_device(np.zeros(2, np.float32))
    block_sum[2, THREADS](out, cuda.to_device(x))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
