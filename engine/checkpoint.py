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

from .device import Device


def architecture(model) -> list[dict]:
    return [{"type": type(layer).__name__, "config": layer.config()} for layer in model.layers]


def save(path, model, optimizer=None, extra: dict | None = None) -> None:
    path = Path(path)
    arrays = {f"param.{i}": p.numpy() for i, p in enumerate(model.parameters())}
    # random streams (dropout's mask counter) continue where they stopped, so a resume is bit-identical
    meta = {"architecture": architecture(model), "extra": extra or {},
            "random_state": [getattr(layer, "_calls", None) for layer in model.layers]}
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


def read(path) -> tuple[dict, dict]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return json.loads(str(arrays.pop("meta"))), arrays


def build(arch: list[dict], device: Device):
    from .sequential import Sequential

    built = []
    for spec in arch:
        cls = getattr(L, spec["type"], None)
        if cls is None:
            raise ValueError(f"checkpoint names an unknown layer type {spec['type']!r}")
        config = dict(spec["config"])
        if "device" in cls.__init__.__code__.co_varnames:
            config["device"] = device
        built.append(cls(**config))
    return Sequential(*built)


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
    for layer, calls in zip(model.layers, meta.get("random_state", [])):
        if calls is not None:
            layer._calls = calls
    if optimizer is not None:
        if "optimizer" not in meta:
            raise ValueError(f"{path}: no optimizer state saved")
        if meta["optimizer"]["type"] != type(optimizer).__name__:
            raise ValueError(f"{path}: saved optimizer is {meta['optimizer']['type']}, not {type(optimizer).__name__}")
        state = {k: v for k, v in meta["optimizer"].items() if k != "type"}
        state.update({k[len("optim."):]: v for k, v in arrays.items() if k.startswith("optim.")})
        optimizer.load_state_dict(state)
    return model, meta
