"""Fixed twin of shared_carry_over: every block loads its own tile."""
# Ported from: jrprice/Oclgrind tests/kernels/uninitialized/uninitialized_local_array.cl, every block loading
import numpy as np
from numba import cuda, float32

THREADS = 32
BLOCKS = 2


@cuda.jit
def carry_over(out, x):
    tile = cuda.shared.array(THREADS, float32)
    tx = cuda.threadIdx.x
    tile[tx] = x[cuda.grid(1)]
    cuda.syncthreads()
    out[cuda.grid(1)] = tile[tx]


EXPECT = []


def launch():
    out = cuda.to_device(np.zeros(THREADS * BLOCKS, np.float32))
    carry_over[BLOCKS, THREADS](out, cuda.to_device(np.arange(THREADS * BLOCKS, dtype=np.float32)))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
