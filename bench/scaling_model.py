"""Past one machine: a latency-bandwidth model of ring allreduce, calibrated by the allreduce measured on
this machine, predicting the step time and efficiency of data-parallel training on 2 to 256 nodes.

**The allreduce.** A ring allreduce of S bytes over n nodes takes 2(n-1) steps (reduce-scatter, then
allgather), each sending S/n bytes to the next node:

    T(n, S) = 2(n-1) (a_mpi + a_link) + 2(n-1)/n * S * (8 / link bits/s + b_mpi)

``a_mpi`` and ``b_mpi`` are this machine's, fitted to ``bench --ops allreduce`` on 2 ranks (where
T = 2 a_mpi + S b_mpi): the software latency of one step, and the per-byte cost of copying and adding the
bytes in host memory, which a CPU node pays whatever its network. ``a_link`` and the bandwidth are the
link's (``LINKS``: assumed typical figures, not measured here, since this machine reaches no other).

**The step.** Weak scaling: each node keeps its batch (the one measured here), so its compute time is the
one-node step measured on this machine, and the allreduce is added. Without overlap the whole allreduce
follows backward. With overlap the gradient is cut into the buckets ``engine.distributed.plan_buckets``
makes (whole layers, about 1 MiB), bucket i is ready when backward has finished its layers (the
per-layer backward times measured here), the buckets go over the network one after the other, and only
what is left after backward ends is exposed:

    F_i = max(F_(i-1), ready_i) + T(n, S_i),  exposed = F_last - T_backward

Efficiency = compute / (compute + exposed): the fraction of a node's time spent training. Data parallelism
"stops paying" here where efficiency falls under 50 %: every node then spends more time communicating
than computing, and a faster link, a larger batch per node or fewer nodes would each do better.

``python -m bench.scaling_model measure --out FILE.json`` measures the calibration on this machine (the
allreduce, the rank scaling, the one-node steps and their per-layer backward times, threads against
ranks); ``python -m bench.scaling_model render FILE.json`` writes the tables into docs/scaling.md and the
plot to docs/images/scaling-model.png.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODES = [2, 4, 8, 16, 32, 64, 128, 256]
BUCKET_BYTES = 2**20  # the default --bucket-mb 1.0
PAYS_FROM = 0.5  # the efficiency under which data parallelism stops paying (see the docstring)


@dataclass(frozen=True)
class Link:
    gbps: float  # line rate, Gb/s
    latency_s: float  # one message's network latency (NIC, switch, wire, the transport's stack)
    name: str


# Typical figures (vendors' and the OSU pages' small-message latencies), not measured on this machine.
LINKS = [Link(10, 20e-6, "10 Gb/s Ethernet (TCP)"), Link(25, 5e-6, "25 Gb/s Ethernet (RoCE)"),
         Link(100, 1.5e-6, "100 Gb/s InfiniBand EDR"), Link(400, 1.0e-6, "400 Gb/s InfiniBand NDR")]


@dataclass(frozen=True)
class Calibration:
    alpha_s: float  # this machine's MPI software latency per ring step
    beta_s_per_byte: float  # this machine's per-byte cost of a ring step in host memory (copy and add)
    source: str = ""


@dataclass
class ModelSpec:
    """One model on one node: its per-node batch, its measured step, and its backward layer by layer."""
    name: str
    parameters: int
    batch: int
    step_s: float  # forward + backward + optimizer on one node (no allreduce)
    backward: list = field(default_factory=list)  # [(seconds, gradient bytes)] per layer, in backward order

    @property
    def gradient_bytes(self) -> int:
        return 4 * self.parameters

    @property
    def backward_s(self) -> float:
        return sum(s for s, _ in self.backward)


def fit_calibration(rows: list[dict], source: str = "") -> Calibration:
    """a_mpi and b_mpi from allreduce rows ({"bytes", "avg_us", "ranks"}) of one rank count n:
    T = 2(n-1) a + 2(n-1)/n S b, fitted by least squares on the relative error (every size counts alike)."""
    counts = {r["ranks"] for r in rows}
    if len(counts) != 1 or min(counts) < 2 or len(rows) < 2:
        raise ValueError(f"fit_calibration: needs at least 2 sizes of one rank count >= 2, got {len(rows)} rows "
                         f"over rank counts {sorted(counts)}")
    n = counts.pop()
    # T / T = 1 ~ x1 * (2(n-1) / T) + x2 * (2(n-1)/n S / T): weighted least squares, 2 unknowns
    a11 = a12 = a22 = b1 = b2 = 0.0
    for r in rows:
        t = r["avg_us"] * 1e-6
        u, v = 2 * (n - 1) / t, 2 * (n - 1) / n * r["bytes"] / t
        a11, a12, a22, b1, b2 = a11 + u * u, a12 + u * v, a22 + v * v, b1 + u, b2 + v
    det = a11 * a22 - a12 * a12
    alpha, beta = (b1 * a22 - b2 * a12) / det, (a11 * b2 - a12 * b1) / det
    return Calibration(max(alpha, 0.0), max(beta, 0.0), source)


def ring_allreduce_s(nodes: int, nbytes: float, link: Link | None, cal: Calibration) -> float:
    """Seconds for a ring allreduce of ``nbytes`` over ``nodes``; ``link`` None: this machine's memory only."""
    if nodes < 2 or nbytes <= 0:
        return 0.0
    steps = 2 * (nodes - 1)
    per_byte = cal.beta_s_per_byte + (8 / (link.gbps * 1e9) if link else 0.0)
    return steps * (cal.alpha_s + (link.latency_s if link else 0.0)) + steps / nodes * nbytes * per_byte


def buckets_of(spec: ModelSpec, bucket_bytes: int = BUCKET_BYTES) -> list[tuple[float, int]]:
    """(ready time after backward starts, bytes) per bucket, in the order they go: the buckets
    ``engine.distributed.plan_buckets`` cuts from the layers' gradients, each ready when its last layer's
    backward has finished."""
    from engine.distributed import plan_buckets

    layers = spec.backward if any(b > 0 for _, b in spec.backward) else [(spec.backward_s, spec.gradient_bytes)]
    total = sum(b for _, b in layers) // 4
    units, ready, hi, clock = [], {}, total, 0.0  # floats counted from the end of the buffer, where backward starts
    for seconds, nbytes in layers:
        clock += seconds
        if nbytes > 0:
            lo = hi - nbytes // 4
            units.append((lo, hi))
            ready[lo] = clock
            hi = lo
    plan = plan_buckets(units, total, max(1, bucket_bytes // 4))
    return [(ready[lo], 4 * (top - lo)) for lo, top in plan]  # a bucket is ready when its lowest layer is


def predict(spec: ModelSpec, nodes: int, link: Link | None, cal: Calibration, overlap: bool,
            bucket_bytes: int = BUCKET_BYTES) -> dict:
    """The model's step on ``nodes`` nodes: step_s, comm_s (the allreduce's total), exposed_s (what the step
    waits for), efficiency (one node's step / this step) and samples/s over all nodes."""
    if nodes < 1:
        raise ValueError(f"predict: nodes must be >= 1, got {nodes}")
    if not overlap:
        comm = exposed = ring_allreduce_s(nodes, spec.gradient_bytes, link, cal)
    else:
        finish, comm = 0.0, 0.0
        for ready, nbytes in buckets_of(spec, bucket_bytes):
            t = ring_allreduce_s(nodes, nbytes, link, cal)
            finish, comm = max(finish, ready) + t, comm + t
        exposed = max(0.0, finish - spec.backward_s) if comm else 0.0
    step = spec.step_s + exposed
    return {"nodes": nodes, "step_s": step, "comm_s": comm, "exposed_s": exposed,
            "efficiency": spec.step_s / step, "samples_per_s": nodes * spec.batch / step}


def stops_paying(spec: ModelSpec, link: Link, cal: Calibration, overlap: bool, nodes=tuple(NODES)) -> int | None:
    """The smallest node count of ``nodes`` whose efficiency falls under PAYS_FROM (None: it never does)."""
    for n in nodes:
        if predict(spec, n, link, cal, overlap)["efficiency"] < PAYS_FROM:
            return n
    return None


def specs_from(data: dict) -> list[ModelSpec]:
    return [ModelSpec(m["name"], m["parameters"], m["batch"], m["step_ms"] / 1e3,
                      [(ms / 1e3, b) for ms, b in m["backward"]]) for m in data["models"]]


# ---------------------------------------------------------------------------------------------- measuring
def mlp_10m(device, seed: int = 0):
    """A 10M-parameter MLP, 784-2048-2048-2048-10 (10,020,874 parameters)."""
    import layers as L
    from engine.sequential import Sequential

    sizes = [784, 2048, 2048, 2048, 10]
    parts = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        parts.append(L.Dense(a, b, device=device, seed=seed + i))
        if i < len(sizes) - 2:
            parts.append(L.ReLU())
    return Sequential(*parts)


MEASURED_MODELS = [("LeNet-5", "lenet", 64), ("MLP 784-256-256-10", "mlp", 256),
                   ("10M-parameter MLP 784-2048x3-10", "mlp10m", 256)]


def _profile_worker(model_name: str, batch: int, steps: int) -> dict:
    """One process: the model's step at ``batch`` (unsynchronized median) and its per-layer backward times."""
    import statistics
    import time

    import numba
    import numpy as np

    import layers as L
    import optim as O
    from engine.models import lenet, mlp
    from engine.profiler import profile_step
    from runtime.device import Device

    dev = Device("cpu")
    build = {"lenet": lenet, "mlp": lambda d: mlp(d, in_features=784), "mlp10m": mlp_10m}[model_name]
    model = build(dev)
    rng = np.random.default_rng(batch)
    x = rng.random((batch, 1, 28, 28) if model_name == "lenet" else (batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    ce, opt = L.SoftmaxCrossEntropy(), O.Adam(model.parameters(), lr=1e-3)
    times = []
    for i in range(steps + 3):
        t0 = time.perf_counter()
        ce.forward(model.forward(x), y)
        model.backward(ce.backward())
        opt.step()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    # kernel calls per step (each CPU kernel a fork/join of every Numba thread): wrap the backend's ops, which
    # the warm-up steps cached on the instance, with counters for one step
    from runtime.device import host_device

    calls, backends = {}, {id(b): b for b in (dev.kernels, host_device().kernels)}.values()
    for backend in backends:
        for op, fn in list(backend.__dict__.items()):
            if callable(fn) and not op.startswith("_"):
                def counted(*args, _op=op, _fn=fn, **kwargs):
                    calls[_op] = calls.get(_op, 0) + 1
                    return _fn(*args, **kwargs)
                backend.__dict__[op] = counted
    ce.forward(model.forward(x), y)
    model.backward(ce.backward())
    opt.step()
    for backend in backends:
        for op in calls:
            backend.__dict__.pop(op, None)
    parts = profile_step(model, ce, opt, x, y, steps=steps)
    backward = []
    for index, layer in reversed(list(enumerate(model.layers))):
        ms = next(p["median_ms"] for p in parts if p["part"] == f"{index}:{type(layer).__name__} backward")
        backward.append([ms, 4 * sum(p.size for p in layer.parameters())])
    loss_backward = next(p["median_ms"] for p in parts if p["part"] == "loss backward")
    q = statistics.quantiles(times, n=10, method="inclusive")
    return {"model": model_name, "batch": batch, "threads": numba.get_num_threads(),
            "step_ms": 1e3 * statistics.median(times), "step_mean_ms": 1e3 * statistics.fmean(times),
            "step_p10_ms": 1e3 * q[0], "step_p90_ms": 1e3 * q[-1], "kernel_calls": sum(calls.values()),
            "kernel_calls_by_op": calls, "threading_layer": numba.threading_layer(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "parameters": sum(p.size for p in model.parameters()),
            "backward": backward, "loss_backward_ms": loss_backward, "parts": parts}


def _profile(model_name: str, batch: int, steps: int, threads: int | None = None,
             extra_env: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_ENABLE_CUDASIM", "PMI_SIZE", "PMI_RANK")} \
        | (extra_env or {})
    if threads:
        env["NUMBA_NUM_THREADS"] = str(threads)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    done = subprocess.run([sys.executable, "-m", "bench.scaling_model", "profile-worker", model_name, str(batch),
                           str(steps)], env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"profiling {model_name} b{batch} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cpu_busy(seconds: float = 1.0) -> float | None:
    """The fraction of this machine's CPU time that was busy over ``seconds`` (every process, /proc/stat):
    how much the machine's other tenants were running just before a measurement. None off Linux."""
    import time

    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except OSError:
        return None
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def measure(out: str, quick: bool = False, rounds: int = 3) -> dict:
    """Everything the model and docs/scaling.md need, measured on this machine, into one JSON file."""
    import datetime

    from hardware.machine import machine_info

    from .scaling import ALLREDUCE_SIZES, run_allreduce, run_scaling

    steps = 5 if quick else 20
    data = {"date": datetime.date.today().isoformat(), "machine": {k: v for k, v in machine_info().items()
                                                                  if k in ("cpu", "threads", "blas", "numba")},
            "load_before": os.getloadavg()}
    # Rounds, each: the rank scaling (1 rank x 2 threads; 2 ranks x 1 thread, blocking and overlap), overlap with
    # small buckets, overlap with MPICH's progress thread, the one-node steps of the three models, and threads
    # against ranks in one process (the global batch on 2 threads, on 2 threads with OpenMP's passive waiting,
    # on 1 thread, and the half batch each of 2 ranks computes, on 1 thread). Interleaved, so that every
    # configuration sees the machine's load alike; this machine is shared, and its load comes and goes.
    runs = {"default": [], "small_buckets": [], "async_progress": []}
    model_runs, data["threads_vs_ranks"] = [], []
    scaling_steps = 12 if quick else 30
    data["busy_before_round"], data["allreduce_runs"] = [], []
    for round_ in range(1 if quick else rounds):
        data["busy_before_round"].append(cpu_busy())
        data["allreduce_runs"].append(run_allreduce([2], ALLREDUCE_SIZES, 0.05 if quick else 0.2))
        runs["default"].append(run_scaling([1, 2], steps=scaling_steps))
        runs["small_buckets"].append(run_scaling([2], steps=scaling_steps, bucket_mb=0.05))
        runs["async_progress"].append(run_scaling([2], steps=scaling_steps, env={"MPICH_ASYNC_PROGRESS": "1"}))
        for name, key, batch in MEASURED_MODELS * (1 if quick else 2):
            p = _profile(key, batch, 3 if key == "mlp10m" and quick else (8 if key == "mlp10m" else steps))
            model_runs.append({"round": round_, "name": name, "key": key, "parameters": p["parameters"],
                               "batch": batch, "threads": p["threads"], "step_ms": p["step_ms"],
                               "step_p10_ms": p["step_p10_ms"], "backward": p["backward"]})
        for key, batch in (("lenet", 64), ("mlp", 256)):
            for threads, b, env in ((2, batch, None), (2, batch, {"OMP_WAIT_POLICY": "PASSIVE"}), (1, batch, None),
                                    (1, batch // 2, None)):
                p = _profile(key, b, steps, threads, env)
                keep = ("step_ms", "step_mean_ms", "step_p10_ms", "step_p90_ms", "kernel_calls", "threading_layer",
                        "parts")
                data["threads_vs_ranks"].append({"round": round_, "model": key, "batch": b, "threads": threads,
                                                 "env": env} | {k: p[k] for k in keep})
    data["scaling_runs"] = runs
    data["scaling"] = _median_rows(runs["default"])
    data["scaling_small_buckets"] = _median_rows(runs["small_buckets"])
    data["scaling_async_progress"] = _median_rows(runs["async_progress"])
    data["model_runs"] = model_runs
    # the calibration: each size's fastest round, like the node's compute below (the machine undisturbed)
    data["allreduce"] = [min((run[i] for run in data["allreduce_runs"]), key=lambda r: r["avg_us"])
                         for i in range(len(ALLREDUCE_SIZES))]
    data["calibration"] = fit_calibration(data["allreduce"], "bench --ops allreduce, 2 ranks, each size's "
                                                             "fastest round").__dict__
    # the scaling model's node: each model's fastest run (this machine least disturbed by its other tenants)
    data["models"] = [min((m for m in model_runs if m["key"] == key), key=lambda m: m["step_ms"])
                      for _, key, _ in MEASURED_MODELS]
    data["load_after"] = os.getloadavg()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(data, indent=1))
    return data


def _median_rows(runs: list[list[dict]]) -> list[dict]:
    """One row per (case, impl): each number the median over the runs (efficiency and the hidden fraction
    recomputed from the medians)."""
    import statistics

    rows = []
    for first in runs[0]:
        same = [r for run in runs for r in run if r["case"] == first["case"] and r["impl"] == first["impl"]]
        row = dict(first, runs=len(same))
        for key in ("median_ms", "step_ms", "comm_ms", "samples_per_s", "scaling", "efficiency", "rank0_p10_ms",
                    "rank0_p90_ms", "rank0_mean_ms"):
            values = [r[key] for r in same if r.get(key) is not None]
            row[key] = statistics.median(values) if values else None
        rows.append(row)
    for row in rows:
        if row["allreduce"] == "overlap":
            blocking = next(r for r in rows if r["case"] == row["case"] and r["ranks"] == row["ranks"]
                            and r["allreduce"] == "blocking")
            row["comm_hidden"] = min(1.0, max(0.0, 1 - row["comm_ms"] / blocking["comm_ms"]))
    return rows


# ---------------------------------------------------------------------------------------------- rendering
BEGIN, END = "<!-- scaling-model tables: begin (python -m bench.scaling_model render) -->", \
    "<!-- scaling-model tables: end -->"


def tables_markdown(data: dict) -> str:
    cal = Calibration(**data["calibration"])
    specs = specs_from(data)
    n = data["allreduce"][0]["ranks"]
    library = " ".join(data["allreduce"][0].get("library", "MPI").split())
    lines = [f"**Measured** ({data['date']}, `bench --ops allreduce`, {n} ranks, {library}, shared memory; each "
             f"size's fastest of {len(data.get('allreduce_runs', [0]))} rounds): mean latency over the iterations, "
             "averaged over the ranks (slowest rank in brackets), the algorithm bandwidth (bytes / latency), and "
             "the fitted model 2a + S b:", "",
             "| message | latency, µs | GB/s | model, µs |", "|---:|---:|---:|---:|"]
    for r in data["allreduce"]:
        size = r["bytes"]
        label = f"{size // 2**20} MiB" if size >= 2**20 else f"{size // 2**10} KiB" if size >= 2**10 else f"{size} B"
        lines.append(f"| {label} | {r['avg_us']:.1f} ({r['max_us']:.1f}) | {size / r['avg_us'] / 1e3:.2f} | "
                     f"{1e6 * ring_allreduce_s(n, size, None, cal):.1f} |")
    lines += ["", f"Calibration: a_mpi = {cal.alpha_s * 1e6:.1f} µs per ring step, "
             f"b_mpi = {cal.beta_s_per_byte * 1e9:.3f} ns/byte ({1 / cal.beta_s_per_byte / 1e9:.1f} GB/s) in host "
             f"memory, fitted to the {len(data['allreduce'])} sizes. Per node (this machine, its fastest run): "
             + "; ".join(f"{s.name} batch {s.batch}, step {s.step_s * 1e3:.1f} ms (backward {s.backward_s * 1e3:.1f}), "
                         f"{s.gradient_bytes / 2**20:.2f} MiB of gradients in {len(buckets_of(s))} bucket"
                         f"{'s' if len(buckets_of(s)) != 1 else ''}" for s in specs) + ".", "",
             "**Efficiency** (one node's step / the step on n nodes; weak scaling, each node keeps its batch), "
             "overlap / blocking:", "",
             "| model | link | " + " | ".join(f"{n}" for n in NODES) + " | < 50 % from |",
             "|---|---|" + "---:|" * len(NODES) + "---|"]
    for s in specs:
        for link in LINKS:
            cells = []
            for n in NODES:
                o, b = predict(s, n, link, cal, True), predict(s, n, link, cal, False)
                cells.append(f"{100 * o['efficiency']:.0f} / {100 * b['efficiency']:.0f}")
            first_o, first_b = stops_paying(s, link, cal, True), stops_paying(s, link, cal, False)
            fmt = lambda n: "never" if n is None else str(n)  # noqa: E731
            lines.append(f"| {s.name} | {link.gbps:g} Gb/s | " + " | ".join(cells)
                         + f" | {fmt(first_o)} / {fmt(first_b)} |")
    lines += ["", "**Step time** in ms at 2, 16 and 256 nodes (overlap / blocking) and the allreduce alone:", "",
              "| model | link | 1 node | 2 | 16 | 256 | allreduce at 256 |", "|---|---|---:|---:|---:|---:|---:|"]
    for s in specs:
        for link in LINKS:
            cells = []
            for n in (2, 16, 256):
                o, b = predict(s, n, link, cal, True), predict(s, n, link, cal, False)
                cells.append(f"{o['step_s'] * 1e3:.1f} / {b['step_s'] * 1e3:.1f}")
            comm = predict(s, 256, link, cal, False)["comm_s"]
            lines.append(f"| {s.name} | {link.gbps:g} Gb/s | {s.step_s * 1e3:.1f} | " + " | ".join(cells)
                         + f" | {comm * 1e3:.2f} |")
    return "\n".join(lines)


def save_plot(data: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cal = Calibration(**data["calibration"])
    specs = specs_from(data)
    fig, axes = plt.subplots(1, len(specs), figsize=(5.2 * len(specs), 4.4), sharey=True)
    colors = ["tab:red", "tab:orange", "tab:blue", "tab:green"]
    for ax, s in zip(axes, specs):
        for link, color in zip(LINKS, colors):
            for overlap, style in ((True, "-"), (False, "--")):
                eff = [100 * predict(s, n, link, cal, overlap)["efficiency"] for n in NODES]
                ax.plot(NODES, eff, style, color=color, marker="o" if overlap else None, ms=3,
                        label=f"{link.gbps:g} Gb/s" + ("" if overlap else ", blocking"))
        ax.axhline(100 * PAYS_FROM, color="black", lw=0.8, ls=":")
        ax.set_xscale("log", base=2)
        ax.set_xticks(NODES, [str(n) for n in NODES])
        ax.set_ylim(0, 102)
        ax.set_xlabel("nodes")
        one = " (one bucket: overlap = blocking)" if len(buckets_of(s)) == 1 else ""
        ax.set_title(f"{s.name}{one}\n{s.parameters:,} parameters, batch {s.batch}/node, step {s.step_s * 1e3:.1f} ms",
                     fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("efficiency, % (one node's step / step on n nodes)")
    axes[0].legend(fontsize=7, loc="lower left", ncol=2)
    fig.suptitle("data parallelism past one machine: ring allreduce model calibrated on this machine "
                 "(solid: overlap, dashed: blocking; dotted: 50 %)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(data_path: str, markdown: str = "docs/scaling.md", plot: str = "docs/images/scaling-model.png") -> None:
    data = json.loads(Path(data_path).read_text())
    doc = Path(ROOT / markdown if not os.path.isabs(markdown) else markdown)
    text = doc.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{doc}: no '{BEGIN}' ... '{END}' markers to write the tables between")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(head + BEGIN + "\n" + tables_markdown(data) + "\n" + END + tail)
    save_plot(data, ROOT / plot if not os.path.isabs(plot) else plot)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "profile-worker":
        print(json.dumps(_profile_worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    elif command == "measure":
        measure(sys.argv[sys.argv.index("--out") + 1], quick="--quick" in sys.argv,
                rounds=int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3)
    elif command == "render":
        render(sys.argv[2])
    else:
        raise SystemExit("usage: python -m bench.scaling_model measure --out FILE.json [--quick] | render FILE.json")
