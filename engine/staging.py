"""Host batches to the device through pinned staging, shared by ``fit``'s eager path and the captured step.

One page-locked host array and one device buffer per (role, shape, dtype), reused every step, so a steady-state
GPU step allocates nothing; the copy is asynchronous, on the device's stream (inside a graph capture, a recorded
copy that re-reads the staging at every replay). A staging array is rewritten only at the next step, after that
step's loss was read back (which waits for the copy). On a cpu device the batch is used as it is.
"""

from __future__ import annotations

import numpy as np


class BatchStager:
    """``stage(host)``: the batch in its device buffer. ``buffers(role, shape, dtype)``: the (staging, device) pair
    for a caller that fills the staging itself (labels checked on the way, ids converted), then ``send``s it."""

    def __init__(self, dev):
        self.dev, self._pairs = dev, {}

    def buffers(self, role: str, shape, dtype=None) -> tuple:
        dtype = np.dtype(self.dev.float_dtype if dtype is None else dtype)
        key = (role, tuple(shape), dtype)
        pair = self._pairs.get(key)
        if pair is None:
            pair = self._pairs[key] = (self.dev.pinned_empty(shape, dtype), self.dev.empty(shape, dtype))
        return pair

    def send(self, staging, buffer):
        """The filled staging copied to its device buffer (asynchronously, on the device's stream)."""
        self.dev.copy_from_host(buffer, staging)
        return buffer

    def stage(self, host):
        """A float batch (any shape) in its device buffer, converted to the device's float type on the way."""
        if self.dev.name != "cuda":
            return self.dev.asarray(host)
        host = np.asarray(host)
        staging, buffer = self.buffers("batch", host.shape)
        np.copyto(staging, host, casting="same_kind")
        return self.send(staging, buffer)
