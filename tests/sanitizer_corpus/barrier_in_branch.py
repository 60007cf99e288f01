"""A barrier in one branch of an if: thread 0 skips it while the others wait."""
# Ported from: jrprice/Oclgrind tests/kernels/barrier/barrier_divergence.cl
import numpy as np
from _corpus_expect import finding
from numba import cuda

THREADS = 32


@cuda.jit
def barrier_divergence(data):
    i = cuda.grid(1)
    if i != 0:
        cuda.syncthreads()  # <- SYNC
    data[i] = i


EXPECT = [finding("barrier_divergence", "SYNC")]


def launch():
    data = cuda.to_device(np.zeros(THREADS, np.int32))
    barrier_divergence[1, THREADS](data)
    return data.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
