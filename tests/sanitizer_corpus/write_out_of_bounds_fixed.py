"""Fixed twin of write_out_of_bounds: the tail threads do nothing."""
# Ported from: jrprice/Oclgrind tests/kernels/memcheck/write_out_of_bounds.cl (with the bounds check)
import numpy as np
from numba import cuda

THREADS = 32
N = 28


@cuda.jit
def add(c, a, b):
    i = cuda.grid(1)
    if i < c.size:
        c[i] = a[i] + b[i]


EXPECT = []


def launch():
    a = cuda.to_device(np.arange(N, dtype=np.int32))
    c = cuda.to_device(np.zeros(N, np.int32))
    add[1, THREADS](c, a, a)
    return c.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
