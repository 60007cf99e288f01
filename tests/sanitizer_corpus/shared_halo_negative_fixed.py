"""Fixed twin of shared_halo_negative: thread 0 has no left neighbour and says so."""
# Ported from: jrprice/Oclgrind tests/kernels/memcheck/read_out_of_bounds.cl, in shared memory, guarded
import numpy as np
from numba import cuda, float32

THREADS = 32


@cuda.jit
def difference(out, x):
    tile = cuda.shared.array(THREADS, float32)
    tx = cuda.threadIdx.x
    tile[tx] = x[tx]
    cuda.syncthreads()
    out[tx] = tile[tx] - tile[tx - 1] if tx > 0 else tile[tx]


EXPECT = []


def launch():
    out = cuda.to_device(np.zeros(THREADS, np.float32))
    difference[1, THREADS](out, cuda.to_device(np.arange(THREADS, dtype=np.float32) ** 2))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
