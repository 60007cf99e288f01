"""Fixed twin of early_return_barrier: guard the work, not the barrier."""
# Ported from: numba issue 9770, the early return replaced by guards around the loads and stores
import numpy as np
from numba import cuda, float32

THREADS = 32
N = 40


@cuda.jit
def pair_sum(out, x):
    tile = cuda.shared.array(THREADS, float32)
    tx = cuda.threadIdx.x
    i = cuda.grid(1)
    if i < x.size:
        tile[tx] = x[i]
    cuda.syncthreads()
    if i < x.size:
        out[i] = tile[tx] + tile[tx ^ 1]


EXPECT = []


def launch():
    out = cuda.to_device(np.zeros(N, np.float32))
    pair_sum[2, THREADS](out, cuda.to_device(np.arange(N, dtype=np.float32)))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
