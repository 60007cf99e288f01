#!/usr/bin/env python
"""Turn a bench JSON into a Markdown table: per case, our best CPU row (and GPU row, when present),
the PyTorch peer, and the ratios (vs PyTorch; CPU GEMMs also vs NumPy's BLAS) — for README.md and
docs/benchmarks.md.

    python scripts/bench_markdown.py benchmarks/results/2026-11-27-cpu-epyc-2core.json
"""

import json
import sys


def best(rows, device, impl=None):
    rows = [r for r in rows if r["device"] == device and r["median_ms"] is not None
            and (impl is None or r["impl"] == impl)]
    return min(rows, key=lambda r: r["median_ms"]) if rows else None


def main(path: str) -> None:
    data = json.load(open(path))
    m = data["machine"]
    c = data["ceilings"].get("cpu", {})
    print(f"Machine: {m['cpu']}, {m['threads']} threads, GPU: {m['gpu'] or 'none'}; numba {m['numba']}, "
          f"numba-cuda {m['numba_cuda']}. CPU ceilings measured in the same run: {c.get('gflops', 0):.0f} GFLOP/s "
          f"SGEMM, {c.get('gbps', 0):.0f} GB/s.\n")
    print("| op | case | tilegrad (best CPU row) | ms | rate | % ceiling | PyTorch CPU ms | vs peer | vs BLAS |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    cases = list(dict.fromkeys((r["op"], r["case"]) for r in data["results"] if r["case"] != "(all cases)"))
    for op, case in cases:
        rows = [r for r in data["results"] if r["op"] == op and r["case"] == case]
        for impl in dict.fromkeys(r["impl"] for r in rows if r["device"] == "cpu"):
            ours = best(rows, "cpu", impl)
            peer = best(rows, "torch-cpu")
            if ours["samples_per_s"]:
                rate = f"{ours['samples_per_s']:,.0f} samples/s"
            elif ours["gflops"]:
                rate = f"{ours['gflops']:.1f} GFLOP/s"
            else:
                rate = f"{ours['gbps']:.1f} GB/s"
            pct = "" if ours["pct_of_ceiling"] is None else f"{ours['pct_of_ceiling']:.0f}"
            print(f"| {op} | {case} | {impl} ({ours['threads']} thr) | {ours['median_ms']:.3f} | {rate} | {pct} | "
                  f"{'' if peer is None else format(peer['median_ms'], '.3f')} | "
                  f"{'' if ours['vs_peer'] is None else format(ours['vs_peer'], '.2f')} | "
                  f"{'' if ours.get('vs_blas') is None else format(ours['vs_blas'], '.2f')} |")


if __name__ == "__main__":
    main(sys.argv[1])
