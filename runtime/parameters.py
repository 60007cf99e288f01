"""Parameters, and one flat buffer for all of a model's parameters (and one for their gradients).

Each Parameter's ``data`` and ``grad`` become views into slices of the two flat buffers, so an
optimizer updates the whole model in one kernel launch (llm.c's layout). Moving into the flat buffers
copies the current values; layers keep working since they only hold Parameter objects.

Each parameter's slice starts on a cache line: slices are padded to a multiple of SLICE_FLOATS floats
(64 bytes; the buffers themselves are 64-byte aligned, see runtime/device.py), so a kernel that reads a
weight or writes its gradient never splits a vector access across two lines. The padding is zero in
both buffers and stays zero: no kernel writes a gradient there, and an optimizer step maps a zero
parameter with a zero gradient (and zero state) to zero.
"""

from __future__ import annotations

import numpy as np

from .device import Device

SLICE_FLOATS = 16  # 64 bytes of float32


class Parameter:
    """A trainable array: ``.data``, ``.grad`` (same shape), ``.load(numpy)``, ``.numpy()``.

    Models and optimizers may move ``data`` and ``grad`` into slices of one flat buffer (one fused
    optimizer launch per step); the Parameter object stays the same, so layers never notice.
    """

    def __init__(self, data, device: Device, name: str = ""):
        self.device = device
        self.name = name
        self.data = device.asarray(data)
        self._grad = device.zeros(tuple(self.data.shape))
        self.flat_owner: FlatParameters | None = None  # the flat buffers holding data and grad, once moved

    @property
    def shape(self) -> tuple:
        """The parameter's shape."""
        return tuple(self.data.shape)

    @property
    def size(self) -> int:
        """The number of values."""
        return int(np.prod(self.shape))

    @property
    def grad(self):
        """The gradient, same shape as ``data``; each backward overwrites it."""
        return self._grad

    @grad.setter
    def grad(self, value):
        """Assigning a gradient copies it into this parameter's slot, where the next step reads it."""
        value = self.device.asarray(value) if isinstance(value, np.ndarray) and self.device.name != "cpu" else value
        self.device.check_owns(f"{self.name or 'parameter'}.grad", value)
        if tuple(value.shape) != self.shape:
            raise ValueError(f"{self.name or 'parameter'}.grad: expected shape {self.shape}, got {tuple(value.shape)}")
        self.device.copy(self._grad, value)

    def move_into(self, owner: FlatParameters, data_view, grad_view) -> None:
        """Live in ``owner``'s flat buffers from now on: the current values are copied into the views."""
        self.device.copy(data_view, self.data)
        self.device.copy(grad_view, self._grad)
        self.data, self._grad, self.flat_owner = data_view, grad_view, owner

    def load(self, array) -> None:
        """Copy a NumPy array in (shape- and dtype-checked)."""
        array = np.asarray(array)
        if array.shape != self.shape:
            raise ValueError(f"{self.name or 'parameter'}.load: expected shape {self.shape}, got {array.shape}")
        if not np.issubdtype(array.dtype, np.floating):
            raise TypeError(f"{self.name or 'parameter'}.load: expected a float array, got {array.dtype}")
        self.device.copy(self.data, np.ascontiguousarray(array, dtype=self.device.float_dtype))

    def numpy(self) -> np.ndarray:
        """A host copy of the values."""
        return np.array(self.device.to_numpy(self.data))

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, shape={self.shape}, device={self.device!r})"


def padded_size(size: int) -> int:
    """``size`` rounded up to a whole number of cache lines of floats."""
    return -(-size // SLICE_FLOATS) * SLICE_FLOATS


def flat_views(flat, params):
    """Views of ``flat`` shaped like each parameter, in order, each starting on a cache line."""
    views, offset = [], 0
    for p in params:
        views.append(flat[offset:offset + p.size].reshape(p.shape))
        offset += padded_size(p.size)
    return views


class FlatParameters:
    """The parameters of one model, living in one flat data buffer and one flat gradient buffer."""

    def __init__(self, params):
        params = list(params)
        if not params:
            raise ValueError("no parameters to optimize")
        devices = {p.device for p in params}
        if len(devices) != 1:
            raise ValueError(f"parameters live on several devices: {sorted(map(repr, devices))}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter is listed twice")
        self.params = params
        self.device = params[0].device
        self.size = sum(padded_size(p.size) for p in params)  # with the padding between slices
        if not self._already_flat():
            self._move_into_flat_buffers()

    def _already_flat(self) -> bool:
        owner = self.params[0].flat_owner
        return owner is not None and all(p.flat_owner is owner for p in self.params) and owner.size == self.size

    def _move_into_flat_buffers(self) -> None:
        dev = self.device
        self.data = dev.zeros((self.size,))
        self.grad = dev.zeros((self.size,))
        for p, data_view, grad_view in zip(self.params, flat_views(self.data, self.params),
                                           flat_views(self.grad, self.params)):
            p.move_into(self, data_view, grad_view)

    def __getattr__(self, name):
        # an already-flat set shares the buffers of the set that flattened it first
        if name in ("data", "grad"):
            return getattr(self.params[0].flat_owner, name)
        raise AttributeError(name)
