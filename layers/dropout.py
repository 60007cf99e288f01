"""Dropout(p): in training, zero each unit with probability p and scale the rest by 1/(1-p); in eval,
the identity. The mask comes from a counter-based hash (seed, index), so runs are reproducible."""

from __future__ import annotations

from .base import Layer


class Dropout(Layer):
    """In training, zero each value with probability ``p`` and scale the rest by 1/(1-p); in eval, the identity."""

    def __init__(self, p: float = 0.5, seed: int = 0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p, self.seed, self._calls = float(p), int(seed), 0

    def forward(self, x):
        dev = self.device_for(x)
        self._dev = dev
        if not self.training or self.p == 0.0:
            self._identity = True
            return x
        self._identity = False
        y, mask = self._buffer(dev, "y", x.shape), self._buffer(dev, "mask", x.shape)
        self._calls += 1  # a fresh mask every step, the same sequence of masks every run
        dev.kernels.dropout_forward(y, mask, x, self.p, self.seed * 1_000_003 + self._calls)
        return y

    def random_state(self) -> int:
        return self._calls

    def set_random_state(self, state: int) -> None:
        self._calls = int(state)

    def backward(self, dy):
        if not self.needs_input_grad:
            return None
        if self._identity:
            return dy
        dx = self._buffer(self._dev, "dx", dy.shape)
        self._dev.kernels.multiply(dx, dy, self._buffers["mask"])
        return dx

    def config(self):
        return {"p": self.p, "seed": self.seed}
