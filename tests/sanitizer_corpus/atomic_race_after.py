"""Every thread increments a counter atomically, then the last thread reads it with a plain load: the
read races with the other threads' atomic writes (atomic with plain is a race)."""
# Ported from: jrprice/Oclgrind tests/kernels/atomics/atomic_race_after.cl
import numpy as np
from _corpus_expect import finding
from numba import cuda

THREADS = 32
BLOCKS = 2


@cuda.jit
def race_after(output, data):
    cuda.atomic.add(data, 0, 1)  # <- ATOMIC
    if cuda.grid(1) == cuda.gridsize(1) - 1:
        output[0] = data[0]  # <- READ


EXPECT = [finding("race", "ATOMIC", "READ", space="global", hazard="RAW")]


def launch():
    output = cuda.to_device(np.zeros(1, np.int32))
    race_after[BLOCKS, THREADS](output, cuda.to_device(np.zeros(1, np.int32)))
    return output.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
