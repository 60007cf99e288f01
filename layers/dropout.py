"""Dropout(p): in training, zero each unit with probability p and scale the rest by 1/(1-p); in eval,
the identity. The mask comes from a counter-based hash (seed, index), so runs are reproducible.

The step's seed lives in device memory (an int64 array of one element the kernel reads), not in a kernel
argument: ``begin_step()`` advances the counter on the host and copies the new seed over on the device's
stream. A forward in training calls it itself; while the device is captured into a CUDA graph
(``engine.cuda_graph``) the forward only launches, and the replay calls ``begin_step()`` before each replay,
so a replayed step draws the same fresh mask an eager step would.
"""

from __future__ import annotations

import numpy as np

from .base import Layer


class Dropout(Layer):
    """In training, zero each value with probability ``p`` and scale the rest by 1/(1-p); in eval, the identity."""

    def __init__(self, p: float = 0.5, seed: int = 0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p, self.seed, self._calls = float(p), int(seed), 0
        self._seed_host = np.zeros(1, np.int64)  # pageable: the driver stages it before the copy call returns

    def forward(self, x):
        dev = self.device_for(x)
        self._dev = dev
        if not self.training or self.p == 0.0:
            self._identity = True
            return x
        self._identity = False
        y, mask = self._buffer(dev, "y", x.shape), self._buffer(dev, "mask", x.shape)
        seed = self._buffer(dev, "seed", (1,), np.int64)
        if not dev.capturing:
            self.begin_step()
        dev.kernels.dropout_forward(y, mask, x, self.p, seed)
        return y

    @property
    def draws_per_step(self) -> bool:
        """True when a training forward draws a mask (so a replayed step must call ``begin_step``)."""
        return self.training and self.p > 0.0

    def begin_step(self) -> None:
        """Advance to the next mask (a fresh mask every step, the same sequence of masks every run) and copy its
        seed into the device buffer the kernel reads."""
        self._calls += 1
        self._seed_host[0] = self.seed * 1_000_003 + self._calls
        dev = self._dev
        dev.copy_from_host(self._buffer(dev, "seed", (1,), np.int64), self._seed_host)

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
