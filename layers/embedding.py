"""Embedding: integer ids (N, ...) -> rows of a learned table (N, ..., embedding_dim); PyTorch's ``nn.Embedding``.

weight (num_embeddings, embedding_dim), initialized N(0, 1) as PyTorch does; a ``torch.nn.Embedding``'s
``weight`` loads as it is. Forward is ``embedding_forward`` (a gather), backward ``embedding_backward`` (a
scatter-add into weight.grad: an id that occurs k times gets the sum of its k rows of dy).

The ids are checked on the host, in the pass that converts them to int32 (``check_ids``, as the loss checks its
labels): integers, or floats holding integers (``fit`` stages every batch on a GPU as float32), all in
[0, num_embeddings). On a GPU that is one copy back to the host and one to the device per batch: a few
kilobytes, but a synchronization, the price of one clear error instead of an out-of-bounds read. A step
captured into a CUDA graph can read nothing back: there the ids come as int32 on the device, staged by
``engine.cuda_graph.CapturedStep``, which checks every batch on the host with ``check_ids`` before its copy.
"""

from __future__ import annotations

import numpy as np

from runtime.device import Device, host_device

from .base import Layer, Parameter, positive_int


class Embedding(Layer):
    """A lookup table: ids (batch, ...) of integers in [0, num_embeddings) -> (batch, ..., embedding_dim).

    PyTorch's ``nn.Embedding(num_embeddings, embedding_dim)``: ``weight`` is (num_embeddings, embedding_dim),
    initialized N(0, 1) from ``seed``. The ids are not differentiable: backward fills ``weight.grad`` and
    returns None, so the layer comes first in a model. Ids may be integer or integral float arrays, on the
    host (any device) or on the layer's device.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, device: Device | str = "cpu", seed: int = 0):
        super().__init__()
        self.device = device if isinstance(device, Device) else Device(device)
        self.num_embeddings = positive_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = positive_int("Embedding", "embedding_dim", embedding_dim)
        rng = np.random.default_rng(seed)
        self.weight = Parameter(rng.standard_normal((self.num_embeddings, self.embedding_dim)), self.device,
                                "weight")

    def forward(self, x):
        """The rows of ``weight`` for the ids ``x`` (batch, ...): an array (batch, ..., embedding_dim)."""
        dev = self.device
        if not isinstance(x, np.ndarray):
            dev.check_owns("Embedding.forward", x)  # a device array must be on the layer's device
        if len(x.shape) < 1:
            raise ValueError(f"Embedding.forward: expected ids of shape (batch, ...), got shape {tuple(x.shape)}")
        ids = self._ids(dev, x)
        out = self._buffer(dev, "out", (*x.shape, self.embedding_dim))
        dev.kernels.embedding_forward(out.reshape(ids.size, self.embedding_dim), self.weight.data, ids)
        self._ids_used = ids
        return out

    def _ids(self, dev: Device, x):
        """``x`` as flat int32 ids on ``dev``, checked on the host: one clear error for a non-integer or an id
        out of [0, num_embeddings). Inside a graph capture, int32 ids already on the device are taken as they
        are (the capturing step checked them on the host when it staged them)."""
        if not isinstance(x, np.ndarray) and dev.capturing and x.dtype == np.int32:
            return x.reshape(x.size)  # a view: nothing allocated, nothing read back
        host = np.asarray(dev.to_numpy(x) if not isinstance(x, np.ndarray) else x)
        converted = self.check_ids(host)
        if dev.name != "cuda":
            return converted
        ids = self._buffer(dev, "ids", (converted.size,), np.int32)
        dev.copy_from_host(ids, converted)  # on the device's stream, never the legacy stream 0
        return ids

    def check_ids(self, ids: np.ndarray) -> np.ndarray:
        """Host ids (any shape) as flat int32 in a buffer of the layer's, or one clear error: a dtype that is not
        integer, floats that are not whole numbers, or an id outside [0, num_embeddings)."""
        kind = ids.dtype.kind
        if kind not in "iuf" or (kind == "f" and not np.array_equal(ids, np.floor(ids))):
            what = "non-integer values" if kind == "f" else f"dtype {ids.dtype}"
            raise TypeError(f"Embedding.forward: expected integer ids in [0, {self.num_embeddings}), got {what}")
        flat = ids.reshape(-1)
        n = flat.size
        converted = self._buffer(host_device(), "ids_host", (n,), np.int32)
        if kind == "f":  # integral floats (a GPU batch staged as float32): the range check below, then convert
            bad = n and (flat.min() < 0 or flat.max() >= self.num_embeddings)
            converted[...] = flat if not bad else 0
        else:
            bad = host_device().kernels.copy_labels_checked(converted, flat, self.num_embeddings)
        if bad:
            raise ValueError(f"Embedding.forward: ids must lie in [0, {self.num_embeddings}) (num_embeddings), "
                             f"got ids in [{flat.min():g}, {flat.max():g}]")
        return converted

    def backward(self, dy):
        """Fills ``weight.grad`` (the rows of ``dy`` summed per id) and returns None: ids have no gradient."""
        dev = self.device
        ids = self._ids_used
        dev.kernels.embedding_backward(self.weight.grad, dy.reshape(ids.size, self.embedding_dim), ids)
        return None

    def parameters(self):
        return [self.weight]

    def config(self):
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim}
