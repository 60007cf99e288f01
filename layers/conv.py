"""Conv2D: weight (out_channels, in_channels, k, k), bias (out_channels,), NCHW.

Three algorithms (cuda_kernels/conv.py, conv_image_gemm.py, conv_implicit_gemm.py): "im2col" (one patch
matrix for the whole batch, one GEMM: every backend), "image_gemm" (a patch matrix per image in each
thread's own cache-sized workspace: the CPU's, several times faster there) and "implicit_gemm" (no patch
matrix: the GEMMs gather their tiles straight from x and dy; written for the GPU, every backend has it).
"auto" picks the backend's best.
"""

from __future__ import annotations

import numpy as np

from cuda_kernels.shapes import (
    CONV_IMAGE_GEMM,
    CONV_IMPLICIT_GEMM,
    conv_image_gemm_shapes,
    conv_implicit_gemm_shapes,
    conv_output_size,
    im2col_shapes,
)
from runtime.device import Device

from .base import Layer, Parameter, positive_int, uniform_init

ALGORITHMS = ("auto", "im2col", CONV_IMAGE_GEMM, CONV_IMPLICIT_GEMM)


class Conv2D(Layer):
    """2-D convolution of NCHW input (batch, in_channels, height, width); PyTorch's ``Conv2d`` (square kernel).

    ``algorithm``: "im2col" (every device), "image_gemm" (CPU only, per image in cache), "implicit_gemm" (every
    device, no patch matrix; the GPU's candidate), "auto" (the best).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True, device: Device | str = "cpu", seed: int = 0, algorithm: str = "auto"):
        super().__init__()
        self.device = device if isinstance(device, Device) else Device(device)
        if algorithm not in ALGORITHMS:
            raise ValueError(f"Conv2D: argument 'algorithm' must be one of {list(ALGORITHMS)}, got {algorithm!r}")
        if algorithm == "auto":
            # On a GPU "auto" stays im2col until a GPU measurement of implicit_gemm (scripts/gemm_ladder_gpu.py,
            # the bench's conv rows) says otherwise: implicit_gemm is only simulator- and compile-tested so far.
            algorithm = CONV_IMAGE_GEMM if self.device.name == "cpu" else "im2col"
        elif algorithm == CONV_IMAGE_GEMM and self.device.name != "cpu":
            raise ValueError(f"Conv2D: algorithm {algorithm!r} runs on the cpu device only, got {self.device}")
        self.algorithm = algorithm
        in_channels, out_channels, kernel_size, stride = (
            positive_int("Conv2D", name, value) for name, value in
            (("in_channels", in_channels), ("out_channels", out_channels), ("kernel_size", kernel_size),
             ("stride", stride)))
        if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"Conv2D: padding must be a non-negative integer, got {padding!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding, self.has_bias = kernel_size, stride, int(padding), bool(bias)
        fan_in = in_channels * kernel_size * kernel_size
        rng = np.random.default_rng(seed)
        self.weight = Parameter(uniform_init(rng, (out_channels, in_channels, kernel_size, kernel_size), fan_in),
                                self.device, "weight")
        self.bias = Parameter(uniform_init(rng, (out_channels,), fan_in), self.device, "bias") if bias else None

    def forward(self, x):
        dev = self.device_for(x)
        self._expect(x, 4, f"(batch, {self.in_channels}, height, width)", {1: self.in_channels})
        n, c, h, w = x.shape
        oh = conv_output_size(h, self.kernel_size, self.stride, self.padding)
        ow = conv_output_size(w, self.kernel_size, self.stride, self.padding)
        if oh < 1 or ow < 1:
            raise ValueError(f"Conv2D.forward: a {self.kernel_size}x{self.kernel_size} kernel does not fit {h}x{w}")
        y = self._buffer(dev, "y", (n, self.out_channels, oh, ow))
        bias = None if self.bias is None else self.bias.data
        self._x_shape = tuple(x.shape)
        if self.algorithm == CONV_IMAGE_GEMM:
            shapes = conv_image_gemm_shapes(x.shape, self.weight.shape, self.stride, self.padding, dev.cpu_threads)
            padded = self._buffer(dev, "padded", shapes["padded"])  # saved for backward
            work = self._buffer(dev, "work", shapes["work"])
            dev.kernels.conv2d_image_gemm_forward(y, padded, work, x, self.weight.data, bias, self.stride, self.padding)
            return y
        if self.algorithm == CONV_IMPLICIT_GEMM:
            self._x = x  # backward gathers its patches from x again
            dev.kernels.conv2d_implicit_gemm_forward(y, x, self.weight.data, bias, self.stride, self.padding)
            return y
        shapes = im2col_shapes(x.shape, self.out_channels, self.kernel_size, self.stride, self.padding)
        cols = self._buffer(dev, "cols", shapes["cols"])  # saved for backward
        rows = self._buffer(dev, "rows", shapes["rows"])
        dev.kernels.conv2d_forward(y, cols, rows, x, self.weight.data, bias, self.stride, self.padding)
        return y

    def backward(self, dy):
        dev = self.device
        dbias = None if self.bias is None else self.bias.grad
        if self.algorithm == CONV_IMAGE_GEMM:
            dx = self._buffer(dev, "dx", self._x_shape) if self.needs_input_grad else None
            dev.kernels.conv2d_image_gemm_backward(dx, self.weight.grad, dbias, self._buffers["work"], dy,
                                                   self._buffers["padded"], self.weight.data, self.stride,
                                                   self.padding)
            return dx
        if self.algorithm == CONV_IMPLICIT_GEMM:
            dx = self._buffer(dev, "dx", self._x_shape) if self.needs_input_grad else None
            shapes = conv_implicit_gemm_shapes(self._x_shape, self.weight.shape, self.stride, self.padding)
            work = self._buffer(dev, "work", shapes["work"])
            dev.kernels.conv2d_implicit_gemm_backward(dx, self.weight.grad, dbias, work, dy, self._x,
                                                      self.weight.data, self.stride, self.padding)
            return dx
        cols = self._buffers["cols"]
        dx = self._buffer(dev, "dx", self._x_shape) if self.needs_input_grad else None
        dcols = self._buffer(dev, "dcols", cols.shape) if self.needs_input_grad else None
        drows = self._buffer(dev, "drows", self._buffers["rows"].shape)
        dev.kernels.conv2d_backward(dx, self.weight.grad, dbias, dcols, drows, dy, cols, self.weight.data,
                                    self.stride, self.padding)
        return dx

    def parameters(self):
        return [self.weight] + ([self.bias] if self.bias is not None else [])

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels, "kernel_size": self.kernel_size,
                "stride": self.stride, "padding": self.padding, "bias": self.has_bias}
