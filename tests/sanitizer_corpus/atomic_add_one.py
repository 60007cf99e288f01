"""A global counter incremented with a plain read-modify-write by every thread of two blocks."""
# Ported from: mc-imperial/gpuverify testsuite/CUDA/atomics/add_one, atomicAdd replaced by += (2 blocks)
import numpy as np
from _corpus_expect import finding
from numba import cuda

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


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
