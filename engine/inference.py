"""Inference: load a classifier from a checkpoint, check inputs against what it expects, and predict
classes and probabilities in batches, in eval mode.

What a model expects is read from its layers, not from a recipe: a first ``Dense(in_features, ...)``
takes (N, in_features), a first ``RNN(input_size, ...)`` (N, T, input_size) for any T, a first
``Conv2D(in_channels, ...)`` (N, in_channels, H, W) with the H and W that lead to the ``Dense`` after
its ``Flatten`` (28x28 for LeNet-5). ``predict`` with labels computes the loss and the accuracy the
way ``evaluate`` does (same batches, same kernels), so on the same device the numbers are the same.
"""

from __future__ import annotations

import math

import numpy as np

import layers as L
from cuda_kernels.shapes import conv_output_size, pool_output_size
from runtime.device import Device

from .checkpoint import CheckpointError, describe, load
from .graph import Graph

_SAME_SHAPE = (L.ReLU, L.Tanh, L.Sigmoid, L.Dropout)
_UNKNOWN = "unknown"  # a layer whose output shape this module cannot work out
_LARGEST_SIDE = 1024  # the image sides tried when a convolutional model's input size is worked out


def model_layers(model) -> list:
    """The layers a model runs, in order: a Sequential's layers, a Graph's nodes."""
    if isinstance(model, Graph):
        return [layer for layer, _ in model.nodes.values()]
    return list(getattr(model, "layers", [model]))


def _output_shape(layer, shape: tuple):
    """One sample's output shape for an input of ``shape`` (without the batch axis); None when the layer
    does not accept that shape, _UNKNOWN for a layer type not described here."""
    if isinstance(layer, L.Dense):
        return (layer.out_features,) if shape == (layer.in_features,) else None
    if isinstance(layer, (L.Conv2D, L.MaxPool2D, L.BatchNorm2D)):
        if len(shape) != 3:
            return None
        c, h, w = shape
        if isinstance(layer, L.BatchNorm2D):
            return shape if c == layer.channels else None
        if isinstance(layer, L.Conv2D):
            if c != layer.in_channels:
                return None
            c = layer.out_channels
            oh, ow = (conv_output_size(s, layer.kernel_size, layer.stride, layer.padding) for s in (h, w))
        else:
            oh, ow = (pool_output_size(s, layer.kernel_size, layer.stride) for s in (h, w))
        return (c, oh, ow) if oh >= 1 and ow >= 1 else None
    if isinstance(layer, L.Flatten):
        return (math.prod(shape),) if shape else None
    if isinstance(layer, L.LayerNorm):
        return shape if shape and shape[-1] == layer.normalized_shape else None
    if isinstance(layer, L.LastTimeStep):
        return (shape[1],) if len(shape) == 2 else None
    if hasattr(layer, "input_size") and hasattr(layer, "hidden_size"):  # RNN (and LSTM, GRU): (T, I) -> (T, H)
        return (shape[0], layer.hidden_size) if len(shape) == 2 and shape[1] == layer.input_size else None
    if isinstance(layer, _SAME_SHAPE):
        return shape
    return _UNKNOWN


def output_shape(model, sample_shape: tuple):
    """One sample's output shape when ``model`` reads samples of ``sample_shape`` (no batch axis); None
    when the model does not accept that shape, ``"unknown"`` when a layer's rule is not known here."""
    shape = tuple(int(s) for s in sample_shape)
    if isinstance(model, Graph):
        if len(model.inputs) != 1 or any(len(sources) != 1 for _, sources in model.nodes.values()):
            return _UNKNOWN  # a residual graph: shapes merge, not described here
    for layer in model_layers(model):
        shape = _output_shape(layer, shape)
        if shape is None or shape == _UNKNOWN:
            return shape
    return shape


def input_shape(model) -> tuple | None:
    """The shape of one sample ``model`` reads, without the batch axis, None for a free axis (an RNN's
    time steps); e.g. (1, 28, 28) for LeNet-5, (64,) for the MLP on digits, (None, 8) for the RNN.
    None when the first layer says nothing about it (a layer type this module does not know)."""
    for layer in model_layers(model):
        if isinstance(layer, L.Dense):
            return (layer.in_features,)
        if hasattr(layer, "input_size") and hasattr(layer, "hidden_size"):
            return (None, layer.input_size)
        if isinstance(layer, (L.Conv2D, L.BatchNorm2D)):
            channels = layer.in_channels if isinstance(layer, L.Conv2D) else layer.channels
            for side in range(1, _LARGEST_SIDE + 1):  # the smallest square image that leads through
                out = output_shape(model, (channels, side, side))
                if out == _UNKNOWN:
                    break
                if out is not None:
                    return (channels, side, side)
            return (channels, None, None)
        if not isinstance(layer, _SAME_SHAPE):
            return None
    return None


def shape_text(sample_shape) -> str:
    """A batch shape for messages: (N, 1, 28, 28), (N, T, 8)."""
    names = iter("THW")
    return "(" + ", ".join(["N"] + [next(names, "?") if s is None else str(s) for s in sample_shape]) + ")"


def check_inputs(model, x, what: str = "inputs") -> np.ndarray:
    """``x`` as a float32 NumPy batch ``model`` accepts, or one ``ValueError`` naming the expected shape
    and the one given. A single sample (one axis fewer than a batch) becomes a batch of one. Integer
    data is refused rather than guessed at: the models train on floats in [0, 1]."""
    x = np.asarray(x)
    if x.dtype.kind not in "f":
        raise ValueError(f"{what} must be floating-point (as the model was trained: float32 in [0, 1]), "
                         f"got {x.dtype}")
    expected, given = input_shape(model), x.shape
    if expected is not None and x.ndim == len(expected):
        x = x[None]
    if x.ndim < 1 or len(x) == 0:
        raise ValueError(f"{what}: no samples (shape {given})")
    if output_shape(model, x.shape[1:]) is None:
        wanted = shape_text(expected) if expected is not None else "another shape"
        raise ValueError(f"the model expects {what} of shape {wanted}, got {given}")
    return np.ascontiguousarray(x, dtype=np.float32)


def num_classes(model) -> int:
    """How many classes ``model`` scores: the length of its logits; ``ValueError`` for a model whose
    output is not one score per class (a regressor, a feature map)."""
    expected = input_shape(model)
    out = None
    if expected is not None:
        out = output_shape(model, tuple(8 if s is None else s for s in expected))
    if out is None or out == _UNKNOWN:
        last = model_layers(model)[-1]
        if isinstance(last, L.Dense):
            out = (last.out_features,)
        else:
            raise ValueError(f"not a classifier: its last layer is {type(last).__name__}, not a Dense layer "
                             "producing class scores")
    if len(out) != 1 or out[0] < 2:
        got = f"one value per sample, (N, {out[0]})" if len(out) == 1 else f"{len(out) + 1}-D arrays (N, {out[0]}, ...)"
        raise ValueError(f"not a classifier: it outputs {got}, and predicting classes needs logits (N, classes) "
                         "with at least 2 classes")
    return out[0]


def load_classifier(path, device: Device | str = "cpu"):
    """(model, meta) from a checkpoint ``engine.save`` or ``cli.py train`` wrote, in eval mode, checked to
    be a classifier (logits of shape (N, classes)); whatever is wrong is one ``ValueError`` naming the file."""
    model, meta = load(path, device=device)
    if isinstance(model, Graph) and len(model.inputs) != 1:
        raise CheckpointError(path, f"a graph with {len(model.inputs)} inputs; predicting needs one input")
    try:
        num_classes(model)
    except ValueError as exc:
        raise CheckpointError(path, f"{exc} ({describe(meta['architecture'])})") from None
    model.eval()
    return model, meta


def softmax(logits) -> np.ndarray:
    """Row-wise softmax of (N, C) logits on the host, float32, computed stably (the row maximum first)."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def predict(model, x, labels=None, batch_size: int = 256) -> dict:
    """Classes and probabilities for the samples ``x`` (a float batch; ``engine.inference.check_inputs``), in eval mode
    and in batches of ``batch_size``; the model's mode is restored.

    Returns ``classes`` (N,) int64 (the argmax of the logits), ``probabilities`` (N, C) float32 (their
    softmax) and ``logits`` (N, C) float32; with ``labels`` (N integers), also ``accuracy``, ``correct``
    and ``loss`` (mean cross-entropy), computed as ``evaluate`` computes them.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"predict: batch_size must be a positive integer, got {batch_size!r}")
    x = check_inputs(model, x)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(x),) or labels.dtype.kind not in "iu":
            raise ValueError(f"predict: labels must be {len(x)} integers (one per sample), got {labels.dtype} "
                             f"{labels.shape}")
    dev = model.device
    loss_layer = L.SoftmaxCrossEntropy() if labels is not None else None
    chunks, total_loss = [], 0.0
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(x), batch_size):
            logits = model.forward(dev.asarray(x[start:start + batch_size]))
            if loss_layer is not None:
                yb = labels[start:start + batch_size]
                total_loss += loss_layer.forward(logits, yb) * len(yb)
            chunks.append(np.array(dev.to_numpy(logits), dtype=np.float32))  # a copy: the buffer is reused
    finally:
        if was_training:
            model.train()
    logits = np.concatenate(chunks)
    result = {"classes": logits.argmax(axis=1).astype(np.int64), "probabilities": softmax(logits), "logits": logits}
    if labels is not None:
        correct = int((result["classes"] == labels).sum())
        result.update(correct=correct, accuracy=correct / len(x), loss=total_loss / len(x))
    return result


def dataset_for(model, dataset: str, data_dir=None, limit: int | None = None):
    """The test split ``cli.py train`` evaluates on for a model like ``model`` (its recipe is read from the
    first layer: Dense -> mlp, Conv2D -> lenet, RNN -> rnn), its first ``limit`` samples when given, checked
    against what the model expects (one ``ValueError`` when the data set does not fit the model)."""
    from .recipes import load_data

    recipe = None
    for layer in model_layers(model):
        if isinstance(layer, L.Embedding):
            raise ValueError("this checkpoint is a character-level language model, not a classifier of "
                             f"{dataset}: generate text from it with `sample --checkpoint F`")
        if isinstance(layer, L.Dense):
            recipe = "mlp"
        elif isinstance(layer, (L.Conv2D, L.BatchNorm2D)):
            recipe = "lenet"
        elif hasattr(layer, "input_size") and hasattr(layer, "hidden_size"):
            recipe = "rnn"
        if recipe is not None:
            break
    if recipe is None:
        first = type(model_layers(model)[0]).__name__
        raise ValueError(f"no {dataset} view fits this model: its first layer is {first}")
    _, test = load_data(recipe, dataset, data_dir)
    if limit is not None:
        test = test.head(limit)
    expected, got = input_shape(model), test.x.shape
    if output_shape(model, got[1:]) is None:
        raise ValueError(f"the {dataset} test set does not fit this model: it expects inputs of shape "
                         f"{shape_text(expected) if expected else '?'}, {dataset} gives {got}")
    return test
