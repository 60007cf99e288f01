"""Fixed twin of atomic_race_after: the thread that takes the last ticket reports it from the atomic's
own return value, never reading the counter with a plain load."""
# Ported from: jrprice/Oclgrind tests/kernels/atomics/atomic_race_after.cl (the old value used)
import numpy as np
from numba import cuda

THREADS = 32
BLOCKS = 2


@cuda.jit
def race_after(output, data):
    old = cuda.atomic.add(data, 0, 1)
    if old == cuda.gridsize(1) - 1:
        output[0] = old + 1


EXPECT = []


def launch():
    output = cuda.to_device(np.zeros(1, np.int32))
    race_after[BLOCKS, THREADS](output, cuda.to_device(np.zeros(1, np.int32)))
    return output.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
