"""Fixed twin of static_array: the local array sized for every thread id of the launch."""
# Ported from: jrprice/Oclgrind tests/kernels/memcheck/static_array.cl (array as large as the block)
import numpy as np
from numba import cuda, int32

THREADS = 4


@cuda.jit
def static_array(output):
    s = cuda.local.array(THREADS, int32)
    s[0] = 42
    s[1] = 7
    i = cuda.grid(1)
    s[i] = i
    output[i] = s[0] + s[1]


EXPECT = []


def launch():
    output = cuda.to_device(np.zeros(THREADS, np.int32))
    static_array[1, THREADS](output)
    return output.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
