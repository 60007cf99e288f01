"""Exercise (chapter 3): a shared-memory tiled GEMM, C = A @ B, with TILE x TILE thread blocks.

The grader launches it as gemm_tiled_kernel[grid, (TILE, TILE)](c, a, b) with enough blocks to cover
C, on shapes that straddle the tile (1, TILE-1, TILE, TILE+1, primes). Grade it with:
    python cli.py --device sim check --only gemm_tiled
"""

from numba import cuda, float32  # noqa: F401

TILE = 8


@cuda.jit
def gemm_tiled_kernel(c, a, b):
    """c (M, N) = a (M, K) @ b (K, N), float32. Stage TILE x TILE tiles of a and b in cuda.shared.array,
    synchronize before and after using them, and guard every load and store against the edges."""
    raise NotImplementedError("write the kernel: see docs/tutorials/03-gemm-three-ways.md")
