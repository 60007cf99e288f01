"""Reference solution for the tiled GEMM exercise (chapter 3)."""

from numba import cuda, float32

TILE = 8


@cuda.jit
def gemm_tiled_kernel(c, a, b):
    tile_a = cuda.shared.array((TILE, TILE), float32)
    tile_b = cuda.shared.array((TILE, TILE), float32)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    i = cuda.blockIdx.y * TILE + ty
    j = cuda.blockIdx.x * TILE + tx
    m, n = c.shape
    k_total = a.shape[1]
    acc = float32(0.0)
    for k0 in range(0, k_total, TILE):
        tile_a[ty, tx] = a[i, k0 + tx] if (i < m and k0 + tx < k_total) else float32(0.0)
        tile_b[ty, tx] = b[k0 + ty, j] if (k0 + ty < k_total and j < n) else float32(0.0)
        cuda.syncthreads()
        for kk in range(TILE):
            acc += tile_a[ty, kk] * tile_b[kk, tx]
        cuda.syncthreads()
    if i < m and j < n:
        c[i, j] = acc
