#!/usr/bin/env python
"""Turn a bench JSON into a Markdown table: per case and version, our best row, the PyTorch peer on the
same device, and the ratios (vs PyTorch; CPU GEMMs also vs NumPy's BLAS; GPU rows also vs the best CPU
row of the run) — for README.md and docs/benchmarks.md.

    python scripts/bench_markdown.py benchmarks/results/2026-11-27-cpu-epyc-2core.json
    python scripts/bench_markdown.py --device cuda benchmarks/results/2026-11-27-gpu/run2-h100-bench.json
"""

import argparse
import json


def best(rows, device, impl=None):
    rows = [r for r in rows if r["device"] == device and r["median_ms"] is not None
            and (impl is None or r["impl"] == impl)]
    return min(rows, key=lambda r: r["median_ms"]) if rows else None


def _rate(row) -> str:
    if row["samples_per_s"]:
        return f"{row['samples_per_s']:,.0f} samples/s"
    if row["gflops"]:
        return f"{row['gflops']:,.1f} GFLOP/s"
    return f"{row['gbps']:,.1f} GB/s"


def _ratio(value) -> str:
    return "" if value is None else f"{value:.2f}"


def markdown(data: dict, device: str = "cpu") -> str:
    m = data["machine"]
    c = data["ceilings"].get(device, {})
    lines = [f"Machine: {m['cpu']}, {m['threads']} threads, GPU: {m['gpu'] or 'none'}; numba {m['numba']}, "
             f"numba-cuda {m['numba_cuda']}. {device.upper()} ceilings measured in the same run: "
             f"{c.get('gflops', 0):,.0f} GFLOP/s ({c.get('gflops_how', '-')}), {c.get('gbps', 0):,.0f} GB/s "
             f"({c.get('gbps_how', '-')}).", ""]
    peer_device = "torch-cuda" if device == "cuda" else "torch-cpu"
    if device == "cuda":
        header = "| op | case | tilegrad version | ms | rate | % ceiling | PyTorch GPU ms | vs peer | vs best CPU |"
    else:
        header = "| op | case | tilegrad (best CPU row) | ms | rate | % ceiling | PyTorch CPU ms | vs peer | vs BLAS |"
    lines += [header, "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    cases = list(dict.fromkeys((r["op"], r["case"]) for r in data["results"] if r["case"] != "(all cases)"))
    for op, case in cases:
        rows = [r for r in data["results"] if r["op"] == op and r["case"] == case]
        peer = best(rows, peer_device)
        for impl in dict.fromkeys(r["impl"] for r in rows if r["device"] == device):
            ours = best(rows, device, impl)
            pct = "" if ours["pct_of_ceiling"] is None else f"{ours['pct_of_ceiling']:.0f}"
            label = impl if device == "cuda" else f"{impl} ({ours['threads']} thr)"
            last = ours["speedup_vs_cpu"] if device == "cuda" else ours.get("vs_blas")
            lines.append(f"| {op} | {case} | {label} | {ours['median_ms']:.3f} | {_rate(ours)} | {pct} | "
                         f"{'' if peer is None else format(peer['median_ms'], '.3f')} | {_ratio(ours['vs_peer'])} | "
                         f"{_ratio(last)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", help="a file written by python cli.py bench --json")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="whose rows (default: cpu)")
    args = parser.parse_args()
    with open(args.json) as f:
        print(markdown(json.load(f), args.device))


if __name__ == "__main__":
    main()
