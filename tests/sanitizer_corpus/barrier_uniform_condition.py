"""A barrier under a condition on a kernel argument: every thread of the block takes the same branch,
so there is no divergence."""
# Ported from: mc-imperial/gpuverify testsuite/CUDA/barrierconditionalkernelparam (//pass)
import numpy as np
from numba import cuda

THREADS = 32
BLOCKS = 2


@cuda.jit
def foo(data, x):
    if x == 0:
        cuda.syncthreads()
    data[cuda.grid(1)] = x


EXPECT = []


def launch():
    data = cuda.to_device(np.ones(THREADS * BLOCKS, np.int32))
    foo[BLOCKS, THREADS](data, 0)
    return data.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
