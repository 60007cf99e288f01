"""Output sizes and caller-owned buffer shapes: the kernel layer's arithmetic the layers need, numba-free.

A layer allocates every buffer its kernels write (the kernel layer never allocates), so it needs the
shapes the kernels expect; it reads them here and calls nothing else of the kernel layer but
``device.kernels``. Pure integer arithmetic: no numba, no NumPy.
"""

from __future__ import annotations

# Conv2D's per-image algorithm on the CPU (cuda_kernels/conv_image_gemm.py); "im2col" runs everywhere.
CONV_IMAGE_GEMM = "image_gemm"
# Conv2D's implicit GEMM (cuda_kernels/conv_implicit_gemm.py): no patch matrix; the GPU's candidate.
CONV_IMPLICIT_GEMM = "implicit_gemm"
# Its weight-gradient kernel: (C*K*K + 1) x F tiles of 64 x 16 (the extra column is the bias), the pixel sum
# split into slices of at least 256 pixels, enough slices for about two blocks per SM of a 132-SM GPU.
CONV_IMPLICIT_GEMM_TILE_M, CONV_IMPLICIT_GEMM_TILE_N = 64, 16
CONV_IMPLICIT_GEMM_MIN_SLICE = 256
CONV_IMPLICIT_GEMM_TARGET_BLOCKS = 264


def conv_output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Output rows (or columns) of a convolution over ``size`` input rows."""
    return (size + 2 * padding - kernel_size) // stride + 1


def pool_output_size(size: int, kernel_size: int, stride: int) -> int:
    """Output rows (or columns) of a pooling window sliding over ``size`` input rows (no padding)."""
    return (size - kernel_size) // stride + 1


def im2col_shapes(x_shape, out_channels: int, kernel_size: int, stride: int, padding: int) -> dict:
    """im2col convolution's buffers: ``cols`` (pixels, C*K*K), saved for backward, and ``rows`` (pixels, F)."""
    n, c, h, w = x_shape
    pixels = n * conv_output_size(h, kernel_size, stride, padding) * conv_output_size(w, kernel_size, stride, padding)
    return {"cols": (pixels, c * kernel_size * kernel_size), "rows": (pixels, out_channels)}


def conv_image_gemm_layout(k: int, stride: int, padding: int, h: int, w: int) -> tuple:
    """(Hp, Wp, OH, OW, Wq, L): padded size, output size, wide row length and pixels per image."""
    hp, wp = h + 2 * padding, w + 2 * padding
    oh, ow = conv_output_size(h, k, stride, padding), conv_output_size(w, k, stride, padding)
    wq = wp if stride == 1 else ow
    return hp, wp, oh, ow, wq, (oh - 1) * wq + ow


def conv_image_gemm_workspace_floats(x_shape, weight_shape, stride: int = 1, padding: int = 0) -> int:
    """Floats per thread in the image-GEMM convolution's ``work`` (conv_image_gemm.py names its parts)."""
    n, c, h, w = x_shape
    f, _, k, _ = weight_shape
    hp, wp, oh, ow, wq, length = conv_image_gemm_layout(k, stride, padding, h, w)
    ckk = c * k * k
    return ckk * length + f * length + f * ckk + f + c * hp * wp


def conv_image_gemm_shapes(x_shape, weight_shape, stride: int, padding: int, threads: int) -> dict:
    """The image-GEMM convolution's buffers: ``padded`` (saved by forward), ``work`` (a row per CPU thread)."""
    n, c, h, w = x_shape
    return {"padded": (n, c, h + 2 * padding, w + 2 * padding),
            "work": (threads, conv_image_gemm_workspace_floats(x_shape, weight_shape, stride, padding))}


def conv_implicit_gemm_splits(x_shape, weight_shape, stride: int, padding: int) -> int:
    """Slices of the pixel sum in the implicit-GEMM weight gradient (rows of its ``work``)."""
    n, c, h, w = x_shape
    f, _, k, _ = weight_shape
    pixels = n * conv_output_size(h, k, stride, padding) * conv_output_size(w, k, stride, padding)
    tiles = -(-(c * k * k + 1) // CONV_IMPLICIT_GEMM_TILE_M) * -(-f // CONV_IMPLICIT_GEMM_TILE_N)
    return max(1, min(-(-CONV_IMPLICIT_GEMM_TARGET_BLOCKS // tiles), pixels // CONV_IMPLICIT_GEMM_MIN_SLICE))


def conv_implicit_gemm_shapes(x_shape, weight_shape, stride: int, padding: int) -> dict:
    """The implicit-GEMM convolution's one buffer: ``work`` (slices, F, C*K*K + 1), the weight gradient's
    (and, in its last column, the bias gradient's) partial sums, one slice of the pixels each; backward only."""
    f, c, k, _ = weight_shape
    return {"work": (conv_implicit_gemm_splits(x_shape, weight_shape, stride, padding), f, c * k * k + 1)}
