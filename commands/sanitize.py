"""``python cli.py sanitize SCRIPT``: run a script's CUDA kernels in the simulator, strictly, and say what is wrong."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import CliError, check_output_file

TOOLS_HELP = "race,sync,bounds,init,memory"
DESCRIPTION = """\
Run `python SCRIPT ARGS` with every CUDA kernel in Numba's simulator, watched the way compute-sanitizer
watches a GPU (but with no GPU):

  race    data races in shared and global memory: RAW, WAR, WAW between threads of a block with no
          barrier between them (intra-warp and inter-warp: warps are not in lockstep) and between blocks
          (never ordered); atomics with atomics are no race; a write-write of one value is only `info`
  sync    barrier divergence: threads that return before a barrier others wait at, or wait at different
          syncthreads() lines (a hang on a GPU); a watchdog ends a launch that can never finish
  bounds  any index outside an array's shape, negative ones too (the plain simulator wraps them)
  init    reads of shared memory nothing wrote (fresh and NaN-poisoned for every block) and of
          cuda.device_array elements neither the host nor a kernel wrote
  memory  per source line, what Nsight Compute would count: requests, 32-byte sectors per request
          (4 = coalesced float32), shared-memory bank-conflict ways and conflicts

CUDA's semantics, never the simulator's order: the verdicts are the same under every --schedule, while
the answer a racy kernel computes may change (run it under reverse or random to see the race bite).
Exit status 1 when an error or warning is found, else the script's own."""

EPILOG = """\
examples:
  python cli.py sanitize my_kernel.py                     every check, findings at warning and above
  python cli.py sanitize --tool race,sync --schedule random --seed 3 my_kernel.py --size 64
  python cli.py sanitize --tool memory --print-level info --json report.json tiled_matmul.py

a finding reads like compute-sanitizer's:
  ========= Error: Race reported between Write access at my_kernel.py:11 and Read access at
            my_kernel.py:14 [RAW, shared, inter-warp]
  =========     63 thread pairs; e.g. thread (1, 0, 0) block (0, 0, 0) wrote tile[1] = 1 at line 11; ...
(the fix: a cuda.syncthreads() between line 11 and line 14)."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "sanitize", help="run a script's CUDA kernels in the simulator under a race/barrier/bounds/init checker "
                         "and a memory-traffic profiler",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tool", default="all", metavar="TOOLS",
                        help=f"comma-separated checks among {TOOLS_HELP}, or all (default all)")
    parser.add_argument("--json", metavar="F", help="also write the findings and memory profile as JSON to F")
    parser.add_argument("--schedule", choices=("in-order", "reverse", "random"), default="in-order",
                        help="the order blocks run and threads start (default in-order)")
    parser.add_argument("--seed", type=int, default=0, help="the seed of --schedule random (default 0)")
    parser.add_argument("--print-level", choices=("info", "warning", "error"), default="warning",
                        help="the least severe finding printed (default warning: same-value writes hidden)")
    parser.add_argument("--watchdog", type=float, default=30.0, metavar="SECONDS",
                        help="end a block where no thread reaches a barrier or exits for this long (default 30)")
    parser.add_argument("script", metavar="SCRIPT", help="the Python script to run (as `python SCRIPT ARGS`)")
    parser.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="the script's own arguments")
    parser.set_defaults(run=run)


def run(args) -> int:
    from sanitizer import parse_tools
    from sanitizer.report import Report

    tools = ",".join(parse_tools(args.tool))  # a bad name: one ValueError line
    script = Path(args.script)
    if not script.is_file():
        what = "is a folder, not a script" if script.is_dir() else "does not exist"
        raise CliError(f"sanitize: {args.script} {what}")
    if args.json:
        check_output_file("--json", args.json, suffixes=("json",))
    if args.watchdog <= 0:
        raise CliError(f"--watchdog: expected a positive number of seconds, got {args.watchdog}")
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with tempfile.TemporaryDirectory(prefix="tilegrad-sanitize-") as folder:
        result_path = os.path.join(folder, "result.json")
        command = [sys.executable, "-m", "sanitizer.runner", "--result", result_path, "--tools", tools,
                   "--schedule", args.schedule, "--seed", str(args.seed), "--watchdog", str(args.watchdog),
                   str(script), *args.args]
        child = subprocess.run(command, env=env)
        try:
            with open(result_path) as handle:
                result = json.load(handle)
        except (OSError, ValueError):
            raise CliError(f"sanitize: {args.script} ended the process (exit status {child.returncode}) before "
                           "the sanitizer could report") from None
    report = Report.from_json(result["report"], tools=tools.split(","), schedule=args.schedule, seed=args.seed,
                              print_level=args.print_level)
    for launch, dropped, ended in zip(report.launches, result["dropped"], result["ended_early"]):
        launch.dropped, launch.ended_early = dropped, ended
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=1))
    raised, status = result["raised"], result["status"]
    if not report.launches:
        if raised:
            print(f"sanitize: {args.script} raised {raised} before launching any CUDA kernel: nothing was checked",
                  file=sys.stderr)
        else:
            print(f"sanitize: {args.script} launched no CUDA kernel: nothing was checked", file=sys.stderr)
        return status
    print(report.text(args.print_level, memory="memory" in tools.split(",")))
    if raised:
        print(f"sanitize: {args.script} raised {raised} after {len(report.launches)} kernel launch"
              f"{'es' * (len(report.launches) != 1)}; the findings above are from before it", file=sys.stderr)
    return 1 if report.errors() else status
