"""A shared-memory histogram counted with a plain += : threads with the same bin lose each other's counts."""
# Ported from: mc-imperial/gpuverify testsuite/CUDA/atomics/add_one, in shared memory (a histogram's bins)
import numpy as np
from _corpus_expect import finding
from numba import cuda, int32

THREADS = 64
BINS = 4


@cuda.jit
def histogram(counts, values):
    bins = cuda.shared.array(BINS, int32)
    tx = cuda.threadIdx.x
    if tx < BINS:
        bins[tx] = 0
    cuda.syncthreads()
    bins[values[tx] % BINS] += 1  # <- RACE
    cuda.syncthreads()
    if tx < BINS:
        counts[tx] = bins[tx]


EXPECT = [finding("race", "RACE", space="shared")]


def launch():
    counts = cuda.to_device(np.zeros(BINS, np.int32))
    histogram[1, THREADS](counts, cuda.to_device(np.arange(THREADS, dtype=np.int32)))
    return counts.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
