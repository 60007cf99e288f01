"""More threads than elements and no bounds check: the tail threads write past the end of c (and read
past a and b). The plain simulator raises IndexError here, the one bug it does catch."""
# Ported from: jrprice/Oclgrind tests/kernels/memcheck/write_out_of_bounds.cl
import numpy as np
from _corpus_expect import finding
from numba import cuda

THREADS = 32
N = 28

PLAIN = "IndexError"


@cuda.jit
def add(c, a, b):
    i = cuda.grid(1)
    c[i] = a[i] + b[i]  # <- OOB


EXPECT = [finding("out_of_bounds", "OOB", space="global")]


def launch():
    a = cuda.to_device(np.arange(N, dtype=np.int32))
    c = cuda.to_device(np.zeros(N, np.int32))
    add[1, THREADS](c, a, a)
    return c.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
