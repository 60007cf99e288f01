"""A two-element local (per-thread) array indexed by the thread id: threads 2 and 3 write past its end."""
# Ported from: jrprice/Oclgrind tests/kernels/memcheck/static_array.cl
import numpy as np
from _corpus_expect import finding
from numba import cuda, int32

THREADS = 4

PLAIN = "IndexError"


@cuda.jit
def static_array(output):
    s = cuda.local.array(2, int32)
    s[0] = 42
    s[1] = 7
    i = cuda.grid(1)
    s[i] = i  # <- OOB
    output[i] = s[0] + s[1]


EXPECT = [finding("out_of_bounds", "OOB", space="local")]


def launch():
    output = cuda.to_device(np.zeros(THREADS, np.int32))
    static_array[1, THREADS](output)
    return output.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
