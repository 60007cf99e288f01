"""A 32x32 shared tile transposed: rows are stored conflict-free, but a warp reading a column hits one
bank 32 times (word tx*32 + r is in bank r for every lane): 32-way, 32 wavefronts per request.
Two warps (block 32x2), 16 rows each: 32 requests per line."""
# Ported from: NVIDIA's shared-memory transpose (CUDA samples transpose) as Faial's bank-conflict examples check it
import numpy as np
from _corpus_expect import traffic
from numba import cuda, float32

N = 32
ROWS = 2


@cuda.jit
def transpose(out, x):
    tile = cuda.shared.array((N, N), float32)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    for r in range(ty, N, ROWS):
        tile[r, tx] = x[r, tx]  # <- ROW-STORE
    cuda.syncthreads()
    for r in range(ty, N, ROWS):
        out[r, tx] = tile[tx, r]  # <- COLUMN-LOAD


EXPECT = []
MEMORY = [traffic("ROW-STORE", "shared", "store", requests=32, wavefronts=32, bank_conflicts=0, ways=1),
          traffic("COLUMN-LOAD", "shared", "load", requests=32, wavefronts=1024, bank_conflicts=992, ways=32),
          traffic("ROW-STORE", "global", "load", requests=32, sectors=128, sectors_per_request=4.0),
          traffic("COLUMN-LOAD", "global", "store", requests=32, sectors=128, sectors_per_request=4.0)]


def launch():
    out = cuda.to_device(np.zeros((N, N), np.float32))
    transpose[1, (N, ROWS)](out, cuda.to_device(np.arange(N * N, dtype=np.float32).reshape(N, N)))
    return out.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
