"""Fixed twin of atomic_add_one: each thread takes a ticket with an atomic add and writes its own slot
(atomic with atomic is no race)."""
# Ported from: mc-imperial/gpuverify testsuite/CUDA/atomics/add_one (//pass)
import numpy as np
from numba import cuda

THREADS = 32


@cuda.jit
def race_test(counter, slots):
    j = cuda.atomic.add(counter, 0, 1)
    slots[j] = cuda.threadIdx.x


EXPECT = []


def launch():
    counter = cuda.to_device(np.zeros(1, np.int32))
    slots = cuda.to_device(np.zeros(THREADS, np.int32))
    race_test[1, THREADS](counter, slots)
    return slots.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
