"""A model's summary: each layer, its output shape and parameter count, and the total (Keras' ``summary``,
torchinfo's ``summary`` for PyTorch), worked out by running one sample through the model in eval mode."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import layers as L
from runtime.device import Device

from .graph import Graph
from .inference import input_shape as expected_input_shape
from .inference import model_layers

LAYER_WIDTH = 46  # the layer column; the whole table stays within 100 columns


@dataclass
class ModelSummary:
    """``rows``: (index, layer, output shape for a batch of one, parameter count); ``str()`` is the table, the
    batch axis written N (N*64 where a layer folds 64 time steps into the rows)."""

    input_shape: tuple
    rows: list = field(default_factory=list)

    @property
    def total_parameters(self) -> int:
        return sum(row[3] for row in self.rows)

    def __str__(self) -> str:
        lines = [f"{'#':>3}  {'layer':<{LAYER_WIDTH}}  {'output shape':<22}  {'parameters':>12}"]
        lines.append(f"{'':>3}  {'input':<{LAYER_WIDTH}}  {_shape_text((1, *self.input_shape))}")
        for index, layer, shape, count in self.rows:
            lines.append(f"{index:>3}  {_clip(layer, LAYER_WIDTH):<{LAYER_WIDTH}}  {_shape_text(shape):<22}  "
                         f"{count:>12,}")
        total = self.total_parameters
        lines.append(f"total: {total:,} parameters ({_size(4 * total)} in float32; Adam's state adds twice that)")
        return "\n".join(lines)


def _shape_text(shape) -> str:
    """A batch-of-one shape with its batch axis named: (1, 8, 64) -> (N, 8, 64), (64, 256) -> (N*64, 256)."""
    if shape == ("?",):
        return "?"
    lead = "N" if shape[0] == 1 else f"N*{shape[0]}"
    return "(" + ", ".join([lead, *map(str, shape[1:])]) + ")"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _size(nbytes: int) -> str:
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"


# PyTorch's argument names, shortened so that a layer fits its column; bias=True (the default) is left out
_SHORT = {"in_features": "in", "out_features": "out", "in_channels": "in", "out_channels": "out",
          "kernel_size": "k", "input_size": "in", "hidden_size": "hidden", "num_embeddings": "n",
          "embedding_dim": "dim", "normalized_shape": "d"}


def _describe(layer) -> str:
    args = ", ".join(f"{_SHORT.get(k, k)}={v}" for k, v in layer.config().items()
                     if k not in ("device", "seed") and not (k == "bias" and v is True))
    return f"{type(layer).__name__}({args})"


def summary(model, input_shape=None) -> ModelSummary:
    """Each layer of ``model`` with its output shape for inputs of ``input_shape`` (one sample's shape, no
    batch axis, e.g. ``(1, 28, 28)``; read from the first layer when it says, as for Dense and Conv2D) and
    its parameter count. ``print(engine.summary(model, (8, 8)))`` prints the table (within 100 columns).
    A shape the model cannot take is the first layer's one-line error, naming that layer."""
    layers_run = model_layers(model)
    if input_shape is None:
        input_shape = expected_input_shape(model)
        if input_shape is None or None in input_shape:
            raise ValueError("summary: give input_shape, one sample's shape without the batch axis (e.g. (8, 8) "
                             "for 8 time steps of 8 features): the first layer does not fix it")
    input_shape = tuple(int(s) for s in input_shape)
    result = ModelSummary(input_shape)
    if isinstance(model, Graph):  # one forward of the whole DAG; each node's value is kept by the graph
        _run(model, model, input_shape)
        for index, (name, (layer, _)) in enumerate(model.nodes.items()):
            result.rows.append((index, f"{name}: {_describe(layer)}", tuple(model._values[name].shape),
                                sum(p.size for p in layer.parameters())))
        return result
    x = None
    for index, layer in enumerate(layers_run):
        x = _run(model, layer, input_shape, x)
        result.rows.append((index, _describe(layer), tuple(x.shape), sum(p.size for p in layer.parameters())))
    return result


def _run(model, layer, input_shape, x=None):
    """``layer.forward`` in eval mode on ``x`` (or a batch of one zero sample: ids for an Embedding)."""
    if x is None:
        first = model_layers(model)[0]
        if isinstance(first, L.Embedding):
            x = np.zeros((1, *input_shape), np.int32)
        else:
            dev = model.device if model.device is not None else Device("cpu")
            x = dev.asarray(np.zeros((1, *input_shape), np.float32))
    was_training = layer.training
    layer.eval()
    try:
        return layer.forward(x)
    finally:
        if was_training:
            layer.train()
