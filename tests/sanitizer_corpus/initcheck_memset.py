"""Only the first quarter of a device buffer is zeroed (the memset counted elements, not bytes), then
every thread adds to its element: three quarters of the reads are of memory nobody wrote."""
# Ported from: NVIDIA/compute-sanitizer-samples Initcheck/memset_error.cu (vectorAdd), memset as a kernel
import numpy as np
from _corpus_expect import finding
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
    v[tx] += tx  # <- READ


EXPECT = [finding("uninitialized_read", "READ", space="global")]



def launch():
    v = cuda.device_array(N, np.int32)
    zero_first[BLOCKS, THREADS](v, N // 4)  # the bug: N bytes zeroed, N // 4 int32 elements
    vector_add[BLOCKS, THREADS](v)
    return v.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
