"""Only block 0 loads the shared tile; block 1 reads it anyway. The plain simulator keeps one shared array
per source line for the whole launch, so block 1 silently gets block 0's values; on a GPU each block has
its own shared memory, and block 1's is uninitialized."""
# Ported from: jrprice/Oclgrind tests/kernels/uninitialized/uninitialized_local_array.cl, across two blocks
import numpy as np
from _corpus_expect import finding
from numba import cuda, float32

THREADS = 32
BLOCKS = 2


@cuda.jit
def carry_over(out, x):
    tile = cuda.shared.array(THREADS, float32)
    tx = cuda.threadIdx.x
    if cuda.blockIdx.x == 0:
        tile[tx] = x[tx]
    cuda.syncthreads()
    out[cuda.grid(1)] = tile[tx]  # <- READ


EXPECT = [finding("uninitialized_read", "READ", space="shared")]


def launch():
    out = cuda.to_device(np.zeros(THREADS * BLOCKS, np.float32))
    carry_over[BLOCKS, THREADS](out, cuda.to_device(np.arange(THREADS * BLOCKS, dtype=np.float32)))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
