"""ReLU, Tanh, Sigmoid: elementwise; backward uses the saved output (y > 0, 1 - y^2, y(1 - y))."""

from __future__ import annotations

from .base import Layer


class _Activation(Layer):
    activation = ""

    def forward(self, x):
        dev = self.device_for(x)
        y = self._buffer(dev, "y", x.shape)
        dev.kernels.activation_forward(y, x, self.activation)
        self._dev, self._y = dev, y
        return y

    def adopt_output(self, y) -> None:
        """The layer before computed this activation in its own epilogue (Sequential's fusion): keep its
        output as ours, for backward."""
        self._dev, self._y, self._out_shape = self.device_for(y), y, tuple(y.shape)

    def backward(self, dy):
        if not self.needs_input_grad:
            return None
        y = self._y
        dx = self._buffer(self._dev, "dx", y.shape)
        self._dev.kernels.activation_backward(dx, dy, y, self.activation)
        return dx


class ReLU(_Activation):
    """max(x, 0), elementwise."""

    activation = "relu"


class Tanh(_Activation):
    """tanh(x), elementwise."""

    activation = "tanh"


class Sigmoid(_Activation):
    """1 / (1 + exp(-x)), elementwise."""

    activation = "sigmoid"
