#!/usr/bin/env python
"""The CPU backend's speed targets, checked as the median of several bench runs.

Each run is a fresh `python cli.py bench --device cpu --ops train,optim,gemm,conv --peers` process; every
ratio is taken inside one run (ours against PyTorch CPU or NumPy's BLAS measured in that same run), and
the table reports each ratio's median over the runs with its spread, against its target:

    python scripts/cpu_targets.py                      # 3 runs (~10 min on 2 cores), JSON kept in benchmarks/results/
    python scripts/cpu_targets.py --runs 5
    python scripts/cpu_targets.py --from a.json b.json c.json   # re-read earlier runs, no benchmarking

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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ["cli.py", "bench", "--device", "cpu", "--ops", "train,optim,gemm,conv", "--peers"]

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


def table(results: list[dict]) -> str:
    lines = ["| target | runs | median | min – max | target | met |", "|---|---:|---:|---:|---:|---|"]
    for what, op, case, impl, field, target in TARGETS:
        values = [v for v in (ratio(r, op, case, impl, field) for r in results) if v is not None]
        if not values:
            lines.append(f"| {what} | 0 | – | – | {target or 'report'} | not measured |")
            continue
        median = statistics.median(values)
        met = "report only" if target is None else ("yes" if median >= target else "**no**")
        lines.append(f"| {what} | {len(values)} | {median:.2f}x | {min(values):.2f} – {max(values):.2f} | "
                     f"{'–' if target is None else format(target, '.2f') + 'x'} | {met} |")
    return "\n".join(lines)


def run_bench(index: int, runs: int, out_dir: Path) -> Path:
    stamp = datetime.datetime.now().strftime("%Y-%m-%dT%H%M")
    path = out_dir / f"{stamp}-cpu-targets-run{index + 1}.json"
    print(f"[{index + 1}/{runs}] {' '.join(BENCH)} --json {path}", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, *BENCH, "--json", str(path)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="bench runs to take the median over (default 3)")
    parser.add_argument("--from", dest="files", nargs="+", type=Path, help="bench JSON files to read instead")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results",
                        help="where each run's JSON goes (default benchmarks/results)")
    args = parser.parse_args(argv)
    if args.files:
        paths = args.files
    else:
        if args.runs < 1:
            parser.error("--runs must be at least 1")
        args.out_dir.mkdir(parents=True, exist_ok=True)
        paths = [run_bench(i, args.runs, args.out_dir) for i in range(args.runs)]
    results = [json.loads(Path(p).read_text()) for p in paths]
    machine = results[0]["machine"]
    print(f"{machine['cpu']}, {machine['threads']} threads; {len(results)} bench runs: "
          + ", ".join(Path(p).name for p in paths) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
