# ruff: noqa: B023  (each closure is timed inside the loop iteration that made it)
"""GPU check for issue #18 (a whole training step as one CUDA graph): on a real GPU,

1. correctness: N steps replayed from a captured graph (cosine schedule, dropout, Adam) give the parameters N
   eager steps give, on the driver's stream capture (the simulator's emulation is what CI checks);
2. speed: ms per training step (fwd + loss + bwd + Adam, the loss read back every step) for LeNet-5 b256, the
   MLP 784-256-256-10 b1024 and an LSTM (28 steps of 28 inputs, hidden 64) b256: tilegrad eager, tilegrad graph,
   PyTorch eager, PyTorch graph (Adam capturable, as shared/anchors/torch_graph_step.py);
3. the host cost of one launch with the device's stream (tilegrad's `fill` and `adam_step` launchers).

    python3 scripts/graph_step_gpu.py --out graph-step.json
    python3 scripts/graph_step_gpu.py --dry-run      # no GPU: imports, builds each model on the CPU, lists the plan
Prints a table last; writes every number to --out. Each part is guarded: a failure is recorded, the rest runs.
Runs from any directory, with or without PYTHONPATH (it puts its checkout first on sys.path).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import cuda_kernels.numpy_compat  # noqa: E402, F401  (np.row_stack for numba-cuda under NumPy 2.5)
import layers as L  # noqa: E402
import optim as O  # noqa: E402
from engine import Device, Sequential, models  # noqa: E402
from engine.cuda_graph import CapturedStep  # noqa: E402

CASES = [("lenet", 256), ("mlp", 1024), ("lstm", 256)]  # in order of value: what a short GPU window keeps
SHAPES = {"lenet": (1, 28, 28), "mlp": (784,), "lstm": (28, 28)}  # one sample: an image, a vector, 28 steps of 28
EQUIVALENCE_STEPS = 30
IMPLS = ("eager", "graph")


def batch(name, n, rng):
    return rng.random((n, *SHAPES[name]), dtype=np.float32), rng.integers(0, 10, n)


def make(name, dev):
    model = (models.lenet(dev) if name == "lenet" else models.mlp(dev, in_features=784) if name == "mlp" else
             models.lstm_classifier(dev, input_size=28))
    return model, L.SoftmaxCrossEntropy(), O.Adam(model.parameters(), lr=1e-3)


def dry_run() -> int:
    """What a GPU run would do, checked as far as the CPU allows: every model builds, every batch has its shape."""
    rng = np.random.default_rng(1)
    cpu = Device("cpu")
    print(f"equivalence: {EQUIVALENCE_STEPS} replayed steps vs eager (MLP with dropout, cosine schedule, Adam)")
    for name, n in CASES:
        model, _, _ = make(name, cpu)
        x, _ = batch(name, n, rng)
        params = sum(int(np.prod(p.data.shape)) for p in model.parameters())
        print(f"would time {name} b{n} input {x.shape} ({params} parameters): tilegrad {'/'.join(IMPLS)}, "
              f"PyTorch {'/'.join(IMPLS)}")
    try:
        import torch  # noqa: F401

        print("torch: importable")
    except ImportError:
        print("torch: not installed here (the GPU machine has it)")
    print("would measure the host cost of one launch: fill, adam_step with scalars")
    return 0


def timed(fn, reps):
    for _ in range(5):
        fn()
    samples = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        samples.append((time.perf_counter() - t0) / reps * 1e3)
    return statistics.median(samples)  # every step reads its loss back: synchronized


def equivalence(dev, steps=EQUIVALENCE_STEPS):
    rng = np.random.default_rng(0)
    data = [batch("mlp", 32, rng) for _ in range(steps)]
    out = []
    for graphed in (False, True):
        model = Sequential(L.Dense(784, 256, device=dev), L.ReLU(), L.Dropout(0.3, seed=7),
                           L.Dense(256, 10, device=dev, seed=1))
        opt = O.Adam(model.parameters(), lr=1e-2)
        opt.schedule = O.cosine_lr(1e-2, steps, 1e-4)
        loss_layer = L.SoftmaxCrossEntropy()
        if graphed:
            cs = CapturedStep(model, loss_layer, opt)
            losses = [cs.step(x, y) for x, y in data]
        else:
            losses = []
            for x, y in data:
                losses.append(loss_layer.forward(model.forward(dev.asarray(x)), y))
                model.backward(loss_layer.backward())
                opt.step()
        out.append((dev.to_numpy(model.flat.data), losses))
    (p0, l0), (p1, l1) = out
    return {"steps": steps, "max_param_diff": float(np.abs(p0 - p1).max()),
            "max_loss_diff": float(np.abs(np.array(l0) - np.array(l1)).max()),
            "replays": cs.replays, "ok": bool(np.allclose(p0, p1, rtol=1e-5, atol=1e-6))}


def tilegrad_rows(dev, reps):
    rows = []
    for name, n in CASES:
        rng = np.random.default_rng(1)
        x, y = batch(name, n, rng)
        for impl in IMPLS:
            try:
                model, loss_layer, opt = make(name, dev)
                if impl == "graph":
                    cs = CapturedStep(model, loss_layer, opt)
                    fn = lambda: cs.step(x, y)  # noqa: E731
                else:
                    X = dev.empty(x.shape)

                    def fn():
                        dev.copy_from_host(X, x)
                        loss_layer.forward(model.forward(X), y)
                        model.backward(loss_layer.backward())
                        opt.step()
                ms = timed(fn, reps)
                rows.append({"model": name, "batch": n, "device": "cuda", "impl": impl, "ms_per_step": ms})
            except Exception as error:  # noqa: BLE001
                rows.append({"model": name, "batch": n, "device": "cuda", "impl": impl, "error": repr(error),
                             "trace": traceback.format_exc()[-2000:]})
    return rows


def torch_rows(reps):
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    d = torch.device("cuda")
    nn = torch.nn

    def lenet():
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                             nn.ReLU(), nn.Linear(84, 10))

    def mlp():
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))

    class LastStepLSTM(nn.Module):  # models.lstm_classifier: an LSTM, its last hidden state, a Dense
        def __init__(self):
            super().__init__()
            self.lstm, self.head = nn.LSTM(28, 64, batch_first=True), nn.Linear(64, 10)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    build = {"lenet": lenet, "mlp": mlp, "lstm": LastStepLSTM}
    rows = []
    for name, n in CASES:
        x, y = torch.randn((n, *SHAPES[name]), device=d), torch.randint(0, 10, (n,), device=d)
        m = build[name]().to(d)
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)

        def eager():
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            return loss.item()

        rows.append({"model": name, "batch": n, "device": "torch-cuda", "impl": "eager",
                     "ms_per_step": timed(eager, reps)})
        m2 = build[name]().to(d)
        opt2 = torch.optim.Adam(m2.parameters(), lr=1e-3, capturable=True)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                opt2.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(m2(x), y).backward()
                opt2.step()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        opt2.zero_grad(set_to_none=True)
        with torch.cuda.graph(g):
            sloss = nn.functional.cross_entropy(m2(x), y)
            sloss.backward()
            opt2.step()

        def graphed():
            g.replay()
            return sloss.item()

        rows.append({"model": name, "batch": n, "device": "torch-cuda", "impl": "graph",
                     "ms_per_step": timed(graphed, reps)})
    return rows


def launch_costs(dev, launches=2000):
    k = dev.kernels
    p = dev.zeros((1024,))
    m, v, g = dev.zeros((1024,)), dev.zeros((1024,)), dev.zeros((1024,))
    scalars = dev.asarray(np.array([1e-3, 1.0, 1.0, 0.0], np.float32))
    out = {}
    for label, fn in (("fill_us", lambda: k.fill(p, 0.0)),
                      ("adam_step_scalars_us", lambda: k.adam_step(p, m, v, g, scalars=scalars))):
        fn()
        dev.synchronize()
        t0 = time.perf_counter()
        for _ in range(launches):
            fn()
        out[label] = (time.perf_counter() - t0) / launches * 1e6
        dev.synchronize()
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="graph-step.json")
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--dry-run", action="store_true", help="no GPU: build the models on the CPU, list the plan")
    args = parser.parse_args()
    if args.dry_run:
        return dry_run()
    dev = Device("cuda")
    report = {}
    for key, fn in (("equivalence", lambda: equivalence(dev)), ("tilegrad", lambda: tilegrad_rows(dev, args.reps)),
                    ("torch", lambda: torch_rows(args.reps)), ("launch", lambda: launch_costs(dev))):
        try:
            report[key] = fn()
        except Exception as error:  # noqa: BLE001
            report[key] = {"error": repr(error), "trace": traceback.format_exc()[-3000:]}
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    print(json.dumps(report.get("equivalence"), indent=None)[:600])
    print(json.dumps(report.get("launch"), indent=None)[:300])
    print(f"{'model':6} {'batch':>5} {'device':11} {'impl':6} {'ms/step':>9}")
    for row in [*(report.get("tilegrad") or []), *(report.get("torch") or [])]:
        if isinstance(row, dict):
            print(f"{row['model']:6} {row['batch']:>5} {row['device']:11} {row['impl']:6} "
                  f"{row.get('ms_per_step', float('nan')):9.3f} {row.get('error', '')[:80]}")
    return 0 if (report.get("equivalence") or {}).get("ok") else 1  # a wrong replay fails the step


if __name__ == "__main__":
    sys.exit(main())
