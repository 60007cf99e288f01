"""A barrier inside a bounds check in a loop: in the last round the tail threads skip it."""
# Ported from: NVIDIA/compute-sanitizer-samples Synccheck/divergent_threads.cu (myKernel), 4 data blocks
import numpy as np
from _corpus_expect import finding
from numba import cuda, int32

THREADS = 64
DATA_BLOCKS = 4
SIZE = THREADS * DATA_BLOCKS - 16


@cuda.jit
def divergent(sum_out, data_in):
    smem = cuda.shared.array(THREADS, int32)
    tx = cuda.threadIdx.x
    smem[tx] = 0
    cuda.syncthreads()
    for b in range(DATA_BLOCKS):
        offset = THREADS * b + tx
        if offset < SIZE:
            smem[tx] += data_in[offset]
            cuda.syncthreads()  # <- SYNC
    if tx == 0:
        total = 0
        for i in range(THREADS):
            total += smem[i]
        sum_out[0] = total


EXPECT = [finding("barrier_divergence", "SYNC")]


def launch():
    out = cuda.to_device(np.zeros(1, np.int32))
    divergent[1, THREADS](out, cuda.to_device(np.ones(SIZE, np.int32)))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
