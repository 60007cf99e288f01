"""Data parallelism over MPI ranks on this machine: training steps (``bench --ranks 1,2,...``) and the
allreduce itself (``bench --ops allreduce``, in the manner of the OSU micro-benchmarks).

**Steps.** For each rank count r, ``mpiexec -n r python -m bench.scaling train ...`` times training steps
of the bench's models at the same *global* batch; every rank gets cores/r Numba threads, so 1 rank with
all threads is the honest baseline. With r > 1 each case runs with both ways of averaging the gradients
(engine/distributed.py), in alternating blocks of steps: ``blocking`` (one Allreduce after backward) and
``overlap`` (buckets started during backward). Each row: the step time (the slowest rank's median),
``comm_ms`` (the median time per step the training thread spent inside MPI calls: for blocking the whole
allreduce, for overlap what was left exposed), ``comm_hidden`` (overlap rows: the fraction of the
blocking allreduce's time that the overlap hid, 1 - comm_ms(overlap) / comm_ms(blocking)), samples/s,
``scaling`` = throughput / throughput(1 rank) and ``efficiency`` = that per compute unit used (CPU
threads of all ranks, or distinct GPUs: on one machine, where r ranks share the cores or the GPU 1 rank
had, the two are equal).

**Allreduce.** ``mpiexec -n r python -m bench.scaling allreduce ...``: for each message size, skip
iterations, then timed iterations of ``MPI_Allreduce`` (sum of float32), each timed alone with a barrier
between them (osu_allreduce's loop); the latency is the mean over iterations, averaged over the ranks
(min and max kept). Every rank sends rank + 1, so the result is checked against r(r+1)/2.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = [("lenet-5 b64", "lenet", 64), ("mlp 784-256-256-10 b256", "mlp", 256)]
MODES = ("blocking", "overlap")
ROUNDS = 3  # alternating blocks per mode: a shared machine's speed drifts, so the two are timed side by side
ALLREDUCE_SIZES = [4 * 4**i for i in range(12)]  # 4 B to 16 MiB
ALLREDUCE_SIZES_QUICK = [4, 1024, 65536, 1048576, 4194304]


# ---------------------------------------------------------------------------------------------- workers
def _train_worker(out: str, steps: int, bucket_mb: float, device: str = "cpu") -> None:
    import statistics
    import time

    import numba
    import numpy as np

    import layers as L
    import optim as O
    from engine.distributed import get_world, make_reducer
    from engine.models import lenet, mlp
    from runtime.device import Device

    world = get_world()
    gpu = world.bind_gpu() if device == "cuda" else None  # local rank r: GPU r mod (GPUs here)
    dev = Device(device)
    # what the ranks compute on, for the efficiency: the CPU threads of all ranks, or the distinct GPUs
    units = len(set(world.comm.allgather(gpu)) if world.distributed else {gpu}) if device == "cuda" else \
        numba.get_num_threads() * world.size
    results = []
    per_block = max(1, -(-steps // ROUNDS))
    for name, model_name, batch in CASES:
        rng = np.random.default_rng(batch)
        x = rng.random((batch, 1, 28, 28) if model_name == "lenet" else (batch, 784)).astype(np.float32)
        y = rng.integers(0, 10, batch)
        model = lenet(dev) if model_name == "lenet" else mlp(dev, in_features=784)
        ce, opt = L.SoftmaxCrossEntropy(), O.Adam(model.parameters(), lr=1e-3)
        world.broadcast_(dev, model.flat.data)
        lo, hi = world.share(batch)
        xs, ys = dev.asarray(np.ascontiguousarray(x[lo:hi])), y[lo:hi]
        reducers = {mode: make_reducer(world, model, mode, bucket_mb) for mode in MODES} if world.distributed \
            else {"-": None}
        times = {mode: [] for mode in reducers}
        comm = {mode: [] for mode in reducers}
        for block in range(ROUNDS):
            for mode, reducer in reducers.items():
                if reducer is not None:
                    reducer.attach()
                warmup = 3 if block == 0 else 1  # the first steps compile and fault in the buffers
                for step in range(warmup + per_block):
                    if world.distributed:
                        world.comm.Barrier()
                    t0 = time.perf_counter()
                    if reducer is not None:
                        reducer.begin((hi - lo) / batch)
                    ce.forward(model.forward(xs), ys)
                    model.backward(ce.backward())
                    if reducer is not None:
                        reducer.wait()
                    opt.step()
                    dev.synchronize()
                    if step >= warmup:
                        times[mode].append(time.perf_counter() - t0)
                        comm[mode].append(reducer.comm_s if reducer is not None else 0.0)
        for mode, reducer in reducers.items():
            median, comm_s = statistics.median(times[mode]), statistics.median(comm[mode])
            if world.distributed:  # the step takes as long as its slowest rank; the allreduce time: the mean
                median = world.comm.allreduce(median, op=world.MPI.MAX)
                comm_s = world.comm.allreduce(comm_s, op=world.MPI.SUM) / world.size
            q = statistics.quantiles(times[mode], n=10, method="inclusive")
            results.append({"case": name, "batch": batch, "allreduce": None if reducer is None else mode,
                            "median_ms": median * 1e3, "comm_ms": comm_s * 1e3, "samples_per_s": batch / median,
                            "rank0_p10_ms": q[0] * 1e3, "rank0_p90_ms": q[-1] * 1e3,
                            "rank0_mean_ms": statistics.fmean(times[mode]) * 1e3,
                            "buckets": None if reducer is None else len(reducer.buckets),
                            "parameters": sum(p.size for p in model.parameters())})
    if world.is_root:
        Path(out).write_text(json.dumps({"ranks": world.size, "threads_per_rank": numba.get_num_threads(),
                                         "bucket_mb": bucket_mb, "device": repr(dev), "compute_units": units,
                                         "transport": world.transport(dev), "results": results}))


def _allreduce_worker(out: str, sizes: list[int], budget_s: float) -> None:
    import time

    import numpy as np

    from engine.distributed import get_world

    world = get_world()
    comm, MPI = world.comm, world.MPI
    results = []
    for size in sizes:
        n = max(1, size // 4)
        buf = np.empty(n, np.float32)
        skip = 10 if size <= 65536 else 3
        probe = []
        for _ in range(skip):  # the skip iterations also estimate the time of one
            buf.fill(world.rank + 1)
            comm.Barrier()
            t0 = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            probe.append(time.perf_counter() - t0)
        estimate = comm.allreduce(min(probe), op=MPI.MAX)
        iterations = int(min(1000 if size <= 8192 else 200, max(10, budget_s / max(estimate, 1e-7))))
        total, worst_err = 0.0, 0.0
        expected = world.size * (world.size + 1) / 2
        for _ in range(iterations):
            buf.fill(world.rank + 1)
            t0 = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            total += time.perf_counter() - t0
            comm.Barrier()
        worst_err = float(np.abs(buf.astype(np.float64) - expected).max() / expected)
        latency = total / iterations
        lats = comm.allgather(latency)
        errs = comm.allgather(worst_err)
        results.append({"bytes": n * 4, "iterations": iterations, "avg_us": 1e6 * sum(lats) / len(lats),
                        "min_us": 1e6 * min(lats), "max_us": 1e6 * max(lats), "max_rel_err": max(errs)})
    if world.is_root:
        Path(out).write_text(json.dumps({"ranks": world.size, "library": MPI.Get_library_version().splitlines()[0],
                                         "results": results}))


# ---------------------------------------------------------------------------------------------- launching
def mpiexec_path() -> str:
    found = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
    if found is None:
        raise RuntimeError("needs an MPI launcher: pip install -e '.[dist]' (mpi4py and the mpich wheel)")
    return found


def _launch(ranks: int, args: list[str], out: str, env: dict | None = None) -> dict:
    cmd = ([mpiexec_path(), "-n", str(ranks)] if ranks > 1 else []) + [sys.executable, "-m", "bench.scaling", *args]
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_ENABLE_CUDASIM", "PMI_SIZE", "PMI_RANK")} \
        | (env or {})
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=root)
    if done.returncode != 0:
        raise RuntimeError(f"the {ranks}-rank run failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(Path(out).read_text())


def run_scaling(rank_counts: list[int], steps: int = 12, bucket_mb: float = 1.0, device: str = "cpu",
                env: dict | None = None) -> list[dict]:
    """Rows of training-step throughput per rank count (and, with r > 1, per allreduce mode), on the CPU
    (ranks share its cores) or on GPUs (``device="cuda"``: local rank r takes GPU r mod the GPUs); ``env``:
    extra environment variables for the ranks (e.g. MPICH_ASYNC_PROGRESS=1)."""
    rows, baseline = [], {}
    with tempfile.TemporaryDirectory() as folder:
        for ranks in rank_counts:
            out = os.path.join(folder, f"r{ranks}.json")
            data = _launch(ranks, ["train", out, str(steps), str(bucket_mb), device], out, env)
            blocking_comm = {r["case"]: r["comm_ms"] for r in data["results"] if r["allreduce"] == "blocking"}
            for r in data["results"]:
                base = baseline.setdefault(r["case"], (r["samples_per_s"], data["compute_units"])) \
                    if ranks == rank_counts[0] else baseline.get(r["case"])
                scaling = r["samples_per_s"] / base[0] if base else None
                hidden = None
                if r["allreduce"] == "overlap" and blocking_comm.get(r["case"]):
                    hidden = min(1.0, max(0.0, 1.0 - r["comm_ms"] / blocking_comm[r["case"]]))
                elif r["allreduce"] == "blocking":
                    hidden = 0.0
                label = f"{ranks} MPI rank{'s' if ranks > 1 else ''}" + (f", {r['allreduce']}" if r["allreduce"]
                                                                         else "")
                rows.append({"op": "train", "case": r["case"], "device": device, "impl": label,
                             "threads": data["threads_per_rank"], "median_ms": r["median_ms"], "first_call_ms": None,
                             "gflops": None, "gbps": None, "pct_of_ceiling": None, "speedup_vs_cpu": None,
                             "vs_peer": None, "vs_blas": None, "max_rel_err": None,
                             "samples_per_s": r["samples_per_s"], "scaling": scaling,
                             "ranks": ranks, "allreduce": r["allreduce"], "step_ms": r["median_ms"],
                             "comm_ms": r["comm_ms"] if ranks > 1 else 0.0, "comm_hidden": hidden,
                             "efficiency": scaling * base[1] / data["compute_units"] if base else None,
                             "buckets": r["buckets"], "bucket_mb": bucket_mb if r["allreduce"] == "overlap" else None,
                             "parameters": r["parameters"],
                             "transport": data["transport"], "rank0_p10_ms": r["rank0_p10_ms"],
                             "rank0_p90_ms": r["rank0_p90_ms"], "rank0_mean_ms": r["rank0_mean_ms"],
                             "note": f"global batch {r['batch']} split over {ranks} ranks"})
    return rows


def run_allreduce(rank_counts: list[int], sizes: list[int], budget_s: float = 0.2) -> list[dict]:
    """OSU-style allreduce latency per (rank count, message size): dicts with ranks, bytes, avg_us, min_us,
    max_us, iterations, max_rel_err, library."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for ranks in rank_counts:
            out = os.path.join(folder, f"a{ranks}.json")
            data = _launch(ranks, ["allreduce", out, ",".join(map(str, sizes)), str(budget_s)], out)
            rows += [dict(r, ranks=ranks, library=data["library"]) for r in data["results"]]
    return rows


def print_allreduce_table(rows: list[dict], console=None) -> None:
    """The comm columns of ``run_scaling``'s rows: how long each step spent in the allreduce, how much of it
    the overlap hid, and the efficiency against one rank."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="gradient allreduce per step (comm: time the training thread spent in MPI calls; hidden: "
                        "the part of the blocking allreduce's time the overlap hid)", title_justify="left")
    for column in ("case", "ranks", "allreduce", "ms/step", "comm ms", "hidden", "efficiency"):
        table.add_column(column, justify="left" if column in ("case", "allreduce") else "right")
    for r in rows:
        table.add_row(r["case"], str(r["ranks"]), r["allreduce"] or "–", f"{r['median_ms']:.2f}",
                      f"{r['comm_ms']:.3f}", "–" if r["comm_hidden"] is None else f"{100 * r['comm_hidden']:.0f} %",
                      "–" if r["efficiency"] is None else f"{100 * r['efficiency']:.0f} %")
    (console or Console(width=100)).print(table)


if __name__ == "__main__":
    if sys.argv[1] == "train":
        _train_worker(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), *sys.argv[5:6])
    elif sys.argv[1] == "allreduce":
        _allreduce_worker(sys.argv[2], [int(s) for s in sys.argv[3].split(",")], float(sys.argv[4]))
    else:
        raise SystemExit(f"usage: python -m bench.scaling train|allreduce ...; got {sys.argv[1:]}")
