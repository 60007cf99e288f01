"""BatchNorm2D(channels): per-channel normalization of NCHW input, with PyTorch's parameters (weight =
gamma, bias = beta) and running statistics (running_mean, running_var) used in eval mode."""

from __future__ import annotations

import numpy as np

from runtime.device import Device

from .base import Layer, Parameter, positive_int


class BatchNorm2D(Layer):
    """Per-channel normalization of NCHW input; PyTorch's ``BatchNorm2d`` (weight, bias, running statistics)."""

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1, device: Device | str = "cpu"):
        super().__init__()
        self.device = device if isinstance(device, Device) else Device(device)
        channels = positive_int("BatchNorm2D", "channels", channels)
        if not eps > 0 or not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm2D: eps must be positive and momentum in [0, 1], got {eps!r} and {momentum!r}")
        self.channels, self.eps, self.momentum = channels, float(eps), float(momentum)
        self.weight = Parameter(np.ones(channels), self.device, "weight")
        self.bias = Parameter(np.zeros(channels), self.device, "bias")
        self.running_mean = self.device.zeros((channels,))
        self.running_var = self.device.asarray(np.ones(channels))

    def forward(self, x):
        dev = self.device_for(x)
        self._expect(x, 4, f"(batch, {self.channels}, height, width)", {1: self.channels})
        y = self._buffer(dev, "y", x.shape)
        k = dev.kernels
        if self.training:
            mean, invstd = self._buffer(dev, "mean", (self.channels,)), self._buffer(dev, "invstd", (self.channels,))
            k.batchnorm_forward_train(y, mean, invstd, self.running_mean, self.running_var, x, self.weight.data,
                                      self.bias.data, self.momentum, self.eps)
            self._x = x
        else:
            k.batchnorm_forward_eval(y, x, self.weight.data, self.bias.data, self.running_mean, self.running_var,
                                     self.eps)
        return y

    def backward(self, dy):
        if not self.training:
            raise RuntimeError("BatchNorm2D.backward: call it after a forward pass in training mode")
        dx = self._buffer(self.device, "dx", dy.shape)  # BN always needs dx's arithmetic for dgamma anyway
        self.device.kernels.batchnorm_backward(dx, self.weight.grad, self.bias.grad, dy, self._x,
                                               self._buffers["mean"], self._buffers["invstd"], self.weight.data)
        return dx if self.needs_input_grad else None

    def parameters(self):
        return [self.weight, self.bias]

    def state_arrays(self) -> dict:
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def config(self):
        return {"channels": self.channels, "eps": self.eps, "momentum": self.momentum}
