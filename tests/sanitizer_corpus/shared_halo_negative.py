"""A difference stencil on a shared tile without a halo: thread 0 reads tile[-1], which wraps to the
tile's last element in the simulator."""
# Ported from: jrprice/Oclgrind tests/kernels/memcheck/read_out_of_bounds.cl, in shared memory, index -1
import numpy as np
from _corpus_expect import finding
from numba import cuda, float32

THREADS = 32


@cuda.jit
def difference(out, x):
    tile = cuda.shared.array(THREADS, float32)
    tx = cuda.threadIdx.x
    tile[tx] = x[tx]
    cuda.syncthreads()
    out[tx] = tile[tx] - tile[tx - 1]  # <- OOB


EXPECT = [finding("out_of_bounds", "OOB", space="shared")]


def launch():
    out = cuda.to_device(np.zeros(THREADS, np.float32))
    difference[1, THREADS](out, cuda.to_device(np.arange(THREADS, dtype=np.float32) ** 2))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
