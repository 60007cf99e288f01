"""An in-place warp scan with no barriers: verified under lockstep warps (--warp-sync), but with
independent thread scheduling a lane may read its neighbour's element before or after the update."""
# Ported from: mc-imperial/gpuverify testsuite/CUDA/warpsync/scan_warp (//pass with --warp-sync=32), 2 steps
import numpy as np
from _corpus_expect import finding
from numba import cuda

THREADS = 32


@cuda.jit
def scan(a):
    tid = cuda.threadIdx.x
    lane = tid & 31
    if lane >= 1:
        a[tid] = a[tid - 1] + a[tid]  # <- STEP-1
    if lane >= 2:
        a[tid] = a[tid - 2] + a[tid]  # <- STEP-2


EXPECT = [finding("race", "STEP-1", space="global", scope="intra-warp"),
          finding("race", "STEP-1", "STEP-2", space="global", scope="intra-warp"),
          finding("race", "STEP-2", space="global", scope="intra-warp")]


def launch():
    a = cuda.to_device(np.ones(THREADS, np.int32))
    scan[1, THREADS](a)
    return a.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
