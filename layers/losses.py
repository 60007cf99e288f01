"""Losses: SoftmaxCrossEntropy (integer class labels) and MSELoss, both the mean over the batch.

``forward`` returns a Python float: the one scalar a training step copies back to the host.
``forward_device`` computes the same loss and leaves it on the device, as a (1,) array, with no copy back
and nothing else done on the host: what a step captured into a CUDA graph calls (engine/cuda_graph.py), which
reads the loss back once after each replay (``check_loss`` then makes the same finiteness check).
"""

from __future__ import annotations

import math

import numpy as np

from runtime.device import host_device

from .base import Layer


def check_loss(owner: str, value: float) -> float:
    """``value`` when it is finite; else the FloatingPointError a diverged step raises."""
    if not math.isfinite(value):
        raise FloatingPointError(f"{owner}: the loss is {value} (diverged, or a label out of range)")
    return value


class Loss(Layer):
    """A loss: ``forward(prediction, target)`` returns the mean loss as a float; ``backward()`` its gradient.
    ``forward_device(prediction, target)`` leaves it on the device as a (1,) array (no copy back)."""

    def forward(self, prediction, target) -> float:
        """The mean loss as a float (one copy back from the device); FloatingPointError when it is not finite."""
        loss = self.forward_device(prediction, target)
        return check_loss(type(self).__name__, float(self._dev.to_numpy(loss)[0]))

    def forward_device(self, prediction, target):
        """The mean loss as a (1,) array on the device, nothing copied back (what a CUDA-graph step calls)."""
        raise NotImplementedError

    @property
    def last_labels(self):
        """The class labels of the last forward, as int32 on the device (None for a loss without classes)."""
        return None


class SoftmaxCrossEntropy(Loss):
    """Softmax then cross-entropy against integer class labels, the mean over the batch; PyTorch's
    ``CrossEntropyLoss``. ``forward(logits, labels)`` returns a float; ``backward()`` d(loss)/d(logits)."""

    def forward_device(self, logits, labels):
        """The mean loss as a (1,) array on the device, nothing copied back. Labels given as int32 on the device
        are used as they are (a captured step's static label buffer, checked when it was filled); host labels
        are checked and copied over first."""
        dev = self.device_for(logits)
        self._expect(logits, 2, "(batch, classes)")
        n, c = logits.shape
        labels = self._labels_int32(dev, labels, n, c)
        loss, rows = self._buffer(dev, "loss", (1,)), self._buffer(dev, "row_losses", (n,))
        probs = self._buffer(dev, "probs", (n, c))
        dev.kernels.softmax_cross_entropy_forward(loss, rows, probs, logits, labels)
        self._dev, self._labels = dev, labels
        self._out_shape = None  # what the guarded forward records: backward may follow
        return loss

    def _labels_int32(self, dev, labels, n, c):
        """Labels as int32 on the device, checked against [0, c) in the same pass that converts them (NumPy
        labels of any integer dtype; a device array of int32 labels is taken as it is)."""
        if not isinstance(labels, np.ndarray):
            if dev.owns(labels) and labels.dtype == np.int32 and tuple(labels.shape) == (n,):
                return labels
            labels = np.asarray(dev.to_numpy(labels))
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise ValueError(f"SoftmaxCrossEntropy: labels must be {n} integers, got {labels.dtype} {labels.shape}")
        host_dev = host_device()  # labels are checked and converted on the host, whatever computes the loss
        host = self._buffer(host_dev, "labels_host", (n,), np.int32)
        if host_dev.kernels.copy_labels_checked(host, labels, c):
            raise ValueError(f"SoftmaxCrossEntropy: labels must lie in [0, {c}), "
                             f"got [{labels.min()}, {labels.max()}]")
        if dev.name != "cuda":
            return host
        buf = self._buffer(dev, "labels", (n,), np.int32)
        dev.copy_from_host(buf, host)  # on the device's stream; a pageable source, staged before this returns
        return buf

    @property
    def last_labels(self):
        return self._labels

    def backward(self, dy=None):
        """d(mean loss)/d(logits); ``dy`` (the upstream scalar gradient) defaults to 1."""
        probs = self._buffers["probs"]
        dlogits = self._buffer(self._dev, "dlogits", probs.shape)
        scale = (1.0 if dy is None else float(dy)) / probs.shape[0]
        self._dev.kernels.softmax_cross_entropy_backward(dlogits, probs, self._labels, scale)
        return dlogits


class MSELoss(Loss):
    """The mean of (prediction - target)^2 over every element; ``forward(pred, target)`` returns a float."""

    def forward(self, pred, target) -> float:
        """The mean squared error as a float (one copy back from the device)."""
        loss = self.forward_device(pred, target)
        return float(self._dev.to_numpy(loss)[0])  # not checked for finiteness, as before

    def forward_device(self, pred, target):
        """The mean squared error as a (1,) array on the device, nothing copied back."""
        dev = self.device_for(pred)
        target = dev.asarray(target)
        if tuple(target.shape) != tuple(pred.shape):
            raise ValueError(f"MSELoss: target shape {tuple(target.shape)} != prediction shape {tuple(pred.shape)}")
        loss, sq = self._buffer(dev, "loss", (1,)), self._buffer(dev, "squared_error", pred.shape)
        dev.kernels.mse_forward(loss, sq, pred, target)
        self._dev, self._pred, self._target = dev, pred, target
        self._out_shape = None  # what the guarded forward records: backward may follow
        return loss

    def backward(self, dy=None):
        dpred = self._buffer(self._dev, "dpred", self._pred.shape)
        self._dev.kernels.mse_backward(dpred, self._pred, self._target)
        if dy is not None and float(dy) != 1.0:
            self._dev.kernels.scale(dpred, dpred, float(dy))
        return dpred
