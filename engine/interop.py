"""Interop with PyTorch: load a ``state_dict`` into a tilegrad model of the same architecture, and export
one (``state_dict``) that ``torch_model.load_state_dict`` takes.

tilegrad's layers keep PyTorch's weight layouts (``Dense`` is ``nn.Linear``: weight (out, in);
``Conv2D`` is ``nn.Conv2d``: weight (out, in, k, k); ``BatchNorm2D`` is ``nn.BatchNorm2d`` with its
running statistics; a recurrent layer's ``weight_ih``/``weight_hh`` are PyTorch's), so a state_dict
maps onto a model's parameters in order, tensor by tensor, each shape checked. One exception: tilegrad's
``RNN`` has a single bias, PyTorch's ``nn.RNN`` two (``bias_ih`` and ``bias_hh``, always added
together), so that bias is loaded as their sum. torch itself is never imported: the values may be
tensors (on any device) or NumPy arrays.
"""

from __future__ import annotations

import re

import numpy as np

import layers as L
from runtime.device import host_device

from .graph import Graph
from .inference import model_layers

# PyTorch's names for what a tensor is; a state_dict entry whose kind differs from the parameter it would
# load into is a mismatch even when the shapes agree
_KINDS = {"weight", "bias", "running_mean", "running_var", "weight_ih", "weight_hh", "bias_ih", "bias_hh"}
_SKIPPED = ("num_batches_tracked",)  # BatchNorm's step counter: tilegrad keeps none


def _kind(name: str) -> str:
    """``features.0.weight`` -> weight, ``rnn.bias_ih_l0`` -> bias_ih (layer and direction suffixes dropped)."""
    return re.sub(r"_l\d+(_reverse)?$", "", name.rpartition(".")[2])


def _host(value) -> np.ndarray:
    """A state_dict value (tensor, CuPy or NumPy array) as a NumPy array on the host."""
    if isinstance(value, np.ndarray):
        return value
    array = host_device().asarray(value)
    return np.asarray(array)


def _targets(model) -> list[tuple]:
    """(label, kind, shape, load) for each parameter and state array of ``model``, in order; an RNN's
    bias is marked "summed bias" (PyTorch's bias_ih + bias_hh)."""
    targets = []
    for index, layer in enumerate(model_layers(model)):
        owner = f"layer {index} ({type(layer).__name__})"
        for p in layer.parameters():
            kind = "summed bias" if type(layer) is L.RNN and p is layer.bias else p.name
            targets.append((f"{owner} {p.name}", kind, p.shape, p.load))
        for name, buf in layer.state_arrays().items():
            def load_state(value, buf=buf, layer=layer):
                layer.device_for(buf).copy(buf, np.ascontiguousarray(value, dtype=buf.dtype))
            targets.append((f"{owner} {name}", name, tuple(buf.shape), load_state))
    return targets


def _shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _check(name: str, value: np.ndarray, label: str, shape: tuple) -> None:
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"state_dict['{name}'] has shape {_shape(value.shape)}, but {label} has shape "
                         f"{_shape(shape)}")
    if value.dtype.kind != "f":
        raise ValueError(f"state_dict['{name}'] holds {value.dtype} values, {label} needs floats")


def load_state_dict(model, state_dict) -> dict:
    """Load a PyTorch ``state_dict`` (or a module that has one) into ``model``, a tilegrad model of the
    same architecture; returns {state_dict name: the parameter it went into}.

    Entries go onto the model's parameters and state arrays (BatchNorm's running statistics) in order,
    matched by position and checked by shape: the first mismatch, or a count that differs, is one
    ``ValueError`` naming the entry and the parameter, and nothing is loaded. Values may be PyTorch
    tensors (on any device), CuPy or NumPy arrays. BatchNorm's ``num_batches_tracked`` is skipped.
    tilegrad's ``RNN`` has one bias where ``nn.RNN`` has two: it gets ``bias_ih + bias_hh`` (the same
    sum PyTorch adds at every step); an ``nn.RNN(bias=False)`` leaves it zero. A stacked
    ``nn.RNN(num_layers=2)`` maps onto two RNN layers in a row.
    """
    if callable(getattr(state_dict, "state_dict", None)):
        state_dict = state_dict.state_dict()
    entries = [(str(name), value) for name, value in state_dict.items()
               if not str(name).endswith(_SKIPPED)]
    plan, position = [], 0  # (label, the entries used, the value, how to load it)
    for label, kind, shape, load in _targets(model):
        name = entries[position][0] if position < len(entries) else None
        if kind == "summed bias":  # tilegrad's RNN: bias = bias_ih + bias_hh
            if name is None or _kind(name) in _KINDS - {"bias", "bias_ih"}:  # nn.RNN(bias=False)
                plan.append((label, [], np.zeros(shape, np.float32), load))
                continue
            if _kind(name) == "bias_ih":
                if position + 1 >= len(entries) or _kind(entries[position + 1][0]) != "bias_hh":
                    raise ValueError(f"state_dict['{name}'] is not followed by its bias_hh: {label} is their sum")
                (_, first), (other_name, second) = entries[position], entries[position + 1]
                first, second = _host(first), _host(second)
                if first.shape != second.shape:
                    raise ValueError(f"state_dict['{name}'] has shape {_shape(first.shape)}, "
                                     f"state_dict['{other_name}'] {_shape(second.shape)}: {label} is their sum")
                _check(name, first, label, shape)
                plan.append((label, [name, other_name], first.astype(np.float64) + second, load))
                position += 2
                continue
        if name is None:
            raise ValueError(f"the state_dict holds {len(entries)} tensors, the model needs more: nothing for "
                             f"{label} {_shape(shape)}")
        if _kind(name) in _KINDS and kind in _KINDS and _kind(name) != kind:
            raise ValueError(f"state_dict['{name}'] is a {_kind(name)}, but the model's next parameter is "
                             f"{label} (a {kind}): the architectures differ")
        value = _host(entries[position][1])
        _check(name, value, label, shape)
        plan.append((label, [name], value, load))
        position += 1
    if position != len(entries):
        extra = ", ".join(name for name, _ in entries[position:position + 3])
        raise ValueError(f"the state_dict holds {len(entries)} tensors, the model takes {position}: "
                         f"{extra}{', ...' if len(entries) - position > 3 else ''} left over")
    loaded = {}
    for label, names, value, load in plan:
        load(value)
        for name in names:
            loaded[name] = label
    return loaded


def _named_layers(model) -> list[tuple[str, object]]:
    """(prefix, layer): nn.Sequential's index for a Sequential's layers, the node name for a Graph's."""
    if isinstance(model, Graph):
        return [(f"{name}.", layer) for name, (layer, _) in model.nodes.items()]
    if hasattr(model, "layers"):
        return [(f"{index}.", layer) for index, layer in enumerate(model.layers)]
    return [("", model)]


def state_dict(model, tensors: bool = False) -> dict:
    """The model's parameters (and BatchNorm's running statistics) under PyTorch's names and layouts, the
    reverse of ``load_state_dict``: ``{"0.weight": array, ...}`` as ``nn.Sequential`` names its layers (a
    Graph's entries are named by node), NumPy float32 host copies (``tensors=True``: torch tensors).

    A recurrent layer's entries are ``nn.RNN``/``nn.LSTM``/``nn.GRU``'s (``weight_ih_l0``, ...); tilegrad's
    ``RNN`` has one bias, exported as ``bias_ih_l0`` with a zero ``bias_hh_l0`` (PyTorch adds the two, so
    the outputs agree). A ``BatchNorm2D`` adds ``num_batches_tracked`` = 0 (tilegrad counts no steps), so
    ``torch_model.load_state_dict(state_dict(model, tensors=True))`` loads strictly. Layers without
    parameters (ReLU, Flatten, LastTimeStep) take their index and export nothing, as in PyTorch.
    """
    entries: dict = {}
    for prefix, layer in _named_layers(model):
        recurrent = "_l0" if hasattr(layer, "weight_hh") else ""
        for p in layer.parameters():
            value = np.ascontiguousarray(p.numpy(), dtype=np.float32)
            if type(layer) is L.RNN and p is layer.bias:  # one bias here, two in PyTorch (always added)
                entries[f"{prefix}bias_ih_l0"] = value
                entries[f"{prefix}bias_hh_l0"] = np.zeros_like(value)
            else:
                entries[f"{prefix}{p.name}{recurrent}"] = value
        for name, buf in layer.state_arrays().items():
            entries[f"{prefix}{name}"] = np.array(layer.device_for(buf).to_numpy(buf), dtype=np.float32)
        if isinstance(layer, L.BatchNorm2D):
            entries[f"{prefix}num_batches_tracked"] = np.array(0, dtype=np.int64)
    if tensors:
        try:
            import torch
        except ImportError:
            raise ImportError("state_dict(model, tensors=True) needs PyTorch (pip install torch); without "
                              "tensors=True it gives NumPy arrays") from None
        return {name: torch.from_numpy(value) for name, value in entries.items()}
    return entries
