"""The shared-memory tiled matmul without its second barrier: a fast thread loads the next tile while a
slow one still reads the current tile (write after read)."""
# Ported from: GPU-Puzzles issue 14 (srush/GPU-Puzzles: a matmul missing its second barrier passes both checks)
import numpy as np
from _corpus_expect import finding
from numba import cuda, float32

TILE = 8


@cuda.jit
def matmul(c, a, b):
    sa = cuda.shared.array((TILE, TILE), float32)
    sb = cuda.shared.array((TILE, TILE), float32)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    i = cuda.blockIdx.y * TILE + ty
    j = cuda.blockIdx.x * TILE + tx
    acc = float32(0.0)
    for k0 in range(0, a.shape[1], TILE):
        sa[ty, tx] = a[i, k0 + tx]  # <- WRITE-A
        sb[ty, tx] = b[k0 + ty, j]  # <- WRITE-B
        cuda.syncthreads()
        for kk in range(TILE):
            acc += sa[ty, kk] * sb[kk, tx]  # <- READ
    c[i, j] = acc


EXPECT = [finding("race", "READ", "WRITE-A", space="shared", hazard="WAR"),
          finding("race", "READ", "WRITE-B", space="shared", hazard="WAR")]


def launch():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((TILE, 2 * TILE)).astype(np.float32)
    b = rng.standard_normal((2 * TILE, TILE)).astype(np.float32)
    c = cuda.to_device(np.zeros((TILE, TILE), np.float32))
    matmul[(1, 1), (TILE, TILE)](c, cuda.to_device(a), cuda.to_device(b))
    return c.copy_to_host()


if __name__ == "__main__":  # python cli.py sanitize tests/sanitizer_corpus/NAME.py
    print(launch())
