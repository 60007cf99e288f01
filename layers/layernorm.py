"""LayerNorm(normalized_shape): each sample normalized over its last dimension, with PyTorch's parameters
(weight = gamma, bias = beta). No running statistics: training and eval compute the same thing."""

from __future__ import annotations

import numpy as np

from runtime.device import Device

from .base import Layer, Parameter, positive_int


class LayerNorm(Layer):
    """Normalization over the last dimension of (..., features) input; PyTorch's ``LayerNorm(features)``."""

    def __init__(self, normalized_shape: int, eps: float = 1e-5, device: Device | str = "cpu"):
        super().__init__()
        self.device = device if isinstance(device, Device) else Device(device)
        if isinstance(normalized_shape, (tuple, list)) and len(normalized_shape) == 1:
            normalized_shape = normalized_shape[0]  # PyTorch's (features,): the last dimension only
        features = positive_int("LayerNorm", "normalized_shape", normalized_shape)
        if not eps > 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps!r}")
        self.normalized_shape, self.eps = features, float(eps)
        self.weight = Parameter(np.ones(features), self.device, "weight")
        self.bias = Parameter(np.zeros(features), self.device, "bias")

    def forward(self, x):
        dev = self.device_for(x)
        d, shape = self.normalized_shape, tuple(x.shape)  # a tuple: the simulator's shapes refuse shape[-1]
        if len(shape) < 2 or shape[-1] != d:
            raise ValueError(f"LayerNorm.forward: expected (..., {d}), got shape {shape}")
        rows = int(np.prod(shape[:-1]))
        y = self._buffer(dev, "y", shape)
        mean, rstd = self._buffer(dev, "mean", (rows,)), self._buffer(dev, "rstd", (rows,))
        self._x = x.reshape(rows, d)  # every leading axis is a row: a view of contiguous input
        dev.kernels.layernorm_forward(y.reshape(rows, d), mean, rstd, self._x, self.weight.data, self.bias.data,
                                      self.eps)
        return y

    def backward(self, dy):
        rows, d = self._x.shape
        dx = self._buffer(self.device, "dx", tuple(dy.shape))  # dx's row sums are needed anyway: always computed
        self.device.kernels.layernorm_backward(dx.reshape(rows, d), self.weight.grad, self.bias.grad,
                                               dy.reshape(rows, d), self._x, self._buffers["mean"],
                                               self._buffers["rstd"], self.weight.data)
        return dx if self.needs_input_grad else None

    def parameters(self):
        return [self.weight, self.bias]

    def config(self):
        return {"normalized_shape": self.normalized_shape, "eps": self.eps}
