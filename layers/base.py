"""The layer protocol every layer follows (``Parameter`` lives in the runtime, below the layers).

A layer's ``forward(x)`` takes and returns arrays on its device and saves what ``backward`` needs;
``backward(dy)`` returns dx and overwrites its parameters' ``.grad``. Buffers (outputs, workspaces,
gradients) are allocated at the first call for a batch shape and reused while the shape stays the
same, so a steady-state training step allocates nothing.
"""

from __future__ import annotations

import math

import numpy as np

from runtime.device import Device, device_of
from runtime.parameters import Parameter


def uniform_init(rng: np.random.Generator, shape, fan_in: int) -> np.ndarray:
    """PyTorch's default for Linear/Conv/RNN: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape)


class Layer:
    """Base class: parameters, train/eval mode, per-shape buffers."""

    device: Device | None = None

    def __init__(self):
        self.training = True
        self.needs_input_grad = True  # Sequential turns it off for its first layer: no dx for the data
        self._buffers: dict[str, object] = {}
        self._buffer_devices: dict[str, str] = {}  # the device kind each buffer was made for

    # -- the protocol --------------------------------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def parameters(self) -> list[Parameter]:
        return []

    def config(self) -> dict:
        """Constructor arguments, for checkpoints (the architecture is rebuilt from them)."""
        return {}

    def state_arrays(self) -> dict:
        """Arrays that are not parameters but belong in a checkpoint (e.g. running statistics)."""
        return {}

    def random_state(self) -> int | None:
        """Where this layer's random stream stands (None: it draws no random numbers); saved in checkpoints."""
        return None

    def set_random_state(self, state: int) -> None:
        """Continue the random stream from ``state`` (what ``random_state`` returned); no-op without one."""

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self

    def __call__(self, x):
        return self.forward(x)

    # -- helpers -------------------------------------------------------------------------------------
    def device_for(self, x) -> Device:
        """A layer with parameters computes on its own device; a parameter-free one on its input's."""
        if self.device is not None:
            self.device.check_owns(f"{type(self).__name__}.forward", x)
            return self.device
        return device_of(x)

    def _buffer(self, device: Device, name: str, shape, dtype=None):
        """A buffer reused while its shape stays the same (the memory plan)."""
        buf = self._buffers.get(name)
        # Fast path, every steady-state call (~0.4 us; the checks below cost 1.6): the same device kind
        # as last time, and the same shape and dtype.
        if buf is not None and self._buffer_devices.get(name) == device.name and buf.shape == shape \
                and buf.dtype == (device.float_dtype if dtype is None else dtype):
            return buf
        shape = tuple(int(s) for s in shape)
        dtype = device.float_dtype if dtype is None else np.dtype(dtype)
        if buf is None or tuple(buf.shape) != shape or buf.dtype != dtype or not device.owns(buf):
            buf = device.empty(shape, dtype)
            self._buffers[name] = buf
        self._buffer_devices[name] = device.name
        return buf

    def _expect(self, x, ndim: int, what: str, fixed: dict | None = None):
        """One clear error for an input of the wrong rank or size (``fixed`` maps axis -> size)."""
        if len(x.shape) != ndim or any(x.shape[axis] != size for axis, size in (fixed or {}).items()):
            raise ValueError(f"{type(self).__name__}.forward: expected {what}, got shape {tuple(x.shape)}")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"
