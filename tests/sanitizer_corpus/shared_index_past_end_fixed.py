"""Fixed twin of shared_index_past_end: the last thread has no right neighbour and writes 0."""
# Ported from: jrprice/Oclgrind tests/kernels/memcheck/read_out_of_bounds.cl, in shared memory, guarded
import numpy as np
from numba import cuda, float32

THREADS = 32


@cuda.jit
def forward_difference(out, x):
    tile = cuda.shared.array(THREADS, float32)
    tx = cuda.threadIdx.x
    tile[tx] = x[tx]
    cuda.syncthreads()
    out[tx] = tile[tx + 1] - tile[tx] if tx + 1 < THREADS else float32(0.0)


EXPECT = []


def launch():
    out = cuda.to_device(np.zeros(THREADS, np.float32))
    forward_difference[1, THREADS](out, cuda.to_device(np.arange(THREADS, dtype=np.float32) ** 2))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
