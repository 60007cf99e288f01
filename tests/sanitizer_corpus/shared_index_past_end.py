"""The other side of the stencil: the last thread reads tile[tx + 1], one past the end of the shared tile.
The plain simulator raises IndexError here (a positive index past the end is what NumPy checks)."""
# Ported from: jrprice/Oclgrind tests/kernels/memcheck/read_out_of_bounds.cl, in shared memory, index n
import numpy as np
from _corpus_expect import finding
from numba import cuda, float32

THREADS = 32

PLAIN = "IndexError"


@cuda.jit
def forward_difference(out, x):
    tile = cuda.shared.array(THREADS, float32)
    tx = cuda.threadIdx.x
    tile[tx] = x[tx]
    cuda.syncthreads()
    out[tx] = tile[tx + 1] - tile[tx]  # <- OOB


EXPECT = [finding("out_of_bounds", "OOB", space="shared")]


def launch():
    out = cuda.to_device(np.zeros(THREADS, np.float32))
    forward_difference[1, THREADS](out, cuda.to_device(np.arange(THREADS, dtype=np.float32) ** 2))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
