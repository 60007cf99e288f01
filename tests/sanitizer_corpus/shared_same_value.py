"""Every thread writes the same value to one shared word: a benign write-write race, severity info."""
# Ported from: mc-imperial/gpuverify testsuite/CUDA/fail_tests/race_on_shared, every thread writing 7
import numpy as np
from _corpus_expect import finding
from numba import cuda, int32

THREADS = 16


@cuda.jit
def same_value(out):
    a = cuda.shared.array(16, int32)
    a[0] = 7  # <- SAME
    cuda.syncthreads()
    out[cuda.threadIdx.x] = a[0]


EXPECT = [finding("race", "SAME", space="shared", hazard="WAW", severity="info")]


def launch():
    out = cuda.to_device(np.zeros(THREADS, np.int32))
    same_value[1, THREADS](out)
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
