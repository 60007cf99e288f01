"""Peers: the same cases through PyTorch (oneDNN/MKL or OpenBLAS on the CPU, cuBLAS/cuDNN on the GPU),
as clearly labelled rows (device "torch-cpu" / "torch-cuda"), so each of our rows can say how it
compares (vs_peer = peer time / our time, > 1 means we are faster). TF32 is off: a float32 peer.

The peers run in a separate process that never imports numba (``python -m bench.peers``): inside the
bench process, Numba's OpenMP workers and tilegrad's BLAS limit slow PyTorch down (docs/benchmarks.md
measures it). A fair yardstick runs alone.
"""

from __future__ import annotations

import numpy as np

from .timing import time_calls


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def run_peers(jobs: list[dict]) -> list[dict]:
    """Run every job ({"index", "peer", "devices", "threads"}) in a fresh process; timings come back."""
    import os
    import pickle
    import subprocess
    import sys
    import tempfile

    if not jobs or not torch_available():
        return []
    with tempfile.TemporaryDirectory() as folder:
        request, answer = os.path.join(folder, "jobs.pkl"), os.path.join(folder, "timings.pkl")
        with open(request, "wb") as f:
            pickle.dump(jobs, f)
        from hardware.cpu_threads import environment_without_our_defaults

        # PyTorch with its own defaults (its OpenMP reads OMP_WAIT_POLICY too): not the passive wait we chose
        env = {k: v for k, v in environment_without_our_defaults().items() if k != "NUMBA_ENABLE_CUDASIM"}
        done = subprocess.run([sys.executable, "-m", "bench.peers", request, answer], env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the PyTorch peer process failed: {done.stderr.strip().splitlines()[-1:]}")
        with open(answer, "rb") as f:
            return pickle.load(f)


def _worker(request: str, answer: str) -> None:
    import pickle

    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with open(request, "rb") as f:
        jobs = pickle.load(f)
    timings = []
    for job in jobs:
        for dev_name in job["devices"]:
            if dev_name == "cuda" and not torch.cuda.is_available():
                continue
            target = torch.device("cuda" if dev_name == "cuda" else "cpu")
            torch.set_num_threads(job["threads"])
            for impl in peer_impls(job["peer"], target.type):
                run, check = _peer(job["peer"], target, impl)
                sync = torch.cuda.synchronize if target.type == "cuda" else (lambda: None)

                def timed(run=run, sync=sync):
                    run()
                    sync()

                # wall clock around a synchronized call; as many samples as our rows take (runner.MIN_TIME_S)
                first, median = time_calls(timed, "cpu", 10, 2.0, min_time_s=job.get("min_time_s", 0.0))
                timings.append({"index": job["index"], "device": f"torch-{target.type}", "impl": impl,
                                "threads": job["threads"] if target.type == "cpu" else None,
                                "first_ms": first, "median_ms": median, "max_rel_err": check()})
    with open(answer, "wb") as f:
        pickle.dump(timings, f)


PEER_IMPL = "torch"  # the impl name of a peer row whose kind runs one way
TRAIN_PEER_IMPLS = ("eager", "graph")  # the train kind: eager, or the whole step as one CUDA graph (cuda only)


def peer_impls(spec: dict, device_type: str) -> list[str]:
    """The ways the peer runs ``spec`` on a torch device type ("cpu" or "cuda"): ``spec["impls"]`` for that type
    (checked: the train kind knows "eager" and "graph", a graph on CUDA only), else the one PEER_IMPL."""
    impls = (spec.get("impls") or {}).get(device_type)
    if impls is None:
        return [PEER_IMPL]
    known = TRAIN_PEER_IMPLS if spec["kind"] == "train" else (PEER_IMPL,)
    for impl in impls:
        if impl not in known:
            raise ValueError(f"peer {spec['kind']!r}: unknown impl {impl!r} (known: {', '.join(known)})")
        if impl == "graph" and device_type != "cuda":
            raise ValueError(f"peer {spec['kind']!r}: impl 'graph' (a CUDA graph) runs on cuda only, not {device_type}")
    return list(impls)


def _t(array, device, grad=False):
    import torch

    return torch.tensor(np.ascontiguousarray(array), device=device, requires_grad=grad)


def _peer(spec: dict, device, impl: str = PEER_IMPL):
    import torch
    import torch.nn.functional as F

    kind = spec["kind"]
    state = {}
    if kind == "gemm":
        a, b = _t(spec["a"], device), _t(spec["b"], device)
        ref = spec["a"].astype(np.float64) @ (spec["b"].T if spec["trans_b"] else spec["b"]).astype(np.float64)

        def run():
            state["c"] = a @ (b.T if spec["trans_b"] else b)
        return run, lambda: _err(state["c"], ref)
    if kind == "conv":
        x, dy = _t(spec["x"], device, True), _t(spec["dy"], device)
        w = torch.randn(spec["f"], x.shape[1], spec["k"], spec["k"], device=device, requires_grad=True)
        bias = torch.randn(spec["f"], device=device, requires_grad=True)

        def run():
            y = F.conv2d(x, w, bias, padding=spec["p"])
            if spec["direction"] != "forward":
                y.backward(dy)
            state["y"] = y
        return run, lambda: None  # the peer is the yardstick, not the subject: not re-validated
    if kind == "pool":
        x, dy = _t(spec["x"], device, True), _t(spec["dy"], device)

        def run():
            y = F.max_pool2d(x, 2)
            if spec["direction"] != "forward":
                y.backward(dy)
        return run, lambda: None
    if kind == "elementwise":
        x, y = _t(spec["x"], device), _t(spec["y"], device)
        out = torch.empty_like(x)
        ops = {"relu": lambda: torch.clamp_min(x, 0.0, out=out), "tanh": lambda: torch.tanh(x, out=out),
               "add": lambda: torch.add(x, y, out=out)}
        return ops[spec["name"]], lambda: None
    if kind in ("rnn", "lstm", "gru"):
        x, dy = _t(spec["x"], device, True), _t(spec["dy"], device)
        cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
        rnn = cls(x.shape[2], spec["h"], batch_first=True).to(device)

        def run():
            y, _ = rnn(x)
            y.backward(dy)
        return run, lambda: None
    if kind == "optim":
        p = torch.nn.Parameter(_t(spec["p"], device))
        p.grad = _t(spec["g"], device)
        opt = _torch_optimizer(spec["name"], [p])
        return opt.step, lambda: None
    if kind == "train":
        return _train_peer(spec, device, impl)
    raise ValueError(f"unknown peer kind {kind!r}")


def _train_peer(spec: dict, device, impl: str):
    """A training step (forward, cross-entropy, backward, Adam) with the loss read back every step: "eager", or
    "graph", the whole step captured once as a CUDA graph and replayed (static inputs, Adam capturable; as
    shared/anchors/torch_graph_step.py)."""
    import torch
    import torch.nn.functional as F

    model = _torch_model(spec["model"], spec["x"].shape).to(device)
    x, y = _t(spec["x"], device), torch.tensor(spec["y"], device=device)
    if impl == "eager":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def run():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()
        return run, lambda: None
    if impl != "graph" or device.type != "cuda":
        raise ValueError(f"train peer: impl {impl!r} on {device.type} (graph runs on cuda only)")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as torch.cuda.graphs asks before a capture
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    def replay():
        graph.replay()
        return loss.item()
    return replay, lambda: None


def _err(tensor, ref) -> float:
    out = tensor.detach().cpu().numpy().astype(np.float64)
    return float(np.abs(out - ref).max() / max(1e-12, np.abs(ref).max()))


def _torch_model(name: str, input_shape=(1, 784)):
    """tilegrad's model ``name`` in PyTorch, for inputs of ``input_shape`` (batch first)."""
    import torch.nn as nn

    if name in ("lstm", "gru"):  # the classifier over an image's rows: the cell, its last hidden state, Dense
        return _RecurrentClassifier(name, input_shape[2], 64, 10)
    if name == "lenet":
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                             nn.ReLU(), nn.Linear(84, 10))
    return nn.Sequential(nn.Linear(input_shape[1], 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def _RecurrentClassifier(cell: str, inputs: int, hidden: int, classes: int):
    """engine.models.lstm_classifier / gru_classifier in PyTorch: the cell over the rows, the last step, Dense."""
    import torch.nn as nn

    class RecurrentClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = (nn.LSTM if cell == "lstm" else nn.GRU)(inputs, hidden, batch_first=True)
            self.dense = nn.Linear(hidden, classes)

        def forward(self, x):
            out, _ = self.cell(x)
            return self.dense(out[:, -1])

    return RecurrentClassifier()


def _torch_optimizer(name: str, params):
    """PyTorch's fastest documented implementation: fused where this build supports it, else foreach."""
    import torch

    if name == "adam":
        cls, kwargs = torch.optim.Adam, {"lr": 1e-3}
    else:
        cls, kwargs = torch.optim.SGD, {"lr": 1e-2, "momentum": 0.9}
    try:
        opt = cls(params, fused=True, **kwargs)
        opt.step()  # unsupported fused devices fail here, not at construction
        return opt
    except (RuntimeError, TypeError, ValueError):
        return cls(params, foreach=True, **kwargs)


if __name__ == "__main__":
    import sys

    _worker(sys.argv[1], sys.argv[2])
