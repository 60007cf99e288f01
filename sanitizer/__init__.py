"""The simulator's sanitizer: Numba's CUDA simulator made strict and telling, with no GPU.

Floor 0b, just above ``hardware/``: it imports the standard library, NumPy, Numba's CUDA simulator and
``hardware`` only, so the kernel layer, tests, graders and commands can all use it.

What it finds in a kernel launched in the simulator, with CUDA's semantics rather than the simulator's
order (see docs/tutorials and ``python cli.py sanitize --help``): data races in shared and global memory
(RAW, WAR, WAW; intra-warp, inter-warp, inter-block), barrier divergence, out-of-bounds indices (negative
ones included), reads of uninitialized shared or device memory; and, per source line, the memory
traffic Nsight Compute would count (sectors per request, shared-memory bank conflicts).

The API (the contract the rest of the project codes against)::

    from sanitizer import sanitize
    with sanitize(tools="all", schedule="in-order", seed=0) as report:
        kernel[grid, block](...)            # every launch inside is watched
    report.launches                         # one Launch(kernel, grid, block, findings, memory) each
    report.errors()                         # findings of severity error or warning
    report.to_json()                        # the dict of `cli.py sanitize --json`
    report.text(print_level="warning")      # compute-sanitizer-style text
    report.first_finding_line()             # the first error or warning in one line (None when clean)
    report.summary(), report.clean          # "1 error, 0 warnings in 1 of 3 launches (0 info)", a bool
    sanitizer.available()                   # False on a real GPU (sanitize() then raises, in one line)

``sanitize`` also takes ``watchdog_s`` (a block where no thread reaches a barrier or exits for that long is
ended and reported; default 30) and ``max_findings`` (distinct findings kept per launch; the rest are
counted). A ``Finding`` has kind, severity, space, hazard, scope, file, lines, count, example (the JSON's
fields) and ``one_line()``; a ``MemoryRow`` has file, line, space, op, requests, sectors,
sectors_per_request, wavefronts, bank_conflicts, ways. The modules: ``session`` (patching the simulator,
running blocks and barriers), ``shadow`` (watched arrays, addresses, initialization), ``analysis`` (the
checks at each barrier and block end, the memory profile), ``report``, ``runner`` (the process behind
``cli.py sanitize``).

What it does not see: device arrays made before the ``sanitize`` block count as initialized; two lanes of
one warp count as ordered when their numbers of completed warp rendezvous (``sanitizer.warp``: syncwarp,
shuffles, votes) differ since the last barrier, exact for full-mask calls, an approximation for partial
masks; a spin loop that never touches an array cannot be stopped, only left behind by the watchdog.

``sanitizer.warp`` adds the warp primitives the plain simulator lacks (``syncwarp``, ``shfl_*_sync``,
``ballot_sync``, ``all_sync``, ``any_sync``, ``activemask``).
"""

from .report import Finding, Launch, MemoryRow, Report
from .session import SCHEDULES, TOOLS, active, available, parse_tools, sanitize

__all__ = ["sanitize", "active", "available", "parse_tools", "Report", "Launch", "Finding", "MemoryRow", "TOOLS",
           "SCHEDULES"]
