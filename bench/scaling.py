"""``bench --ops train --ranks 1,2,...``: data-parallel throughput over MPI ranks on this machine.

For each rank count r, ``mpiexec -n r python -m bench.scaling`` times training steps of the
bench's models at the same *global* batch; every rank gets cores/r Numba threads, so 1 rank with all
threads is the honest baseline: ``scaling`` = throughput(r) / throughput(1 rank, all threads).
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


def _worker(out: str, steps: int) -> None:
    import statistics
    import time

    import numpy as np

    import layers as L
    import optim as O
    from engine.distributed import get_world
    from engine.models import lenet, mlp
    from runtime.device import Device

    world = get_world()
    dev = Device("cpu")
    results = []
    for name, model_name, batch in CASES:
        rng = np.random.default_rng(batch)
        x = rng.random((batch, 1, 28, 28) if model_name == "lenet" else (batch, 784)).astype(np.float32)
        y = rng.integers(0, 10, batch)
        model = lenet(dev) if model_name == "lenet" else mlp(dev, in_features=784)
        ce, opt = L.SoftmaxCrossEntropy(), O.Adam(model.parameters(), lr=1e-3)
        world.broadcast_(dev, model.flat.data)
        lo, hi = world.share(batch)
        xs, ys = np.ascontiguousarray(x[lo:hi]), y[lo:hi]
        times = []
        for step in range(steps + 3):
            if world.distributed:
                world.comm.Barrier()
            t0 = time.perf_counter()
            ce.forward(model.forward(xs), ys)
            model.backward(ce.backward())
            world.average_(dev, model.flat.grad, (hi - lo) / batch)
            opt.step()
            if step >= 3:  # warm-up steps compile and fault in the buffers
                times.append(time.perf_counter() - t0)
        slowest = world.comm.allreduce(statistics.median(times), op=world.MPI.MAX) if world.distributed \
            else statistics.median(times)
        results.append({"case": name, "batch": batch, "median_ms": slowest * 1e3,
                        "samples_per_s": batch / slowest})
    if world.is_root:
        Path(out).write_text(json.dumps({"ranks": world.size, "results": results}))


def run_scaling(rank_counts: list[int], steps: int = 10) -> list[dict]:
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
    if mpiexec is None:
        raise RuntimeError("--ranks needs an MPI launcher: pip install -e '.[dist]' (mpi4py and the mpich wheel)")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_ENABLE_CUDASIM", "PMI_SIZE", "PMI_RANK")}
    rows, baseline = [], {}
    with tempfile.TemporaryDirectory() as folder:
        for ranks in rank_counts:
            out = os.path.join(folder, f"r{ranks}.json")
            cmd = ([mpiexec, "-n", str(ranks)] if ranks > 1 else []) + \
                [sys.executable, "-m", "bench.scaling", out, str(steps)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"the {ranks}-rank run failed: {done.stderr.strip().splitlines()[-1:]}")
            for r in json.loads(Path(out).read_text())["results"]:
                baseline.setdefault(r["case"], r["samples_per_s"] if ranks == rank_counts[0] else None)
                base = baseline[r["case"]]
                rows.append({"op": "train", "case": r["case"], "device": "cpu", "impl": f"{ranks} MPI ranks",
                             "threads": None, "median_ms": r["median_ms"], "first_call_ms": None, "gflops": None,
                             "gbps": None, "pct_of_ceiling": None, "speedup_vs_cpu": None, "vs_peer": None,
                             "vs_blas": None,
                             "max_rel_err": None, "samples_per_s": r["samples_per_s"],
                             "scaling": r["samples_per_s"] / base if base else None,
                             "note": f"global batch {r['batch']} split over {ranks} ranks"})
    return rows


if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]))
