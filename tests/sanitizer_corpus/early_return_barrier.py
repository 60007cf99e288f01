"""Threads past the end return early, then the rest wait at a barrier they will never all reach: fine in
the simulator (exited threads drop out), a hang or undefined behaviour on a GPU."""
# Ported from: numba issue 9770 (works in cudasim, hangs on a GPU); cf. GPUVerify testsuite/CUDA/noraceduetoreturn
import numpy as np
from _corpus_expect import finding
from numba import cuda, float32

THREADS = 32
N = 40


@cuda.jit
def pair_sum(out, x):
    tile = cuda.shared.array(THREADS, float32)
    tx = cuda.threadIdx.x
    i = cuda.grid(1)
    if i >= x.size:
        return
    tile[tx] = x[i]
    cuda.syncthreads()  # <- SYNC
    out[i] = tile[tx] + tile[tx ^ 1]


EXPECT = [finding("barrier_divergence", "SYNC")]


def launch():
    out = cuda.to_device(np.zeros(N, np.float32))
    pair_sum[2, THREADS](out, cuda.to_device(np.arange(N, dtype=np.float32)))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
