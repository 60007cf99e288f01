"""Fixed twin of scan_warp: each step reads into a register, waits, then writes, then waits again."""
# Ported from: mc-imperial/gpuverify testsuite/CUDA/warpsync/scan_warp (Hillis-Steele with barriers)
import numpy as np
from numba import cuda

THREADS = 32


@cuda.jit
def scan(a):
    tid = cuda.threadIdx.x
    lane = tid & 31
    step = 1
    while step <= 2:
        x = a[tid]
        if lane >= step:
            x += a[tid - step]
        cuda.syncthreads()
        a[tid] = x
        cuda.syncthreads()
        step *= 2


EXPECT = []


def launch():
    a = cuda.to_device(np.ones(THREADS, np.int32))
    scan[1, THREADS](a)
    return a.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
