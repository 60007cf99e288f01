"""The two warps of a block take different branches and wait at different syncthreads call sites: the
simulator counts them as one barrier; on a GPU that is undefined (a deadlock on older parts)."""
# Ported from: GKLEE tests/deadlock_2/deadlock_2.cu (cf. Oclgrind barrier/barrier_different_instructions.cl)
import numpy as np
from _corpus_expect import finding
from numba import cuda

THREADS = 64


@cuda.jit
def dl(data):
    tid = cuda.threadIdx.x + cuda.blockIdx.x * cuda.blockDim.x
    if tid > 31:
        if data[tid] % 2 == 0:
            data[tid] += 1
        cuda.syncthreads()  # <- SYNC-A
    else:
        if data[tid] % 2 == 1:
            data[tid] -= 1
        cuda.syncthreads()  # <- SYNC-B


EXPECT = [finding("barrier_divergence", "SYNC-A", "SYNC-B")]


def launch():
    data = cuda.to_device(np.arange(THREADS, dtype=np.int32))
    dl[1, THREADS](data)
    return data.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
