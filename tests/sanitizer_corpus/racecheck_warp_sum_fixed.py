"""Fixed twin of racecheck_warp_sum: a barrier before lane 0 reads its warp's values."""
# Ported from: NVIDIA/compute-sanitizer-samples Racecheck/warp_error.cu (sumKernel, with the barrier)
import numpy as np
from numba import cuda, int32

WARPS = 2
THREADS = 32 * WARPS


@cuda.jit
def warp_sum(sum_out, data_in):
    first = cuda.shared.array(THREADS, int32)
    second = cuda.shared.array(WARPS, int32)
    tx = cuda.threadIdx.x
    first[tx] = data_in[tx] + tx
    cuda.syncthreads()
    if tx % 32 == 0:
        wx = tx // 32
        second[wx] = 0
        for i in range(32):
            second[wx] += first[wx * 32 + i]
    cuda.syncthreads()
    if tx == 0:
        total = 0
        for i in range(WARPS):
            total += second[i]
        sum_out[0] = total


EXPECT = []


def launch():
    out = cuda.to_device(np.zeros(1, np.int32))
    warp_sum[1, THREADS](out, cuda.to_device(np.zeros(THREADS, np.int32)))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
