"""Fixed twin of block_sum_no_barriers: a barrier after the load and one after every halving step."""
# Ported from: GKLEE tests/dot_product/dot_product.cu (CUDA by Example's dot)
import numpy as np
from numba import cuda, float32

THREADS = 64


@cuda.jit
def block_sum(out, x):
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


EXPECT = []


def launch():
    x = np.arange(100, dtype=np.float32)
    out = cuda.to_device(np.zeros(2, np.float32))
    block_sum[2, THREADS](out, cuda.to_device(x))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
