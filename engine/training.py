"""The training loop: ``fit`` and ``evaluate``, seeded and reproducible.

A NaN or infinite loss stops training with an error; with a checkpoint path, the last good
checkpoint (written at the end of the previous epoch) stays intact.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from layers.losses import Loss

from .data import Dataset, batches
from .distributed import check_allreduce_options, data_fingerprint, get_world, make_reducer, model_fingerprint
from .staging import BatchStager


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


def _one_writer(fit):
    """``fit`` holds its checkpoint file's writer lock (engine.outputs) while it trains: a second ``fit`` or
    ``train`` on the same file, in any process, is refused in one line before its first step."""
    import functools
    import inspect

    signature = inspect.signature(fit)

    @functools.wraps(fit)
    def locked(*args, **kwargs):
        checkpoint = signature.bind(*args, **kwargs).arguments.get("checkpoint")
        if not checkpoint or not get_world().is_root:
            return fit(*args, **kwargs)
        from .outputs import writing

        with writing(checkpoint):
            return fit(*args, **kwargs)
    return locked


@_one_writer
def fit(model, loss_layer, optimizer, train_data: Dataset, epochs: int, batch_size: int = 64,
        eval_data: Dataset | None = None, callbacks: list[Callable] = (), seed: int = 0,
        checkpoint: str | None = None, start_epoch: int = 0, allreduce: str = "overlap",
        bucket_mb: float = 1.0, cuda_graph: bool | None = None, clip_grad: float | None = None) -> list[dict]:
    """Train for ``epochs``; returns one record per epoch (loss, accuracy, samples/s, seconds).

    ``cuda_graph``: capture each batch shape's whole step (forward, loss, backward, update) as one CUDA graph
    and replay it (``engine.cuda_graph.CapturedStep``): the default on a real GPU (``None``), off in the
    simulator and on the CPU unless asked (``True`` in the simulator emulates the graph; on the CPU it is an
    error). Distributed training runs eagerly (its allreduce is host-driven).

    Each callback is called as ``callback(event, info)`` with event "batch" (after every step) or
    "epoch" (after every epoch, with the record).

    Under ``mpiexec -n N`` (engine/distributed.py) ``batch_size`` is the global batch: each rank trains
    on its share and the gradients are averaged over the ranks every step: ``allreduce="overlap"`` in
    buckets of about ``bucket_mb`` MiB, each started while backward computes the layers below it;
    ``"blocking"`` in one allreduce after backward. The ranks must agree on the batch size, the training
    data and the model, or fit stops with one error before the first step.

    ``clip_grad``: before every update, scale the gradients so that their global L2 norm is at most this
    (``engine.clip_grad_norm``, PyTorch's ``clip_grad_norm_``); a clipped step reads the norm back, so it runs
    eagerly (no CUDA graph).
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"fit: epochs and batch_size must be positive, got {epochs} and {batch_size}")
    check_allreduce_options(allreduce, bucket_mb)
    if clip_grad is not None:
        finite = isinstance(clip_grad, (int, float)) and not isinstance(clip_grad, bool) and math.isfinite(clip_grad)
        if not finite or clip_grad <= 0:
            raise ValueError(f"fit: clip_grad must be a positive finite number, got {clip_grad!r}")
        if cuda_graph:
            raise ValueError("fit: clip_grad reads the gradient norm back every step; it runs without cuda_graph")
        cuda_graph = False
    dev = model.device
    history = []
    stage, counter = BatchStager(dev).stage, _CorrectCounter(dev)
    world = get_world()
    if world.distributed:
        if batch_size % world.size:
            raise ValueError(f"the global batch size {batch_size} does not divide evenly among {world.size} ranks")
        world.check_agreement({"the global batch size": batch_size, "the training data": data_fingerprint(train_data),
                               "the model": model_fingerprint(model), "the allreduce": (allreduce, bucket_mb)})
        world.broadcast_(dev, model.flat.data)  # every replica starts from rank 0's parameters
    reducer = make_reducer(world, model, allreduce, bucket_mb).attach() if world.distributed else None
    graph_step = _graph_step(model, loss_layer, optimizer, cuda_graph, world.distributed)
    model.train()
    for epoch in range(start_epoch, start_epoch + epochs):
        start = time.perf_counter()
        seen, loss_sum = 0, 0.0
        if graph_step is not None:
            graph_step.reset_correct()
        for step, (xb, yb) in enumerate(batches(train_data, batch_size, seed=seed, epoch=epoch)):
            # three modes: the whole step as one graph replay (its first batch of a shape runs eagerly), the ranks'
            # share with gradients averaged over them, or one eager step
            if graph_step is not None:
                loss = graph_step.step(xb, yb)
            elif reducer is not None:
                loss = _distributed_step(world, reducer, model, loss_layer, optimizer, stage, counter, xb, yb, step,
                                         clip_grad)
            else:
                loss = _eager_step(model, loss_layer, optimizer, stage(xb), yb, counter, step, clip_grad)
            seen += len(yb)
            loss_sum += loss * len(yb)
            for callback in callbacks:
                callback("batch", {"epoch": epoch, "step": step, "loss": loss, "seen": seen,
                                   "total": len(train_data), "seconds": time.perf_counter() - start})
        dev.synchronize()
        seconds = time.perf_counter() - start
        correct = graph_step.read_correct() if graph_step is not None else counter.read()
        record = {"epoch": epoch + 1, "loss": loss_sum / seen, "train_accuracy": world.sum(correct) / seen,
                  "samples_per_s": seen / seconds, "seconds": seconds}
        if eval_data is not None:
            result = evaluate(model, loss_layer, eval_data)
            record.update(test_loss=result["loss"], test_accuracy=result["accuracy"])
        history.append(record)
        if checkpoint and world.is_root:  # one writer; the file is replaced atomically
            from .checkpoint import save

            save(checkpoint, model, optimizer, extra={"epoch": epoch + 1, "seed": seed, "batch_size": batch_size})
        for callback in callbacks:
            callback("epoch", record)
    if reducer is not None:
        reducer.detach()
    return history


def _eager_step(model, loss_layer, optimizer, x, yb, counter, step: int, clip_grad=None) -> float:
    """Forward, loss (raises FloatingPointError on NaN / inf), backward, correct predictions counted, the
    gradients clipped (``clip_grad``), update."""
    logits = model.forward(x)
    loss = loss_layer.forward(logits, yb)
    model.backward(loss_layer.backward())
    counter.add(logits, loss_layer.last_labels if isinstance(loss_layer, Loss) else None, first=step == 0)
    _clip(optimizer, clip_grad)
    optimizer.step()
    return loss


def _clip(optimizer, clip_grad) -> None:
    if clip_grad is not None:
        from .clipping import clip_grad_norm

        clip_grad_norm(optimizer, clip_grad)


def _distributed_step(world, reducer, model, loss_layer, optimizer, stage, counter, xb, yb, step: int,
                      clip_grad=None) -> float:
    """This rank's share of the global batch; backward starts each bucket's allreduce as soon as it is complete,
    and the update waits for the global mean gradient. Returns the global mean loss (each rank weighted by its
    share; a final short batch can leave a rank without samples: it contributes zeros)."""
    lo, hi = world.share(len(yb))
    share = (hi - lo) / len(yb)
    reducer.begin(share)
    if hi > lo:
        logits = model.forward(stage(xb[lo:hi]))
        loss = loss_layer.forward(logits, yb[lo:hi])
        model.backward(loss_layer.backward())
        counter.add(logits, loss_layer.last_labels if isinstance(loss_layer, Loss) else None, first=step == 0)
    else:
        loss = 0.0
        model.device.kernels.fill(model.flat.grad, 0.0)
    reducer.wait()
    loss = world.sum(loss * share)
    _clip(optimizer, clip_grad)  # the global mean gradient, the same on every rank
    optimizer.step()
    return loss


def _graph_step(model, loss_layer, optimizer, cuda_graph, distributed):
    """The CapturedStep fit runs when CUDA graphs are on (see fit's ``cuda_graph``), else None."""
    dev = model.device
    if cuda_graph is None:
        cuda_graph = dev.name == "cuda" and not dev.simulator and not distributed and hasattr(
            loss_layer, "forward_device")
    if not cuda_graph:
        return None
    if dev.name != "cuda":
        raise ValueError(f"fit: cuda_graph=True needs a cuda device, the model is on {dev!r}")
    if distributed:
        raise ValueError("fit: cuda_graph=True is for one process; distributed training runs eagerly")
    from .cuda_graph import CapturedStep

    return CapturedStep(model, loss_layer, optimizer)


class _CorrectCounter:
    """Counts correct predictions on the device over an epoch: one int32 read per epoch, not per step."""

    def __init__(self, dev):
        self.dev, self.count, self.predictions = dev, dev.zeros((1,), np.int32), {}
        self.used = False

    def add(self, logits, labels, first: bool) -> None:
        if labels is None:  # not a classification loss
            return
        n = logits.shape[0]
        if n not in self.predictions:  # one buffer per batch size (the last batch may be short)
            self.predictions[n] = self.dev.empty((n,), np.int32)
        pred = self.predictions[n]
        self.dev.kernels.argmax_rows(pred, logits)
        self.dev.kernels.count_equal(self.count, pred, labels, accumulate=not first)
        self.used = True

    def read(self) -> int:
        return int(self.dev.to_numpy(self.count)[0]) if self.used else 0


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(logits).argmax(axis=1) == labels).mean())
