"""Fixed twin of initcheck_memset: the whole buffer zeroed before the kernel adds to it."""
# Ported from: NVIDIA/compute-sanitizer-samples Initcheck/memset_error.cu (memset of N * sizeof(int))
import numpy as np
from numba import cuda

THREADS = 32
BLOCKS = 2
N = THREADS * BLOCKS


@cuda.jit
def zero_first(v, count):
    i = cuda.grid(1)
    if i < count:
        v[i] = 0


@cuda.jit
def vector_add(v):
    tx = cuda.grid(1)
    v[tx] += tx


EXPECT = []


def launch():
    v = cuda.device_array(N, np.int32)
    zero_first[BLOCKS, THREADS](v, N)
    vector_add[BLOCKS, THREADS](v)
    return v.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
