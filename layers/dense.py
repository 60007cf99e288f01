"""Dense (fully connected): y = x @ W^T + b, weight (out_features, in_features) as in PyTorch."""

from __future__ import annotations

import numpy as np

from runtime.device import Device

from .base import Layer, Parameter, positive_int, uniform_init


class Dense(Layer):
    """Fully connected: ``y = x @ weight.T + bias`` for x of shape (batch, in_features); PyTorch's ``Linear``.

    Initialized as PyTorch does, U(-1/sqrt(in_features), 1/sqrt(in_features)), from ``seed``.
    """

    fusable_activations = ("relu", "tanh")  # what the GEMM epilogue computes (Sequential fuses them)

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Device | str = "cpu",
                 seed: int = 0):
        super().__init__()
        self.device = device if isinstance(device, Device) else Device(device)
        in_features = positive_int("Dense", "in_features", in_features)
        out_features = positive_int("Dense", "out_features", out_features)
        self.in_features, self.out_features, self.has_bias = in_features, out_features, bool(bias)
        rng = np.random.default_rng(seed)
        self.weight = Parameter(uniform_init(rng, (out_features, in_features), in_features), self.device, "weight")
        self.bias = Parameter(uniform_init(rng, (out_features,), in_features), self.device, "bias") if bias else None

    def forward(self, x, activation: str = "none"):
        """y = activation(x @ W^T + b); ``activation`` is applied in the GEMM's epilogue (the layer's own
        backward does not involve it: the activation layer that follows owns that gradient)."""
        dev = self.device_for(x)
        self._expect(x, 2, f"(batch, {self.in_features})", {1: self.in_features})
        y = self._buffer(dev, "y", (x.shape[0], self.out_features))
        dev.kernels.gemm(y, x, self.weight.data, trans_b=True, bias=None if self.bias is None else self.bias.data,
                         activation=activation)
        self._x = x
        return y

    def backward(self, dy):
        k = self.device.kernels
        k.gemm(self.weight.grad, dy, self._x, trans_a=True)
        if self.bias is not None:
            k.column_sums(self.bias.grad, dy)
        if not self.needs_input_grad:
            return None
        dx = self._buffer(self.device, "dx", self._x.shape)
        k.gemm(dx, dy, self.weight.data)
        return dx

    def parameters(self):
        return [self.weight] + ([self.bias] if self.bias is not None else [])

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features, "bias": self.has_bias}
