"""``bench --busy N``: the bench on a machine that another program keeps busy, against the same bench quiet.

N spinning processes (each a Python loop that never sleeps, like a compile job or a browser tab on one core)
run for the busy pass and are always stopped, on Ctrl-C and on an error too. The bench runs every row twice:
a quiet pass, then a busy pass with the spinners; the result is the busy pass, each row with its quiet time
(``quiet_ms``) and ``slowdown`` = busy time / quiet time, the quiet rows kept under ``quiet_results``. PyTorch's
peers (``--peers``) run inside each pass, so they meet the same load.
"""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager

SPIN_CODE = "while True: pass"


@contextmanager
def spinning_processes(count: int):
    """Start ``count`` processes that spin on a core each; yield their Popen objects; always stop them."""
    if count < 0:
        raise ValueError(f"spinning processes: count must be >= 0, got {count}")
    spinners = []
    try:
        for _ in range(count):
            spinners.append(subprocess.Popen([sys.executable, "-c", SPIN_CODE], stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield spinners
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


def _key(row: dict) -> tuple:
    return row["op"], row["case"], row["device"], row["impl"], row["threads"]


def merge_quiet_and_busy(quiet: dict, busy: dict, count: int) -> dict:
    """The busy pass's result, each measured row with ``quiet_ms`` and ``slowdown`` (busy / quiet time) from the
    quiet pass's row of the same op, case, device, implementation and thread count."""
    quiet_ms = {_key(r): r["median_ms"] for r in quiet["results"] if r["median_ms"] is not None}
    for row in busy["results"]:
        before = quiet_ms.get(_key(row))
        row["quiet_ms"] = before
        row["slowdown"] = row["median_ms"] / before if before and row["median_ms"] is not None else None
    merged = dict(busy)
    merged["busy"] = count
    merged["quiet_results"] = quiet["results"]
    merged["quiet_ceilings"] = quiet["ceilings"]
    merged["seconds"] = quiet["seconds"] + busy["seconds"]
    merged["interrupted"] = busy.get("interrupted") or quiet.get("interrupted")
    return merged


def run_quiet_and_busy(config, count: int, progress=None, run_bench=None) -> dict:
    """Run the bench quiet, then with ``count`` spinning processes; merged as :func:`merge_quiet_and_busy` says.
    A quiet pass that was interrupted is returned as it is (no busy pass)."""
    if run_bench is None:
        from .runner import run_bench

    def labelled(prefix):
        return None if progress is None else (lambda done, total, what: progress(done, total, f"{prefix}: {what}"))

    quiet = run_bench(config, progress=labelled("quiet"))
    if quiet.get("interrupted"):
        return quiet
    with spinning_processes(count):
        busy = run_bench(config, progress=labelled(f"{count} busy"))
    return merge_quiet_and_busy(quiet, busy, count)
