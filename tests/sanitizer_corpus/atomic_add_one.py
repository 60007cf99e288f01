"""A global counter incremented with a plain read-modify-write by every thread of two blocks."""
# Ported from: mc-imperial/gpuverify testsuite/CUDA/atomics/add_one, atomicAdd replaced by += (2 blocks)
import numpy as np
from numba import cuda

from sanitizer_corpus import finding

THREADS = 32
BLOCKS = 2


@cuda.jit
def count(counter):
    counter[0] += 1  # <- RACE


EXPECT = [finding("race", "RACE", space="global")]


def launch():
    counter = cuda.to_device(np.zeros(1, np.int32))
    count[BLOCKS, THREADS](counter)
    return counter.copy_to_host()
