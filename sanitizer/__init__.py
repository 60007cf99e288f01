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

``sanitizer.warp`` adds the warp primitives the plain simulator lacks (``syncwarp``, ``shfl_*_sync``,
``ballot_sync``, ``all_sync``, ``any_sync``, ``activemask``).
"""

from .report import Finding, Launch, MemoryRow, Report
from .session import SCHEDULES, TOOLS, active, parse_tools, sanitize

__all__ = ["sanitize", "active", "parse_tools", "Report", "Launch", "Finding", "MemoryRow", "TOOLS", "SCHEDULES"]
