"""Fixed twin of barrier_in_branch: every thread reaches the barrier."""
# Ported from: jrprice/Oclgrind tests/kernels/barrier/barrier_divergence.cl (the barrier unconditional)
import numpy as np
from numba import cuda

THREADS = 32


@cuda.jit
def barrier_divergence(data):
    i = cuda.grid(1)
    cuda.syncthreads()
    data[i] = i


EXPECT = []


def launch():
    data = cuda.to_device(np.zeros(THREADS, np.int32))
    barrier_divergence[1, THREADS](data)
    return data.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
