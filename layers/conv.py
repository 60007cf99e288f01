"""Conv2D by im2col + GEMM: weight (out_channels, in_channels, k, k), bias (out_channels,), NCHW."""

from __future__ import annotations

import numpy as np

from cuda_kernels.conv import conv_output_size
from engine.device import Device

from .base import Layer, Parameter, uniform_init


class Conv2D(Layer):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True, device: Device | str = "cpu", seed: int = 0):
        super().__init__()
        self.device = device if isinstance(device, Device) else Device(device)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding, self.has_bias = int(kernel_size), int(stride), int(padding), bias
        fan_in = in_channels * kernel_size * kernel_size
        rng = np.random.default_rng(seed)
        self.weight = Parameter(uniform_init(rng, (out_channels, in_channels, kernel_size, kernel_size), fan_in),
                                self.device, "weight")
        self.bias = Parameter(uniform_init(rng, (out_channels,), fan_in), self.device, "bias") if bias else None

    def forward(self, x):
        dev = self._device_for(x)
        self._expect(x, 4, f"(batch, {self.in_channels}, height, width)", {1: self.in_channels})
        n, c, h, w = x.shape
        oh = conv_output_size(h, self.kernel_size, self.stride, self.padding)
        ow = conv_output_size(w, self.kernel_size, self.stride, self.padding)
        if oh < 1 or ow < 1:
            raise ValueError(f"Conv2D.forward: a {self.kernel_size}x{self.kernel_size} kernel does not fit {h}x{w}")
        pixels, patch = n * oh * ow, c * self.kernel_size ** 2
        y = self._buffer(dev, "y", (n, self.out_channels, oh, ow))
        cols = self._buffer(dev, "cols", (pixels, patch))  # saved for backward
        rows = self._buffer(dev, "rows", (pixels, self.out_channels))
        dev.kernels.conv2d_forward(y, cols, rows, x, self.weight.data, None if self.bias is None else self.bias.data,
                                   self.stride, self.padding)
        self._x_shape = tuple(x.shape)
        return y

    def backward(self, dy):
        dev = self.device
        cols = self._buffers["cols"]
        dx = self._buffer(dev, "dx", self._x_shape) if self.needs_input_grad else None
        dcols = self._buffer(dev, "dcols", cols.shape) if self.needs_input_grad else None
        drows = self._buffer(dev, "drows", self._buffers["rows"].shape)
        dev.kernels.conv2d_backward(dx, self.weight.grad, None if self.bias is None else self.bias.grad, dcols, drows,
                                    dy, cols, self.weight.data, self.stride, self.padding)
        return dx

    def parameters(self):
        return [self.weight] + ([self.bias] if self.bias is not None else [])

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels, "kernel_size": self.kernel_size,
                "stride": self.stride, "padding": self.padding, "bias": self.has_bias}
