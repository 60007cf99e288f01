"""Fixed twin of uninitialized_shared: every thread writes its slot before reading it."""
# Ported from: jrprice/Oclgrind tests/kernels/uninitialized/uninitialized_local_array.cl (else branch added)
import numpy as np
from numba import cuda, float32

THREADS = 16


@cuda.jit
def uninitialized_local_array(output):
    scratch = cuda.shared.array(THREADS, float32)
    i = cuda.threadIdx.x
    if i != cuda.blockDim.x // 2:
        scratch[i] = i
    else:
        scratch[i] = float32(0.0)
    output[i] = scratch[i]


EXPECT = []


def launch():
    output = cuda.to_device(np.zeros(THREADS, np.float32))
    uninitialized_local_array[1, THREADS](output)
    return output.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
