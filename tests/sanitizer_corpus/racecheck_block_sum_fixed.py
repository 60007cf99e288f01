"""Fixed twin of racecheck_block_sum: a barrier between the writes and thread 0's sum."""
# Ported from: NVIDIA/compute-sanitizer-samples Racecheck/block_error.cu (sumKernel, with __syncthreads)
import numpy as np
from numba import cuda, int32

THREADS = 64


@cuda.jit
def block_sum(sum_out, data_in):
    smem = cuda.shared.array(THREADS, int32)
    tx = cuda.threadIdx.x
    smem[tx] = data_in[tx] + tx
    cuda.syncthreads()
    if tx == 0:
        total = 0
        for i in range(THREADS):
            total += smem[i]
        sum_out[0] = total


EXPECT = []


def launch():
    out = cuda.to_device(np.zeros(1, np.int32))
    block_sum[1, THREADS](out, cuda.to_device(np.zeros(THREADS, np.int32)))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
