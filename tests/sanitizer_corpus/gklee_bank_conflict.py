"""Shared stores and loads at strides 2, 4 and 8 words: 2-, 4- and 8-way bank conflicts (stride s puts
the 32 lanes in 32/s banks, s distinct words in each)."""
# Ported from: GKLEE tests/bank_conflict/bank_conflict.cu
import numpy as np
from _corpus_expect import traffic
from numba import cuda, int32

THREADS = 32


@cuda.jit
def bc(out, in_):
    smem = cuda.shared.array(512, int32)
    tid = cuda.threadIdx.x
    smem[tid * 2] = in_[tid]  # <- STORE-2
    cuda.syncthreads()
    smem[tid * 4] = in_[tid]  # <- STORE-4
    cuda.syncthreads()
    smem[tid * 8] = in_[tid]  # <- STORE-8
    cuda.syncthreads()
    x = smem[tid * 2]  # <- LOAD-2
    y = smem[tid * 4]  # <- LOAD-4
    z = smem[tid * 8]  # <- LOAD-8
    out[tid] = max(x, y, z)


EXPECT = []
MEMORY = [traffic("STORE-2", "shared", "store", requests=1, wavefronts=2, bank_conflicts=1, ways=2),
          traffic("STORE-4", "shared", "store", requests=1, wavefronts=4, bank_conflicts=3, ways=4),
          traffic("STORE-8", "shared", "store", requests=1, wavefronts=8, bank_conflicts=7, ways=8),
          traffic("LOAD-2", "shared", "load", requests=1, wavefronts=2, bank_conflicts=1, ways=2),
          traffic("LOAD-4", "shared", "load", requests=1, wavefronts=4, bank_conflicts=3, ways=4),
          traffic("LOAD-8", "shared", "load", requests=1, wavefronts=8, bank_conflicts=7, ways=8)]


def launch():
    out = cuda.to_device(np.zeros(THREADS, np.int32))
    bc[1, THREADS](out, cuda.to_device(np.arange(THREADS, dtype=np.int32)))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
