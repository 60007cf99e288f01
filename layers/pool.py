"""MaxPool2D: the maximum of each window; backward routes dy to where each maximum came from."""

from __future__ import annotations

import numpy as np

from cuda_kernels.shapes import pool_output_size

from .base import Layer, positive_int


class MaxPool2D(Layer):
    """The maximum of each ``kernel_size`` x ``kernel_size`` window of NCHW input, moving by ``stride``."""

    def __init__(self, kernel_size: int, stride: int | None = None):
        super().__init__()
        self.kernel_size = positive_int("MaxPool2D", "kernel_size", kernel_size)
        # PyTorch's default stride is the window size
        self.stride = positive_int("MaxPool2D", "stride", stride) if stride is not None else self.kernel_size

    def forward(self, x):
        dev = self.device_for(x)
        self._expect(x, 4, "(batch, channels, height, width)")
        n, c, h, w = x.shape
        oh, ow = pool_output_size(h, self.kernel_size, self.stride), pool_output_size(w, self.kernel_size, self.stride)
        if oh < 1 or ow < 1:
            raise ValueError(f"MaxPool2D.forward: a {self.kernel_size}x{self.kernel_size} window does not fit {h}x{w}")
        y = self._buffer(dev, "y", (n, c, oh, ow))
        argmax = self._buffer(dev, "argmax", (n, c, oh, ow), np.int32)
        dev.kernels.maxpool_forward(y, argmax, x, self.kernel_size, self.stride)
        self._dev, self._x_shape = dev, tuple(x.shape)
        return y

    def backward(self, dy):
        if not self.needs_input_grad:
            return None
        dx = self._buffer(self._dev, "dx", self._x_shape)
        self._dev.kernels.maxpool_backward(dx, dy, self._buffers["argmax"], self.kernel_size, self.stride)
        return dx

    def config(self):
        return {"kernel_size": self.kernel_size, "stride": self.stride}
