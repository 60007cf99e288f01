#!/usr/bin/env python
"""On a GPU: NVIDIA's own tools on the sanitizer corpus, beside what the simulator's sanitizer expects.

    python scripts/sanitizer_gpu_compare.py --out DIR [--cases race_on_shared,strided_loads] [--dry-run]

For every case of ``tests/sanitizer_corpus/`` (a seeded bug or its fixed twin, each a script that launches its
kernel), ``compute-sanitizer`` runs it under the tool that should see its bug (memcheck for bounds, racecheck
for shared-memory races, synccheck for barriers, initcheck for uninitialized reads) and every case with
hand-counted memory figures runs under ``ncu`` for Nsight Compute's l1tex sector, request and bank-conflict
counters. One JSON row per case and tool: what the corpus expects (its ``EXPECT``/``MEMORY``, the figures the
simulator's sanitizer is tested against) and what the GPU tool said (its error count, its counters). Where the
two differ is what to read: compute-sanitizer sees races in shared memory only, never between blocks or in
global memory, and a GPU's warps may hide an intra-warp race that the sanitizer reports.

``--dry-run`` (any machine): lists the cases and the commands, runs nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "sanitizer_corpus"
# the compute-sanitizer tool that sees each kind of seeded bug
TOOL_FOR_KIND = {"out_of_bounds": "memcheck", "race": "racecheck", "barrier_divergence": "synccheck",
                 "uninitialized_read": "initcheck"}
NCU_METRICS = ["l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum", "l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum",
               "l1tex__t_requests_pipe_lsu_mem_global_op_st.sum", "l1tex__t_sectors_pipe_lsu_mem_global_op_st.sum",
               "l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum",
               "l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum",
               "l1tex__data_pipe_lsu_wavefronts_mem_shared_op_ld.sum",
               "l1tex__data_pipe_lsu_wavefronts_mem_shared_op_st.sum"]
PER_RUN_TIMEOUT_S = 120


def cases(selected: list[str] | None) -> list[Path]:
    paths = sorted(p for p in CORPUS.glob("*.py") if not p.name.startswith("_"))
    if selected:
        known = {p.stem: p for p in paths}
        missing = [name for name in selected if name not in known]
        if missing:
            raise SystemExit(f"error: no corpus case named {', '.join(missing)} (see {CORPUS.relative_to(ROOT)})")
        paths = [known[name] for name in selected]
    return paths


def expectations(path: Path) -> tuple[list, list]:
    """The case's EXPECT and MEMORY, read by importing it (defining its kernels compiles nothing)."""
    sys.path.insert(0, str(CORPUS))
    try:
        spec = importlib.util.spec_from_file_location(f"corpus_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(CORPUS))
    return list(getattr(module, "EXPECT", [])), list(getattr(module, "MEMORY", []))


def tools_for(expect: list, memory: list) -> list[str]:
    """The tools to run: the one for each expected kind; a fixed twin (nothing expected) runs all four, a
    memory-traffic case (hand counts, no bug) none: ncu alone."""
    wanted = {TOOL_FOR_KIND[f["kind"]] for f in expect}
    return sorted(wanted) if wanted or memory else sorted(set(TOOL_FOR_KIND.values()))


def sanitizer_command(tool: str, path: Path) -> list[str]:
    extra = ["--racecheck-report", "all"] if tool == "racecheck" else []
    return ["compute-sanitizer", "--tool", tool, *extra, sys.executable, str(path)]


def ncu_command(path: Path, report: Path) -> list[str]:
    return ["ncu", "--metrics", ",".join(NCU_METRICS), "--csv", "--log-file", str(report), sys.executable, str(path)]


def run(command: list[str]) -> tuple[int, str, float]:
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PER_RUN_TIMEOUT_S,
                              env={**os.environ, "PYTHONPATH": f"{CORPUS}{os.pathsep}{ROOT}"})
        return done.returncode, done.stdout + done.stderr, time.perf_counter() - start
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {PER_RUN_TIMEOUT_S} s", time.perf_counter() - start


def error_count(output: str) -> int | None:
    """compute-sanitizer's closing line: '========= ERROR SUMMARY: 3 errors'."""
    found = re.findall(r"ERROR SUMMARY: (\d+) error", output)
    return int(found[-1]) if found else None


def ncu_counters(report: Path) -> dict:
    """{metric: sum over the case's kernel launches} from ncu's CSV log."""
    if not report.exists():
        return {}
    totals: dict[str, float] = {}
    for line in report.read_text().splitlines():
        fields = [f.strip('"') for f in line.split('","')]
        for metric in NCU_METRICS:
            if metric in fields and fields[-1].replace(",", "").replace(".", "", 1).isdigit():
                totals[metric] = totals.get(metric, 0.0) + float(fields[-1].replace(",", ""))
    return totals


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-check-out"), help="folder for the JSON (must exist)")
    parser.add_argument("--cases", help="comma-separated case names (default: every case)")
    parser.add_argument("--dry-run", action="store_true", help="list the cases and commands, run nothing")
    args = parser.parse_args(argv)
    selected = cases(args.cases.split(",") if args.cases else None)
    if not args.dry_run:
        missing = [tool for tool in ("compute-sanitizer", "ncu") if shutil.which(tool) is None]
        if "compute-sanitizer" in missing:
            print("skipped: no compute-sanitizer on PATH (it comes with the CUDA toolkit)")
            return 0
        if not args.out.is_dir():
            raise SystemExit(f"error: --out {args.out}: the folder does not exist")
    rows = []
    for path in selected:
        expect, memory = expectations(path)
        for tool in tools_for(expect, memory):
            command = sanitizer_command(tool, path)
            if args.dry_run:
                shown = {sys.executable: "python", str(path): path.relative_to(ROOT).as_posix()}
                print(" ".join(shown.get(word, word) for word in command))
                continue
            status, output, seconds = run(command)
            rows.append({"case": path.stem, "tool": tool, "expected": expect, "status": status,
                         "gpu_errors": error_count(output), "seconds": round(seconds, 2),
                         "output_tail": output[-1500:]})
            print(f"{path.stem:34s} {tool:10s} expected {len(expect)} finding(s), GPU errors {rows[-1]['gpu_errors']}")
        if memory and (args.dry_run or shutil.which("ncu")):
            report = args.out / f"ncu-{path.stem}.csv"
            command = ncu_command(path, report)
            if args.dry_run:
                print(" ".join(command[:2]) + " ... " + path.relative_to(ROOT).as_posix())
                continue
            status, output, seconds = run(command)
            rows.append({"case": path.stem, "tool": "ncu", "expected_memory": memory, "status": status,
                         "counters": ncu_counters(report), "seconds": round(seconds, 2),
                         "output_tail": output[-800:] if status else ""})
    if args.dry_run:
        print(f"dry run: {len(selected)} cases")
        return 0
    (args.out / "sanitizer-gpu-compare.json").write_text(json.dumps({"cases": rows}, indent=1))
    print(f"wrote {args.out / 'sanitizer-gpu-compare.json'} ({len(rows)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
