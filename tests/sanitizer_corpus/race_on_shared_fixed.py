"""Fixed twin of race_on_shared: one thread writes the shared word, everyone reads it after the barrier."""
# Ported from: mc-imperial/gpuverify testsuite/CUDA/fail_tests/race_on_shared (the write guarded)
import numpy as np
from numba import cuda, int32

THREADS = 16


@cuda.jit
def race_on_shared(out):
    a = cuda.shared.array(16, int32)
    if cuda.threadIdx.x == 0:
        a[0] = cuda.threadIdx.x
    cuda.syncthreads()
    out[cuda.threadIdx.x] = a[0]


EXPECT = []


def launch():
    out = cuda.to_device(np.zeros(THREADS, np.int32))
    race_on_shared[1, THREADS](out)
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
