"""The same transpose with the tile padded to 32x33: word tx*33 + r is in bank (tx + r) mod 32, a
different bank for every lane, so the column read is conflict-free (1 wavefront per request)."""
# Ported from: NVIDIA's shared-memory transpose (CUDA samples transpose, the padded tile)
import numpy as np
from _corpus_expect import traffic
from numba import cuda, float32

N = 32
ROWS = 2


@cuda.jit
def transpose(out, x):
    tile = cuda.shared.array((N, N + 1), float32)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    for r in range(ty, N, ROWS):
        tile[r, tx] = x[r, tx]  # <- ROW-STORE
    cuda.syncthreads()
    for r in range(ty, N, ROWS):
        out[r, tx] = tile[tx, r]  # <- COLUMN-LOAD


EXPECT = []
MEMORY = [traffic("ROW-STORE", "shared", "store", requests=32, wavefronts=32, bank_conflicts=0, ways=1),
          traffic("COLUMN-LOAD", "shared", "load", requests=32, wavefronts=32, bank_conflicts=0, ways=1)]


def launch():
    out = cuda.to_device(np.zeros((N, N), np.float32))
    transpose[1, (N, ROWS)](out, cuda.to_device(np.arange(N * N, dtype=np.float32).reshape(N, N)))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
