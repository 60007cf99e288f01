"""Checkpoints: one .npz with the architecture, every parameter and the optimizer state.

Written atomically by ``engine.outputs`` (a temporary file in the same folder, then a rename), so a crash
mid-write never leaves a half-written checkpoint where the last good one was; the file's mode follows the
umask, as any other file the user writes; a missing folder and a file another live writer holds are refused.
The metadata holds a SHA-256 over the metadata and every array (names, dtypes, shapes, bytes), checked
on reading, on top of the zip format's CRC-32 per entry. Whatever is
wrong with a file (empty, truncated, bit-flipped, not a checkpoint at all) is one ``CheckpointError``
naming the file and the damage. Loading checks every shape and names the first mismatch.

Checkpoints written before the checksum existed (no ``checksum`` in the metadata) still load,
unverified beyond the zip CRC-32s: refusing them would strand every earlier run's files, and the CRCs
already catch a flipped bit in the data.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

import layers as L
from runtime.device import Device

from . import outputs

FORMAT = 2  # 1: no checksum (before it existed); 2: "checksum" in the metadata


class CheckpointError(ValueError):
    """A file that cannot be read as a checkpoint (damaged, or not one at all), in one line naming it."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


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
    """Write ``model`` (architecture, parameters, layer state) and ``optimizer``'s state to one .npz, atomically.

    The folder must exist, and no other live process may hold the file's writer lock (``engine.outputs``):
    either is one ``OutputError`` before anything is written."""
    path = Path(path)
    outputs.check_folder(path)
    outputs.check_unlocked(path)
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
    meta = json.loads(json.dumps(meta))  # the checksum covers the metadata as it reads back
    meta["format"] = FORMAT
    meta["checksum"] = _checksum(meta, arrays)
    arrays["meta"] = np.array(json.dumps(meta))
    outputs.write_atomic(path, lambda f: np.savez(f, **arrays))


def save_interrupted(model, optimizer, *, checkpoint: str | None, fallback: str, start_epoch: int,
                     epochs_done: int, seed: int, resume_flags: str = "", extra: dict | None = None) -> str | None:
    """What an interrupted ``fit`` leaves behind; returns the line that tells how to resume (None on the
    ranks other than rank 0, which write nothing, as in ``fit``).

    ``epochs_done`` is the number of finished epochs, the ``start_epoch`` a resumed run began at included.
    A per-epoch checkpoint written since the start is an exact resume point and is kept as it is;
    otherwise the model as it stands is saved to ``checkpoint`` (or ``fallback``), and resuming from it
    restarts the interrupted epoch. ``resume_flags`` follow ``--resume FILE`` in the line (e.g. the
    run's ``--epochs N``, the total to reach). ``extra``: more to record beside the epoch and the seed.

    The ``fallback`` file is replaced only when it holds a checkpoint of the same model and optimizer that no
    other live process is writing; otherwise the next free name (``interrupted-mlp-2.npz``) is used: an
    interrupted run is never lost, and never replaces another one.
    """
    from .distributed import get_world

    if not get_world().is_root:
        return None
    if checkpoint and epochs_done > start_epoch:
        return f"interrupted: {checkpoint} holds epoch {epochs_done}; resume with --resume {checkpoint}{resume_flags}"
    path = checkpoint or outputs.free_name(fallback, lambda p: _holds_same_run(p, model, optimizer))
    save(path, model, optimizer, extra={**(extra or {}), "epoch": epochs_done, "seed": seed})
    return (f"interrupted during epoch {epochs_done + 1}: the model as it stands is saved in {path}; "
            f"--resume {path}{resume_flags} restarts that epoch from these weights")


def _holds_same_run(path, model, optimizer) -> bool:
    """``path`` is free, or a checkpoint of this model and optimizer no other live process writes."""
    path = Path(path)
    if not path.exists():
        return True
    try:
        outputs.check_unlocked(path)
        meta, _ = read(path)
    except (OSError, ValueError):
        return False
    saved = meta.get("optimizer", {}).get("type") if optimizer is not None else None
    return meta["architecture"] == architecture(model) and saved == (
        type(optimizer).__name__ if optimizer is not None else None)


def _checksum(meta: dict, arrays: dict) -> str:
    """SHA-256 over the metadata (without its checksum) and every array: name, dtype, shape, bytes, by name."""
    digest = hashlib.sha256()
    digest.update(json.dumps({k: v for k, v in meta.items() if k != "checksum"}, sort_keys=True).encode())
    for name in sorted(arrays):
        if name == "meta":
            continue
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"\0{name}\0{value.dtype.str}\0{value.shape}\0".encode())
        digest.update(value.reshape(-1).view(np.uint8) if value.size else b"")
    return "sha256:" + digest.hexdigest()


_MAGIC = {  # what a file that is not a zip archive most likely is, by its first bytes
    b"\x93NUMPY": "a single NumPy .npy array, not an .npz archive",
    b"\x89HDF\r\n\x1a\n": "an HDF5 file (a Keras model?)",
    b"\x1f\x8b": "a gzip file",
}


def _looks_like_text(head: bytes) -> bool:
    if b"\0" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte character cut by the read is still text
        if exc.start < len(head) - 3:
            return False
        text = head[:exc.start].decode("utf-8")
    return all(ch.isprintable() or ch in "\t\n\r\f\v" for ch in text)


def _not_a_zip(head: bytes) -> str:
    """Why a file that does not open as a zip archive is not a checkpoint, in a few words."""
    if not head:
        return "not a tilegrad checkpoint (empty file)"
    if head.startswith(b"PK"):  # a zip archive's first entry, without its end: cut short
        return "damaged checkpoint (truncated: the zip archive's end is missing)"
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return f"not a tilegrad checkpoint ({what})"
    if _looks_like_text(head):
        return "not a tilegrad checkpoint (a text file?)"
    return "not a tilegrad checkpoint (not a zip archive: unrecognized contents)"


def read(path) -> tuple[dict, dict]:
    """(metadata, arrays) of a checkpoint, its checksum verified; ``CheckpointError`` for whatever is wrong."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(path, "a folder, not a checkpoint file")
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError as exc:  # permissions, an I/O error: one line, not a raw errno
        raise CheckpointError(path, f"cannot be read ({(exc.strerror or str(exc)).lower()})") from None
    if not head or not zipfile.is_zipfile(path):
        raise CheckpointError(path, _not_a_zip(head))
    arrays, entry = {}, None
    try:
        with np.load(path, allow_pickle=False) as data:
            for entry in data.files:
                arrays[entry] = data[entry]
    except zipfile.BadZipFile as exc:
        if "CRC" in str(exc):  # the zip format's CRC-32 of one entry
            raise CheckpointError(path, f"damaged checkpoint (checksum mismatch in {entry or 'an entry'}: the "
                                        f"file is corrupted)") from None
        where = f" at its entry {entry}" if entry else ""  # zipfile's own text can quote the garbage bytes
        raise CheckpointError(path, f"damaged checkpoint (corrupted zip archive{where})") from None
    except OSError as exc:
        raise CheckpointError(path, f"cannot be read ({(exc.strerror or str(exc)).lower()})") from None
    except Exception:  # a damaged .npy header or zip entry: numpy's reasons vary (and some mislead)
        where = f"its entry {entry} cannot be read" if entry else "its zip archive cannot be read"
        raise CheckpointError(path, f"damaged checkpoint ({where})") from None
    if "meta" not in arrays:
        raise CheckpointError(path, "not a tilegrad checkpoint (an .npz archive without tilegrad's metadata)")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except ValueError:
        raise CheckpointError(path, "damaged checkpoint (its metadata is not valid JSON)") from None
    if not isinstance(meta, dict) or "architecture" not in meta:
        raise CheckpointError(path, "not a tilegrad checkpoint (its metadata names no architecture)")
    if "checksum" in meta and meta["checksum"] != _checksum(meta, arrays):
        raise CheckpointError(path, "damaged checkpoint (checksum mismatch: the contents differ from what "
                                    "was saved)")
    return meta, arrays


def describe(arch: dict) -> str:
    """A short description of an architecture, its layers with parameters: ``Sequential(Dense 64->10)``."""
    layers = arch.get("nodes", []) if arch.get("kind") == "graph" else arch.get("layers", [])
    parts = []
    for spec in layers:
        config = spec.get("config", {})
        for a, b in (("in_features", "out_features"), ("in_channels", "out_channels"),
                     ("input_size", "hidden_size")):
            if a in config and b in config:
                parts.append(f"{spec['type']} {config[a]}->{config[b]}")
                break
    kind = "Graph" if arch.get("kind") == "graph" else "Sequential"
    return f"{kind}({', '.join(parts) or ', '.join(spec.get('type', '?') for spec in layers)})"


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
        raise CheckpointError(path, f"the checkpoint's architecture differs from the model's: it holds "
                                    f"{describe(meta['architecture'])}, the model is {describe(architecture(model))}")
    params = model.parameters()
    saved = [k for k in arrays if k.startswith("param.")]
    if len(saved) != len(params):
        raise CheckpointError(path, f"{len(saved)} parameters saved, the model has {len(params)}")
    for i, p in enumerate(params):
        value = arrays[f"param.{i}"]
        if value.shape != p.shape:
            raise CheckpointError(path, f"parameter {i} ({p.name}) has shape {value.shape}, "
                                        f"the model expects {p.shape}")
        p.load(value)
    for i, layer in enumerate(model.layers):
        for name, buf in layer.state_arrays().items():
            value = arrays.get(f"layer.{i}.{name}")
            if value is None or value.shape != tuple(buf.shape):
                raise CheckpointError(path, f"layer {i} ({type(layer).__name__}) state '{name}' is missing or has "
                                 f"the wrong shape")
            layer.device_for(buf).copy(buf, np.ascontiguousarray(value, dtype=buf.dtype))
    for layer, calls in zip(model.layers, meta.get("random_state", [])):
        if calls is not None:
            layer.set_random_state(calls)
    if optimizer is not None:
        if "optimizer" not in meta:
            raise CheckpointError(path, "no optimizer state saved")
        if meta["optimizer"]["type"] != type(optimizer).__name__:
            raise CheckpointError(path, f"saved optimizer is {meta['optimizer']['type']}, "
                                        f"not {type(optimizer).__name__}")
        state = {k: v for k, v in meta["optimizer"].items() if k != "type"}
        state.update({k[len("optim."):]: v for k, v in arrays.items() if k.startswith("optim.")})
        optimizer.load_state_dict(state)
    return model, meta
