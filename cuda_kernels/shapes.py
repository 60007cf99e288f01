"""Output sizes and caller-owned buffer shapes: the kernel layer's arithmetic the layers need, numba-free.

A layer allocates every buffer its kernels write (the kernel layer never allocates), so it needs the
shapes the kernels expect; it reads them here and calls nothing else of the kernel layer but
``device.kernels``. Pure integer arithmetic: no numba, no NumPy.
"""

from __future__ import annotations

# Conv2D's per-image algorithm on the CPU (cuda_kernels/conv_image_gemm.py); "im2col" runs everywhere.
CONV_IMAGE_GEMM = "image_gemm"


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
