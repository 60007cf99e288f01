"""Fixed twin of dot_product_reduction: a barrier after every halving step."""
# Ported from: GKLEE tests/dot_product/dot_product.cu (CUDA by Example's dot)
import numpy as np
from numba import cuda, float32

THREADS = 64
BLOCKS = 2


@cuda.jit
def dot(partial, a, b):
    cache = cuda.shared.array(THREADS, float32)
    tid = cuda.threadIdx.x + cuda.blockIdx.x * cuda.blockDim.x
    ci = cuda.threadIdx.x
    temp = float32(0.0)
    while tid < a.size:
        temp += a[tid] * b[tid]
        tid += cuda.blockDim.x * cuda.gridDim.x
    cache[ci] = temp
    cuda.syncthreads()
    i = cuda.blockDim.x // 2
    while i != 0:
        if ci < i:
            cache[ci] += cache[ci + i]
        cuda.syncthreads()
        i //= 2
    if ci == 0:
        partial[cuda.blockIdx.x] = cache[0]


EXPECT = []


def launch():
    x = np.arange(200, dtype=np.float32) / 100
    partial = cuda.to_device(np.zeros(BLOCKS, np.float32))
    dot[BLOCKS, THREADS](partial, cuda.to_device(x), cuda.to_device(x))
    return partial.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
