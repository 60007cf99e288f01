"""Checkpoints: one .npz with the architecture, every parameter and the optimizer state.

Written atomically (a temporary file in the same folder, then a rename), so a crash mid-write never
leaves a half-written checkpoint where the last good one was. Loading checks every shape and names
the first mismatch.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

import layers as L
from runtime.device import Device


def _spec(layer) -> dict:
    return {"type": type(layer).__name__, "config": layer.config()}


def architecture(model) -> dict:
    """A JSON description to rebuild ``model``: a Sequential's layers, or a Graph's nodes and edges."""
    from .graph import Graph

    if isinstance(model, Graph):
        nodes = [{"name": name, "sources": sources, **_spec(layer)} for name, (layer, sources) in model.nodes.items()]
        return {"kind": "graph", "inputs": model.inputs, "output": model.output_name, "nodes": nodes}
    return {"kind": "sequential", "layers": [_spec(layer) for layer in model.layers]}


def save(path, model, optimizer=None, extra: dict | None = None) -> None:
    """Write ``model`` (architecture, parameters, layer state) and ``optimizer``'s state to one .npz, atomically."""
    path = Path(path)
    arrays = {f"param.{i}": p.numpy() for i, p in enumerate(model.parameters())}
    for i, layer in enumerate(model.layers):
        for name, value in layer.state_arrays().items():
            arrays[f"layer.{i}.{name}"] = np.array(layer.device_for(value).to_numpy(value))
    # random streams (dropout's mask counter) continue where they stopped, so a resume is bit-identical
    meta = {"architecture": architecture(model), "extra": extra or {},
            "random_state": [layer.random_state() for layer in model.layers]}
    if optimizer is not None:
        state = optimizer.state_dict()
        meta["optimizer"] = {"type": type(optimizer).__name__,
                             **{k: v for k, v in state.items() if not k.startswith("state.")}}
        arrays.update({f"optim.{k}": v for k, v in state.items() if k.startswith("state.")})
    arrays["meta"] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_interrupted(model, optimizer, *, checkpoint: str | None, fallback: str, start_epoch: int,
                     epochs_done: int, seed: int) -> str | None:
    """What an interrupted ``fit`` leaves behind; returns the line that tells how to resume (None on the
    ranks other than rank 0, which write nothing, as in ``fit``).

    ``epochs_done`` is the number of finished epochs, the ``start_epoch`` a resumed run began at included.
    A per-epoch checkpoint written since the start is an exact resume point and is kept as it is;
    otherwise the model as it stands is saved to ``checkpoint`` (or ``fallback``), and resuming from it
    restarts the interrupted epoch.
    """
    from .distributed import get_world

    if not get_world().is_root:
        return None
    if checkpoint and epochs_done > start_epoch:
        return f"interrupted: {checkpoint} holds epoch {epochs_done}; resume with --resume {checkpoint}"
    path = checkpoint or fallback
    save(path, model, optimizer, extra={"epoch": epochs_done, "seed": seed})
    return (f"interrupted during epoch {epochs_done + 1}: the model as it stands is saved in {path}; "
            f"--resume {path} restarts that epoch from these weights")


def read(path) -> tuple[dict, dict]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return json.loads(str(arrays.pop("meta"))), arrays


def _make(spec: dict, device: Device):
    from . import graph

    cls = getattr(L, spec["type"], None) or getattr(graph, spec["type"], None)
    if not (isinstance(cls, type) and issubclass(cls, L.Layer)):
        raise ValueError(f"checkpoint names an unknown layer type {spec['type']!r}")
    config = dict(spec["config"])
    if "device" in cls.__init__.__code__.co_varnames:
        config["device"] = device
    return cls(**config)


def build(arch: dict, device: Device):
    from .graph import Graph
    from .sequential import Sequential

    if arch.get("kind") == "graph":
        g = Graph(inputs=arch["inputs"])
        for node in arch["nodes"]:
            g.add(node["name"], _make(node, device), *node["sources"])
        return g.output(arch["output"])
    return Sequential(*[_make(spec, device) for spec in arch["layers"]])


def load(path, model=None, optimizer=None, device: Device | str = "cpu"):
    """Load into ``model``/``optimizer`` when given, else rebuild the model; returns (model, meta)."""
    meta, arrays = read(path)
    if model is None:
        model = build(meta["architecture"], device if isinstance(device, Device) else Device(device))
    elif architecture(model) != meta["architecture"]:
        raise ValueError(f"{path}: the checkpoint's architecture differs from the model's")
    params = model.parameters()
    saved = [k for k in arrays if k.startswith("param.")]
    if len(saved) != len(params):
        raise ValueError(f"{path}: {len(saved)} parameters saved, the model has {len(params)}")
    for i, p in enumerate(params):
        value = arrays[f"param.{i}"]
        if value.shape != p.shape:
            raise ValueError(f"{path}: parameter {i} ({p.name}) has shape {value.shape}, the model expects {p.shape}")
        p.load(value)
    for i, layer in enumerate(model.layers):
        for name, buf in layer.state_arrays().items():
            value = arrays.get(f"layer.{i}.{name}")
            if value is None or value.shape != tuple(buf.shape):
                raise ValueError(f"{path}: layer {i} ({type(layer).__name__}) state '{name}' is missing or has "
                                 f"the wrong shape")
            layer.device_for(buf).copy(buf, np.ascontiguousarray(value, dtype=buf.dtype))
    for layer, calls in zip(model.layers, meta.get("random_state", [])):
        if calls is not None:
            layer.set_random_state(calls)
    if optimizer is not None:
        if "optimizer" not in meta:
            raise ValueError(f"{path}: no optimizer state saved")
        if meta["optimizer"]["type"] != type(optimizer).__name__:
            raise ValueError(f"{path}: saved optimizer is {meta['optimizer']['type']}, not {type(optimizer).__name__}")
        state = {k: v for k, v in meta["optimizer"].items() if k != "type"}
        state.update({k[len("optim."):]: v for k, v in arrays.items() if k.startswith("optim.")})
        optimizer.load_state_dict(state)
    return model, meta
