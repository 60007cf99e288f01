"""The training loop: ``fit`` and ``evaluate``, seeded and reproducible.

A NaN or infinite loss stops training with an error; with a checkpoint path, the last good
checkpoint (written at the end of the previous epoch) stays intact.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .data import Dataset, batches


def evaluate(model, loss_layer, dataset: Dataset, batch_size: int = 256) -> dict:
    """Mean loss and accuracy over a dataset, in eval mode (dropout off); the model's mode is restored."""
    dev = model.device
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    try:
        for xb, yb in batches(dataset, batch_size, shuffle=False):
            logits = model.forward(dev.asarray(xb))
            total_loss += loss_layer.forward(logits, yb) * len(yb)
            correct += int((dev.to_numpy(logits).argmax(axis=1) == yb).sum())
    finally:
        if was_training:
            model.train()
    return {"loss": total_loss / len(dataset), "accuracy": correct / len(dataset)}


def fit(model, loss_layer, optimizer, train_data: Dataset, epochs: int, batch_size: int = 64,
        eval_data: Dataset | None = None, callbacks: list[Callable] = (), seed: int = 0,
        checkpoint: str | None = None, start_epoch: int = 0) -> list[dict]:
    """Train for ``epochs``; returns one record per epoch (loss, accuracy, samples/s, seconds).

    Each callback is called as ``callback(event, info)`` with event "batch" (after every step) or
    "epoch" (after every epoch, with the record).
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"fit: epochs and batch_size must be positive, got {epochs} and {batch_size}")
    dev = model.device
    history = []
    model.train()
    for epoch in range(start_epoch, start_epoch + epochs):
        start = time.perf_counter()
        seen, loss_sum, correct = 0, 0.0, 0
        for step, (xb, yb) in enumerate(batches(train_data, batch_size, seed=seed, epoch=epoch)):
            logits = model.forward(dev.asarray(xb))
            loss = loss_layer.forward(logits, yb)  # raises FloatingPointError on NaN / inf
            model.backward(loss_layer.backward())
            optimizer.step()
            seen += len(yb)
            loss_sum += loss * len(yb)
            correct += _count_correct(dev, loss_layer, logits)
            for callback in callbacks:
                callback("batch", {"epoch": epoch, "step": step, "loss": loss, "seen": seen,
                                   "total": len(train_data), "seconds": time.perf_counter() - start})
        dev.synchronize()
        seconds = time.perf_counter() - start
        record = {"epoch": epoch + 1, "loss": loss_sum / seen, "train_accuracy": correct / seen,
                  "samples_per_s": seen / seconds, "seconds": seconds}
        if eval_data is not None:
            result = evaluate(model, loss_layer, eval_data)
            record.update(test_loss=result["loss"], test_accuracy=result["accuracy"])
        history.append(record)
        if checkpoint:
            from .checkpoint import save

            save(checkpoint, model, optimizer, extra={"epoch": epoch + 1, "seed": seed})
        for callback in callbacks:
            callback("epoch", record)
    return history


def _count_correct(dev, loss_layer, logits) -> int:
    """Correct predictions in the batch, counted on the device: one int32 comes back, not the logits."""
    labels = getattr(loss_layer, "_labels", None)
    if labels is None:  # not a classification loss
        return 0
    n = logits.shape[0]
    pred = loss_layer._buffer(dev, "predictions", (n,), np.int32)
    count = loss_layer._buffer(dev, "correct", (1,), np.int32)
    dev.kernels.argmax_rows(pred, logits)
    dev.kernels.count_equal(count, pred, labels)
    return int(dev.to_numpy(count)[0])


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(logits).argmax(axis=1) == labels).mean())
