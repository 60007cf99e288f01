"""Every thread writes its own id to one shared word: a write-write race with different values."""
# Ported from: mc-imperial/gpuverify testsuite/CUDA/fail_tests/race_on_shared (//xfail)
import numpy as np
from _corpus_expect import finding
from numba import cuda, int32

THREADS = 16


@cuda.jit
def race_on_shared(out):
    a = cuda.shared.array(16, int32)
    a[0] = cuda.threadIdx.x  # <- RACE
    cuda.syncthreads()
    out[cuda.threadIdx.x] = a[0]


EXPECT = [finding("race", "RACE", space="shared", hazard="WAW", scope="intra-warp")]


def launch():
    out = cuda.to_device(np.zeros(THREADS, np.int32))
    race_on_shared[1, THREADS](out)
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
