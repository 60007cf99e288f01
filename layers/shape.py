"""Flatten (N, ...) -> (N, features), FlattenTime (N, T, F) -> (N*T, F) and LastTimeStep (N, T, H) -> (N, H):
reshapes and selections."""

from __future__ import annotations

import numpy as np

from .base import Layer


class Flatten(Layer):
    """A view, no copy: contiguous arrays reshape in place on every device."""

    def forward(self, x):
        self._x_shape = tuple(x.shape)
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))

    def backward(self, dy):
        return dy.reshape(self._x_shape) if self.needs_input_grad else None


class LastTimeStep(Layer):
    """The last hidden state of a sequence (N, T, H) -> (N, H), e.g. between an RNN and a classifier."""

    def forward(self, x):
        dev = self.device_for(x)
        self._expect(x, 3, "(batch, time, features)")
        n, t, h = x.shape
        time_major = self._buffer(dev, "time_major", (t, n, h))
        dev.kernels.swap_leading_axes(time_major, x)
        self._dev = dev
        return time_major[t - 1]

    def backward(self, dy):
        if not self.needs_input_grad:
            return None
        time_major = self._buffers["time_major"]
        t, n, h = time_major.shape
        dev = self._dev
        d_time_major = self._buffer(dev, "d_time_major", (t, n, h))
        dev.kernels.fill(d_time_major, 0.0)
        dev.kernels.scale(d_time_major[t - 1], dy, 1.0)
        dx = self._buffer(dev, "dx", (n, t, h))
        dev.kernels.swap_leading_axes(dx, d_time_major)
        return dx


class FlattenTime(Layer):
    """Every time step becomes a row: (N, T, F) -> (N*T, F), a view (no copy), so that a Dense layer and
    ``SoftmaxCrossEntropy`` treat each step as a sample (a language model's per-character output and loss);
    the labels go with it as (N*T,), row n*T + t for step t of sequence n."""

    def forward(self, x):
        self._expect(x, 3, "(batch, time, features)")
        self._x_shape = tuple(x.shape)
        n, t, f = x.shape
        return x.reshape(n * t, f)

    def backward(self, dy):
        return dy.reshape(self._x_shape) if self.needs_input_grad else None
