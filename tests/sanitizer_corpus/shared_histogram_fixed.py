"""Fixed twin of shared_histogram: the bins counted with shared-memory atomics (atomic with atomic is no race)."""
# Ported from: mc-imperial/gpuverify testsuite/CUDA/atomics/add_one (//pass), in shared memory
import numpy as np
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
    cuda.atomic.add(bins, values[tx] % BINS, 1)
    cuda.syncthreads()
    if tx < BINS:
        counts[tx] = bins[tx]


EXPECT = []


def launch():
    counts = cuda.to_device(np.zeros(BINS, np.int32))
    histogram[1, THREADS](counts, cuda.to_device(np.arange(THREADS, dtype=np.int32)))
    return counts.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
