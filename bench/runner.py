"""Run the bench: ceilings first, then every case on every device and thread count, each result
re-validated against the float64 reference after timing, then peers, then the derived columns."""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, field

from .cases import NUMPY_BLAS, RowFailed, all_cases
from .ceilings import cpu_ceilings, gpu_ceilings
from .timing import cpu_threads, time_calls, time_interleaved

ALL_OPS = ("gemm", "conv", "pool", "elementwise", "rnn", "optim", "train")
EXTRA_OPS = ("allreduce",)  # run only when --ops names them: they launch MPI jobs (bench/scaling.py)
NO_GPU_NOTE = ("no GPU here: run the bench on a GPU machine for the cuda rows; the simulator only checks "
               "correctness (python cli.py --device sim check) and is never timed")


@dataclass
class BenchConfig:
    devices: list[str]  # "cpu" and/or "cuda"
    ops: list[str] = field(default_factory=lambda: list(ALL_OPS))
    quick: bool = False
    threads: list[int] = field(default_factory=list)  # CPU thread counts to run; [] = 1 and all
    peers: bool = False
    gpu_unavailable_reason: str | None = None
    mpi_ranks: list[int] = field(default_factory=lambda: [2])  # the rank counts of the allreduce family


# Every CPU row samples for at least this long (hundreds of calls of a millisecond case), so that a burst of
# noise from another tenant of this machine moves its median little.
MIN_TIME_S = 0.3
# After a row that gave BLAS its own threads, they spin a while before sleeping, and would steal a core
# from the next row. Wait for them to go idle.
BLAS_SETTLE_S = 0.3
# GEMM versions and NumPy's matmul (the "vs BLAS" yardstick) are timed in this many alternating blocks each.
PAIRED_ROUNDS = 6


def _row(spec, device, impl, threads=None, **values) -> dict:
    row = {"op": spec.op, "case": spec.case, "device": device, "impl": impl, "threads": threads,
           "median_ms": None, "first_call_ms": None, "gflops": None, "gbps": None, "pct_of_ceiling": None,
           "speedup_vs_cpu": None, "vs_peer": None, "vs_blas": None, "max_rel_err": None, "samples_per_s": None,
           "note": None, "spread": None, "vs_one_thread": None}
    row.update(values)
    return row


def _measured(case, device, impl, threads, first_ms, median_ms, err, spread=None) -> dict:
    seconds = median_ms / 1e3
    row = _row(case, device, impl, threads, median_ms=median_ms, first_call_ms=first_ms, max_rel_err=err,
               spread=spread)
    if case.flops:
        row["gflops"] = case.flops / seconds / 1e9
    if case.bytes:
        row["gbps"] = case.bytes / seconds / 1e9
    if "batch" in case.extra:
        row["samples_per_s"] = case.extra["batch"] / seconds
    return row


def run_bench(config: BenchConfig, progress=None) -> dict:
    import numba

    from hardware.machine import machine_info
    from runtime.device import Device

    all_threads = numba.get_num_threads()
    thread_counts = config.threads or sorted({1, all_threads})
    ceilings = {}
    if "cpu" in config.devices:
        ceilings["cpu"] = cpu_ceilings(max(thread_counts), config.quick)
    if "cuda" in config.devices:
        ceilings["cuda"] = gpu_ceilings(config.quick)
    devices = {name: Device(name) for name in config.devices}
    cases = list(all_cases(config.ops, config.quick, gpu="cuda" in devices))
    rows = []
    started = time.perf_counter()
    interrupted = None
    try:
        _run_cases(cases, devices, config, thread_counts, rows, progress)
    except KeyboardInterrupt:
        # Ctrl-C (or `timeout --signal=INT`): keep every row measured so far, say where it stopped
        done = {r["case"] for r in rows}
        interrupted = f"interrupted after {sum(c.case in done for c in cases)} of {len(cases)} cases"
    if config.peers:
        order = {c.case: i for i, c in enumerate(cases)}
        first_of_op = {}
        for i, c in enumerate(cases):
            first_of_op.setdefault(c.op, i)
        rows.sort(key=lambda r: order[r["case"]] if r["case"] in order else first_of_op[r["op"]] + 0.5)
    _raise_compute_ceiling(rows, ceilings)
    _derive(rows, ceilings)
    if progress:
        progress(len(cases), len(cases), "done")
    return {"machine": _machine_summary(machine_info()), "ceilings": ceilings, "results": rows,
            "config": {"devices": config.devices, "ops": config.ops, "quick": config.quick,
                       "threads": thread_counts, "peers": config.peers},
            "seconds": time.perf_counter() - started, "interrupted": interrupted}


def _run_cases(cases, devices, config, thread_counts, rows, progress) -> None:
    """Every case on every device, implementation and thread count, appended to ``rows`` as it is measured
    (so an interrupted run keeps them); each family's peers right after it."""
    peer_jobs, mpi_cases = [], []
    for index, case in enumerate(cases):
        if progress:
            progress(index, len(cases), f"{case.op}: {case.case}")
        if case.extra.get("mpi"):  # an MPI family is measured at its end, in one mpiexec job per rank count
            mpi_cases.append(case)
            if index + 1 == len(cases) or cases[index + 1].op != case.op:
                rows.extend(_mpi_rows(mpi_cases, config))
                mpi_cases = []
            continue
        for dev_name, dev in devices.items():
            if dev_name == "cpu" and NUMPY_BLAS in case.impls.get("cpu", []):
                rows.extend(_cpu_rows_against_the_yardstick(case, dev, config, thread_counts))
                continue
            for impl in case.impls.get(dev_name, []):
                why_not = _rung_unavailable(impl) if dev_name == "cuda" else None
                if why_not:  # e.g. TF32 tensor cores on a T4 (sm_75): a row with the reason, not a crash
                    rows.append(_row(case, dev_name, impl, note=why_not))
                    continue
                counts = thread_counts if dev_name == "cpu" else [None]
                for threads in counts:
                    run, check = case.setup(dev, impl)
                    if dev_name == "cpu":
                        blas_threads, settle_s = _blas_threads(case, impl, threads)
                        recorded = _Recorded(run)
                        with cpu_threads(threads, blas_threads=blas_threads):
                            first, median = time_calls(recorded, "cpu", 3 if config.quick else 10,
                                                       0.5 if config.quick else 2.0, min_time_s=_min_time(config))
                        time.sleep(settle_s)
                        spread = spread_of(recorded.samples_ms[1:])  # the first call is the warm-up
                    else:
                        first, median, spread = _time_cuda_row(run, 20 if config.quick else 50)
                    try:
                        rows.append(_measured(case, dev_name, impl, threads, first, median, check(), spread))
                    except RowFailed as failure:  # a wrong answer: the row stays, marked failed, untimed
                        rows.append(_row(case, dev_name, impl, threads, note=f"FAILED: {failure}"))
        if config.gpu_unavailable_reason and index == next(i for i, c in enumerate(cases) if c.op == case.op):
            rows.append(_row(case, "cuda", "-", case="(all cases)", note=config.gpu_unavailable_reason))
        if config.peers and case.peer is not None:
            peer_jobs.append({"index": index, "peer": case.peer, "devices": list(devices),
                              "threads": max(thread_counts), "min_time_s": _min_time(config)})
        last_of_family = index + 1 == len(cases) or cases[index + 1].op != case.op
        if peer_jobs and last_of_family:
            # The peers of a family run right after ours, in one fresh process: a shared machine's speed
            # drifts over minutes, so a ratio is fair only when both sides are timed close together. Fresh
            # per family: a long-lived torch process ran later families far slower than alone.
            from .peers import run_peers

            if progress:
                progress(index, len(cases), f"{case.op}: PyTorch peers (in a separate process)")
            for t in run_peers(peer_jobs):
                rows.append(_measured(cases[t["index"]], t["device"], t.get("impl", "torch"), t["threads"],
                                      t["first_ms"], t["median_ms"], t["max_rel_err"]))
            peer_jobs = []


def _mpi_rows(cases, config) -> list[dict]:
    """The allreduce family's rows: each message size at each rank count of ``config.mpi_ranks`` (2 and
    up), OSU-style, in separate ``mpiexec`` jobs; gbps is the algorithm bandwidth, bytes / latency."""
    from .scaling import run_allreduce

    counts = sorted({r for r in config.mpi_ranks if r >= 2}) or [2]
    try:
        measured = run_allreduce(counts, [c.extra["message_bytes"] for c in cases], 0.05 if config.quick else 0.2)
    except RuntimeError as exc:
        return [_row(cases[0], "cpu", cases[0].impls["cpu"][0], case="(all sizes)", note=str(exc))]
    by_size = {c.extra["message_bytes"]: c for c in cases}
    rows = []
    for m in measured:
        case = by_size[m["bytes"]]
        row = _measured(case, "cpu", f"{case.impls['cpu'][0]}, {m['ranks']} ranks", None, None, m["avg_us"] / 1e3,
                        m["max_rel_err"])
        row.update(ranks=m["ranks"], min_us=m["min_us"], max_us=m["max_us"], iterations=m["iterations"],
                   bus_gbps=row["gbps"] * 2 * (m["ranks"] - 1) / m["ranks"],
                   note=f"{m['library']}; mean of {m['iterations']} iterations, averaged over the ranks")
        rows.append(row)
    return rows


def spread_of(samples_ms) -> float | None:
    """How widely a row's timed repeats spread: their interquartile range over their median (0.1: the middle
    half of the repeats lies within 10 % of the median's size). None with fewer than 3 repeats."""
    if len(samples_ms) < 3:
        return None
    q1, median, q3 = statistics.quantiles(samples_ms, n=4, method="inclusive")
    return (q3 - q1) / median if median > 0 else None


class _Recorded:
    """``run`` with each call's wall time recorded (a CPU row's repeats, for its spread; two clock reads
    per call, well under a microsecond)."""

    def __init__(self, run):
        self.run, self.samples_ms = run, []

    def __call__(self):
        t0 = time.perf_counter()
        self.run()
        self.samples_ms.append((time.perf_counter() - t0) * 1e3)


def _time_cuda_row(run, repeats: int) -> tuple[float, float, float | None]:
    """(first_call_ms, median_ms, spread) of a GPU row: time_calls's CUDA timing, whose event-timed samples
    also give the spread (a wrapper's host clock would time the launch, not the kernel)."""
    from .timing import _time_cuda

    gc_was_on = gc.isenabled()
    gc.disable()  # as time_calls does
    try:
        first, samples = _time_cuda(run, repeats, 2.0)
    finally:
        if gc_was_on:
            gc.enable()
    return first, statistics.median(samples), spread_of(samples)


def _min_time(config) -> float:
    """How long each CPU row samples at least."""
    return 0.05 if config.quick else MIN_TIME_S


def _blas_threads(case, impl, threads) -> tuple[int | None, float]:
    """(BLAS threads for this CPU row, None for tilegrad's single-threaded policy; seconds to wait after it
    for BLAS's own threads to stop spinning)."""
    blas_threads = threads if impl in case.blas_threaded else None
    return blas_threads, BLAS_SETTLE_S if blas_threads and blas_threads > 1 else 0.0


def _cpu_rows_against_the_yardstick(case, dev, config, thread_counts) -> list[dict]:
    """A case with NumPy's matmul as its yardstick: at each thread count, every CPU version and the yardstick
    timed in alternating blocks (time_interleaved), so that "vs BLAS" is a paired ratio."""
    impls = case.impls["cpu"]
    measured = {}
    for threads in thread_counts:
        entries, checks, recorded = [], {}, {}
        for impl in impls:
            run, checks[impl] = case.setup(dev, impl)
            recorded[impl] = _Recorded(run)
            blas_threads, settle_s = _blas_threads(case, impl, threads)
            entries.append((impl, recorded[impl], lambda t=threads, b=blas_threads: cpu_threads(t, blas_threads=b),
                            settle_s))
        timings = time_interleaved(entries, rounds=3 if config.quick else PAIRED_ROUNDS, min_time_s=_min_time(config))
        for impl, (first, median) in timings.items():  # the spread: over every block's samples, the warm-up left out
            measured[impl, threads] = (first, median, checks[impl](), spread_of(recorded[impl].samples_ms[1:]))
    return [_measured(case, "cpu", impl, threads, *measured[impl, threads])
            for impl in impls for threads in thread_counts]


def _machine_summary(info: dict) -> dict:
    gpu = info["gpu"]
    return {"cpu": info["cpu"], "threads": info["threads"], "gpu": gpu.get("name") if gpu.get("present") else None,
            "numba": info["numba"], "numba_cuda": info["numba_cuda"], "python": info["python"],
            "numpy": info["numpy"], "blas": info["blas"], "simulator": info["simulator"],
            "driver_cuda_version": gpu.get("driver_cuda_version"), **_thread_summary()}


def _thread_summary() -> dict:
    from cuda_kernels.threads import thread_settings

    settings = thread_settings()
    return {key: settings[key] for key in ("wait_policy", "threading_layer", "parallel_grain")}


def _raise_compute_ceiling(rows: list[dict], ceilings: dict) -> None:
    """The compute ceiling is the best SGEMM this run saw: a larger GEMM row can beat the 1024^3 probe."""
    for kind, impls in (("cpu", ("blas", "blas_split", NUMPY_BLAS)),
                        ("cuda", ("register_blocked_8x8", "register_blocked", "split_k", "shared_tiled", "naive"))):
        best = max((r["gflops"] for r in rows if r["op"] == "gemm" and r["device"] == kind and r["impl"] in impls
                    and r["gflops"]), default=0.0)
        if kind in ceilings and best > ceilings[kind]["gflops"]:
            ceilings[kind]["gflops"] = best
            ceilings[kind]["gflops_how"] += f"; raised to the best {kind} GEMM row of this run"


def _derive(rows: list[dict], ceilings: dict) -> None:
    """pct_of_ceiling (roofline), speedup_vs_cpu (GPU rows), vs_peer (peer time / our time), vs_blas (CPU GEMM
    rows: NumPy's matmul time on the same number of threads / our time)."""
    for row in rows:
        if row["median_ms"] is None:
            continue
        kind = "cuda" if row["device"] in ("cuda", "torch-cuda", "cupy") else "cpu"
        ceiling = ceilings.get(kind)
        if ceiling and (row["gflops"] or row["gbps"]):
            if row["gflops"]:
                intensity = row["gflops"] / row["gbps"] if row["gbps"] else float("inf")
                attainable = min(ceiling["gflops"], intensity * ceiling["gbps"])
                row["pct_of_ceiling"] = 100 * row["gflops"] / attainable
            else:
                row["pct_of_ceiling"] = 100 * row["gbps"] / ceiling["gbps"]
    ours = [r for r in rows if r["device"] in ("cpu", "cuda") and r["median_ms"] is not None]
    for row in ours:
        same = [r for r in rows if r["op"] == row["op"] and r["case"] == row["case"] and r["median_ms"] is not None]
        if row["device"] == "cuda":
            cpu = [r["median_ms"] for r in same if r["device"] == "cpu"]
            if cpu:
                row["speedup_vs_cpu"] = min(cpu) / row["median_ms"]
        peer_device = "torch-cuda" if row["device"] == "cuda" else "torch-cpu"
        peer_rows = [r for r in same if r["device"] == peer_device]
        # a peer run the same way (train: eager against eager, graph against graph) when there is one, else its best
        peers = [r["median_ms"] for r in peer_rows if r["impl"] == row["impl"]] or [r["median_ms"] for r in peer_rows]
        if peers:
            row["vs_peer"] = min(peers) / row["median_ms"]
        if row["device"] == "cpu" and (row["threads"] or 1) > 1:  # against itself on one thread, same run
            one = [r["median_ms"] for r in same if r["device"] == "cpu" and r["impl"] == row["impl"]
                   and r["threads"] == 1]
            if one:
                row["vs_one_thread"] = one[0] / row["median_ms"]
        if row["device"] == "cpu" and row["impl"] != NUMPY_BLAS:  # against NumPy's BLAS on as many threads
            blas = [r["median_ms"] for r in same if r["impl"] == NUMPY_BLAS and r["threads"] == row["threads"]]
            if blas:
                row["vs_blas"] = blas[0] / row["median_ms"]


def _rung_unavailable(impl: str) -> str | None:
    """Why ``impl`` cannot run on this machine's GPU (hardware.machine.RUNG_NEEDS), or None."""
    from hardware.machine import RUNG_NEEDS, rung_unavailable

    if impl not in RUNG_NEEDS:
        return None
    from cuda_kernels import SIMULATOR

    if SIMULATOR:
        return None
    from numba import cuda

    return rung_unavailable(impl, cuda.get_current_device().compute_capability)
