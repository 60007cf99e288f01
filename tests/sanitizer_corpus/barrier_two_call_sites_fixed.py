"""Fixed twin of barrier_two_call_sites: one barrier after the if/else, where both warps meet."""
# Ported from: GKLEE tests/deadlock_2/deadlock_2.cu (the barrier hoisted out of the branches)
import numpy as np
from numba import cuda

THREADS = 64


@cuda.jit
def dl(data):
    tid = cuda.threadIdx.x + cuda.blockIdx.x * cuda.blockDim.x
    if tid > 31:
        if data[tid] % 2 == 0:
            data[tid] += 1
    else:
        if data[tid] % 2 == 1:
            data[tid] -= 1
    cuda.syncthreads()


EXPECT = []


def launch():
    data = cuda.to_device(np.arange(THREADS, dtype=np.int32))
    dl[1, THREADS](data)
    return data.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
