#!/usr/bin/env python
"""The CPU backend's speed targets, checked as the median of several bench runs.

Each run is a fresh `python cli.py bench --device cpu --ops train,optim,gemm,conv --peers` process; every
ratio is taken inside one run (ours against PyTorch CPU or NumPy's BLAS measured in that same run), and
the table reports each ratio's median over the runs with its spread, against its target:

    python scripts/cpu_targets.py                      # 3 runs (~10 min on 2 cores)
    python scripts/cpu_targets.py --runs 5             # one set of five: one file in benchmarks/results/
    python scripts/cpu_targets.py --from a-set.json b-set.json run.json   # re-read earlier runs, no benchmarking

One invocation writes ONE file, `benchmarks/results/<start>-cpu-targets-set.json`:
`{"set": {...}, "summary": [...], "runs": [bench JSON, ...]}`, each run the bench's own JSON verbatim and
the summary the table below as data. It is rewritten after every run, so an interrupted set keeps the
runs it finished. `--from` reads set files and single bench JSON files alike.

Ratios above 1 mean tilegrad is faster. The machine's noise is large (another tenant on the same host
can halve a two-thread timing), which is why a target counts only at the median of several runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ["cli.py", "bench", "--device", "cpu", "--ops", "train,optim,gemm,conv", "--peers"]
SET_SUFFIX = "-cpu-targets-set.json"

# (what, op, case, impl, field, target): field is vs_peer (PyTorch time / ours) or vs_blas (NumPy matmul / ours)
TARGETS = [
    ("LeNet-5 training step, batch 64, vs PyTorch", "train", "lenet-5 b64", "fwd+bwd+adam", "vs_peer", 1.5),
    ("MLP 784-256-256-10 training step, batch 256, vs PyTorch", "train", "mlp 784-256-256-10 b256", "fwd+bwd+adam",
     "vs_peer", 1.5),
    ("Adam, 10M parameters, vs torch.optim", "optim", "adam 10M params", "fused prange", "vs_peer", 0.8),
    ("SGD-momentum, 10M parameters, vs torch.optim", "optim", "sgd-momentum 10M params", "fused prange",
     "vs_peer", 0.8),
    ("engine GEMM vs NumPy BLAS, LeNet fc1 (64x400x120)", "gemm", "lenet fc1 b64 (64x400 @ 400x120)", "blas_split",
     "vs_blas", 0.95),
    ("engine GEMM vs NumPy BLAS, MLP fc1 (256x784x256)", "gemm", "mlp fc1 b256 (256x784 @ 784x256)", "blas_split",
     "vs_blas", 0.95),
    ("engine GEMM vs NumPy BLAS, 1024^3", "gemm", "1024^3", "blas_split", "vs_blas", 0.95),
    ("engine GEMM vs NumPy BLAS, 2048^3", "gemm", "2048^3", "blas_split", "vs_blas", 0.95),
    ("prange GEMM (teaching) vs NumPy BLAS, 1024^3", "gemm", "1024^3", "prange", "vs_blas", 0.25),
    ("conv c1 forward+backward vs PyTorch", "conv", "lenet c1 1->6 5x5 pad2 28x28 b64 forward+backward",
     "image_gemm", "vs_peer", 1.0),
    ("conv c2 forward+backward vs PyTorch", "conv", "lenet c2 6->16 5x5 14x14 b64 forward+backward", "image_gemm",
     "vs_peer", 1.0),
    ("conv 32->64 3x3 forward+backward vs PyTorch (reported)", "conv", "32->64 3x3 pad1 32x32 b64 forward+backward",
     "image_gemm", "vs_peer", None),
]


def ratio(result: dict, op: str, case: str, impl: str, field: str) -> float | None:
    """The ratio on the row with the most threads (the peers run on that many)."""
    rows = [r for r in result["results"] if r["op"] == op and r["case"] == case and r["impl"] == impl
            and r["device"] == "cpu" and r.get(field) is not None]
    return max(rows, key=lambda r: r["threads"] or 0)[field] if rows else None


def summary(results: list[dict]) -> list[dict]:
    """Per target: how many runs measured it, the median and spread of its ratio, and whether it is met."""
    rows = []
    for what, op, case, impl, field, target in TARGETS:
        values = [v for v in (ratio(r, op, case, impl, field) for r in results) if v is not None]
        row = {"target": what, "op": op, "case": case, "impl": impl, "field": field, "goal": target,
               "runs": len(values), "median": None, "min": None, "max": None, "met": None}
        if values:
            row.update(median=statistics.median(values), min=min(values), max=max(values))
            if target is not None:
                row["met"] = row["median"] >= target
        rows.append(row)
    return rows


def table(results: list[dict]) -> str:
    lines = ["| target | runs | median | min – max | target | met |", "|---|---:|---:|---:|---:|---|"]
    for row in summary(results):
        goal = row["goal"]
        if not row["runs"]:
            lines.append(f"| {row['target']} | 0 | – | – | {goal or 'report'} | not measured |")
            continue
        met = "report only" if goal is None else ("yes" if row["met"] else "**no**")
        lines.append(f"| {row['target']} | {row['runs']} | {row['median']:.2f}x | {row['min']:.2f} – "
                     f"{row['max']:.2f} | {'–' if goal is None else format(goal, '.2f') + 'x'} | {met} |")
    return "\n".join(lines)


def load_runs(paths: list[Path]) -> tuple[list[dict], list[str]]:
    """The bench runs in set files (all of their runs) and single bench JSON files; a label per file."""
    runs, labels = [], []
    for path in map(Path, paths):
        data = json.loads(path.read_text())
        if "runs" in data:
            runs.extend(data["runs"])
            labels.append(f"{path.name} ({len(data['runs'])} runs)")
        else:
            runs.append(data)
            labels.append(path.name)
    return runs, labels


def write_set(path: Path, meta: dict, runs: list[dict]) -> None:
    path.write_text(json.dumps({"set": meta, "summary": summary(runs), "runs": runs}, indent=1) + "\n")


def run_bench(index: int, runs: int, work_dir: Path) -> dict:
    """One fresh bench process; its JSON, as the bench wrote it."""
    path = work_dir / f"run{index + 1}.json"
    print(f"[{index + 1}/{runs}] {' '.join(BENCH)} --json {path}", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, *BENCH, "--json", str(path)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return json.loads(path.read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="bench runs to take the median over (default 3)")
    parser.add_argument("--from", dest="files", nargs="+", type=Path,
                        help="set files or bench JSON files to read instead")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results",
                        help="where the set's one JSON file goes (default benchmarks/results)")
    args = parser.parse_args(argv)
    if args.files:
        results, labels = load_runs(args.files)
    else:
        if args.runs < 1:
            parser.error("--runs must be at least 1")
        args.out_dir.mkdir(parents=True, exist_ok=True)
        started = datetime.datetime.now()
        path = args.out_dir / f"{started.strftime('%Y-%m-%dT%H%M')}{SET_SUFFIX}"
        meta = {"started": started.isoformat(timespec="seconds"), "runs": args.runs,
                "bench": " ".join(["python", *BENCH])}
        results = []
        with tempfile.TemporaryDirectory() as work_dir:
            for i in range(args.runs):
                results.append(run_bench(i, args.runs, Path(work_dir)))
                write_set(path, meta, results)
        print(f"{len(results)} runs in {path}", file=sys.stderr)
        labels = [f"{path.name} ({len(results)} runs)"]
    if not results:
        print("no bench runs in the files given", file=sys.stderr)
        return 1
    machine = results[0]["machine"]
    print(f"{machine['cpu']}, {machine['threads']} threads; {len(results)} bench runs from "
          + ", ".join(labels) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
