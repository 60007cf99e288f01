"""One flat buffer for all of a model's parameters (and one for their gradients).

Each Parameter's ``data`` and ``grad`` become views into slices of the two flat buffers, so an
optimizer updates the whole model in one kernel launch (llm.c's layout). Moving into the flat buffers
copies the current values; layers keep working since they only hold Parameter objects.

Each parameter's slice starts on a cache line: slices are padded to a multiple of SLICE_FLOATS floats
(64 bytes; the buffers themselves are 64-byte aligned, see engine/device.py), so a kernel that reads a
weight or writes its gradient never splits a vector access across two lines. The padding is zero in
both buffers and stays zero: no kernel writes a gradient there, and an optimizer step maps a zero
parameter with a zero gradient (and zero state) to zero.
"""

from __future__ import annotations

SLICE_FLOATS = 16  # 64 bytes of float32


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
        owner = getattr(self.params[0], "_flat", None)
        return owner is not None and all(getattr(p, "_flat", None) is owner for p in self.params) and \
            owner.size == self.size

    def _move_into_flat_buffers(self) -> None:
        dev = self.device
        self.data = dev.zeros((self.size,))
        self.grad = dev.zeros((self.size,))
        for p, data_view, grad_view in zip(self.params, flat_views(self.data, self.params),
                                           flat_views(self.grad, self.params)):
            dev.copy(data_view, p.data)
            dev.copy(grad_view, p.grad)
            p.data, p._grad, p._flat = data_view, grad_view, self

    def __getattr__(self, name):
        # an already-flat set shares the buffers of the set that flattened it first
        if name in ("data", "grad"):
            return getattr(self.params[0]._flat, name)
        raise AttributeError(name)
