"""One thread skips writing its slot of a shared array and then reads it: the simulator hands back
whatever np.empty held; on a GPU, whatever the last block left there."""
# Ported from: jrprice/Oclgrind tests/kernels/uninitialized/uninitialized_local_array.cl
import numpy as np
from _corpus_expect import finding
from numba import cuda, float32

THREADS = 16


@cuda.jit
def uninitialized_local_array(output):
    scratch = cuda.shared.array(THREADS, float32)
    i = cuda.threadIdx.x
    if i != cuda.blockDim.x // 2:
        scratch[i] = i
    output[i] = scratch[i]  # <- READ


EXPECT = [finding("uninitialized_read", "READ", space="shared")]


def launch():
    output = cuda.to_device(np.zeros(THREADS, np.float32))
    uninitialized_local_array[1, THREADS](output)
    return output.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
