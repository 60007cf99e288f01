"""Compile every GPU kernel to PTX for a given compute capability, with no GPU, and report resources.

Needs the ``cuda`` extra (``numba-cuda[cu13]``: NVVM turns the kernel into PTX, nvJitLink assembles
it for sm_90 and reports registers, shared, local memory and spills). Must run in a process without
the simulator (``compile_ptx`` does not work under ``NUMBA_ENABLE_CUDASIM=1``).

    python -m cuda_kernels.ptx                 # table of every kernel
    python -m cuda_kernels.ptx --json          # the same as JSON (the compile test tier reads it)
    python -m cuda_kernels.ptx gemm_naive --ptx
    python -m cuda_kernels.ptx gemm --list     # the kernels a name selects: exactly it, else all containing it
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from types import SimpleNamespace

from hardware import cuda_probe

DEFAULT_CC = (9, 0)


@dataclass
class KernelReport:
    name: str
    signature: str
    registers: int
    shared_bytes: int
    local_bytes: int  # stack frame (lmem): what spills and non-register local arrays cost
    spill_stores: int
    spill_loads: int
    f64_instructions: int
    local_instructions: int  # ld.local / st.local in the PTX itself
    tanh_approx_instructions: int  # tanh.approx.f32: relative error up to 2^-11, what fastmath makes of math.tanh
    ptx_lines: int
    # what the hot loop is made of, read from the PTX (issue #19): 128-bit (and 64-bit) vector loads from shared
    # and global memory, and 64-bit integer arithmetic (index math numba does in int64: add/sub/mul/mad/shl on
    # .s64/.u64/.b64, mul.wide). Counts over the whole kernel; ptxas may still narrow some shared addresses.
    shared_v4_loads: int = 0
    shared_v2_loads: int = 0
    global_v4_loads: int = 0
    int64_instructions: int = 0
    ptx: str = ""


class CompilerUnavailable(RuntimeError):
    pass


def _assemble_log(ptx: str, cc) -> str:
    try:
        from cuda.bindings import nvjitlink
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise CompilerUnavailable(f"nvJitLink is missing: {cuda_probe.install_hint()}") from exc
    handle = nvjitlink.create(3, [f"-arch=sm_{cc[0]}{cc[1]}", "-verbose", "-Xptxas=-v"])
    try:
        data = ptx.encode()
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "kernel")
        nvjitlink.complete(handle)
        size = nvjitlink.get_info_log_size(handle)
        log = bytearray(size)
        nvjitlink.get_info_log(handle, log)
        return log.decode(errors="replace")
    finally:
        nvjitlink.destroy(handle)


def _number(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    return int(found.group(1)) if found else 0


@contextmanager
def _device_functions_target(cc):
    """Let ``@cuda.jit(device=True)`` helpers compile with no GPU.

    ``compile_ptx`` takes the compute capability as an argument, but a device function called from
    the kernel is compiled by its own dispatcher, which asks the current device for it (numba-cuda
    0.30 ``CUDADispatcher.compile_device``) and fails with no driver. For the length of one PTX
    compile, that question is answered with the target we compile for.
    """
    from numba.cuda import dispatcher

    original = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: SimpleNamespace(compute_capability=tuple(cc))
    try:
        yield
    finally:
        dispatcher.get_current_device = original


_INT64_OP = re.compile(r"^\s*(add|sub|mul|mad|shl|shr)(\.lo|\.hi|\.wide)?\.[sub]64\b|^\s*mul\.wide\.")


def ptx_facts(body) -> dict:
    """Vector loads and 64-bit integer instructions in PTX ``body`` (lines, comments left out)."""
    return {
        "shared_v4_loads": sum(1 for line in body if re.search(r"\bld\.shared\.v4\.", line)),
        "shared_v2_loads": sum(1 for line in body if re.search(r"\bld\.shared\.v2\.", line)),
        "global_v4_loads": sum(1 for line in body if re.search(r"\bld\.global(\.nc)?(\.[a-z]+)*\.v4\.", line)),
        "int64_instructions": sum(1 for line in body if _INT64_OP.search(line)),
    }


def compile_kernel(kernel, cc=DEFAULT_CC, keep_ptx: bool = False) -> KernelReport:
    from numba import cuda

    try:
        with _device_functions_target(cc):
            ptx, _ = cuda.compile_ptx(kernel.py_func, kernel.signature, cc=cc, fastmath=kernel.fastmath)
    except Exception as exc:
        if "nvrtc" in str(exc).lower() or "nvvm" in str(exc).lower():
            raise CompilerUnavailable(f"CUDA compiler libraries missing ({exc}): {cuda_probe.install_hint()}") from exc
        raise
    log = _assemble_log(ptx, cc)
    body = [line for line in ptx.splitlines() if line.strip() and not line.strip().startswith("//")]
    return KernelReport(
        name=kernel.name,
        signature=kernel.signature,
        registers=_number(r"used (\d+) registers", log),
        shared_bytes=_number(r"(\d+) bytes smem", log),
        local_bytes=_number(r"(\d+) bytes lmem", log) or _number(r"(\d+) bytes stack frame", log),
        spill_stores=_number(r"(\d+) bytes spill stores", log),
        spill_loads=_number(r"(\d+) bytes spill loads", log),
        f64_instructions=sum(1 for line in body if re.search(r"\.f64\b", line)),
        local_instructions=sum(1 for line in body if re.search(r"\b(ld|st)\.local\b", line)),
        tanh_approx_instructions=sum(1 for line in body if "tanh.approx" in line),
        ptx_lines=len(body),
        **ptx_facts(body),
        ptx=ptx if keep_ptx else "",
    )


def match_kernels(names, known) -> list[str]:
    """The kernels ``names`` select, the way ``cli.py check --only`` selects checks: a name that is a kernel's
    exactly (case-insensitive) selects that kernel, any other selects every kernel whose name contains it;
    no names select all. A name that selects nothing is a ValueError naming the closest kernels."""
    known = sorted(known)
    if not names:
        return known
    chosen = []
    for name in names:
        key = name.strip().lower()
        hits = [k for k in known if k.lower() == key] or [k for k in known if key and key in k.lower()]
        if not hits:
            near = _close(key, known)
            raise ValueError(f"unknown kernel {name!r}: no kernel's name is or contains it; "
                             + (f"close names: {', '.join(near)}" if near else
                                f"`inspect --list` lists all {len(known)}"))
        chosen += [h for h in hits if h not in chosen]
    return sorted(chosen)


def _close(key: str, known, n: int = 5) -> list[str]:
    """The names most like ``key``, whole or their start (``maxpol`` is close to ``maxpool_forward_kernel``);
    the ``_kernel`` suffix every name shares left out."""
    from difflib import SequenceMatcher

    key = key.removesuffix("_kernel")
    scores = {}
    for name in known:
        stem = name.lower().removesuffix("_kernel")
        scores[name] = max(SequenceMatcher(None, key, whole).ratio() for whole in (stem, stem[:len(key)]))
    return sorted((k for k in scores if scores[k] >= 0.75), key=lambda k: (-scores[k], k))[:n]


def compile_all(cc=DEFAULT_CC, names=None, keep_ptx: bool = False) -> list[KernelReport]:
    """Compile the kernels ``names`` select (``match_kernels``; all without names)."""
    from . import KERNELS, SIMULATOR

    if SIMULATOR:
        raise CompilerUnavailable("PTX cannot be compiled under NUMBA_ENABLE_CUDASIM=1; run in a fresh process")
    return [compile_kernel(KERNELS[n], cc, keep_ptx) for n in match_kernels(names, KERNELS)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cuda_kernels.ptx", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="kernels to compile: a kernel's name selects it, a part of names "
                                                 "every kernel containing it (default: all)")
    parser.add_argument("--list", action="store_true", help="print the names selected, compile nothing")
    parser.add_argument("--cc", default="9.0", help="compute capability, e.g. 9.0 (default)")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    parser.add_argument("--ptx", action="store_true", help="print the PTX too")
    parser.add_argument("--wide", action="store_true", help="every column (default: a table within 100 columns)")
    args = parser.parse_args(argv)
    try:
        cc = tuple(int(x) for x in args.cc.split("."))
    except ValueError:
        print(f"error: --cc {args.cc!r} is not a compute capability like 9.0", file=sys.stderr)
        return 1
    try:
        if args.list:
            from . import KERNELS

            print("\n".join(match_kernels(args.names, KERNELS)))
            return 0
        reports = compile_all(cc, args.names, keep_ptx=args.ptx)
    except (CompilerUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([asdict(r) for r in reports], indent=1))
        return 0
    for line in format_table(reports, wide=args.wide, ptx=args.ptx):
        print(line)
    return 0


# (header, width, value of a report, in the default table): the default fits 100 columns with the longest name
TABLE_COLUMNS = [
    ("regs", 4, lambda r: r.registers, True),
    ("smem B", 6, lambda r: r.shared_bytes, True),
    ("lmem B", 6, lambda r: r.local_bytes, True),
    ("spills st/ld", 12, lambda r: f"{r.spill_stores}/{r.spill_loads}", True),
    ("f64", 4, lambda r: r.f64_instructions, True),
    ("int64", 5, lambda r: r.int64_instructions, True),
    ("v4 smem", 7, lambda r: r.shared_v4_loads, False),
    ("v4 gmem", 7, lambda r: r.global_v4_loads, False),
    ("local ld/st", 11, lambda r: r.local_instructions, False),
    ("tanh.approx", 11, lambda r: r.tanh_approx_instructions, False),
    ("PTX lines", 9, lambda r: r.ptx_lines, False),
]
LEGEND = ("regs: registers per thread; smem B: shared memory per block; lmem B: local memory (stack frame) per "
          "thread; spills st/ld: bytes spilled to local memory, stored/loaded (want 0/0); f64: double-precision PTX "
          "instructions (want 0); int64: 64-bit integer index arithmetic instructions.")
WIDE_LEGEND = ("v4 smem, v4 gmem: 128-bit vector loads (ld.shared.v4, ld.global.v4); local ld/st: ld.local and "
               "st.local in the PTX; tanh.approx: fast tanh instructions; PTX lines: the kernel's PTX, comments out.")


def format_table(reports, wide: bool = False, ptx: bool = False, width: int = 100) -> list[str]:
    """The kernels' resources as a table with a header and a legend, within ``width`` columns (``wide``: every
    column, whatever the width); ``ptx``: each kernel's PTX after its row."""
    import textwrap

    columns = [c for c in TABLE_COLUMNS if wide or c[3]]
    name_width = max([len("kernel")] + [len(r.name) for r in reports])
    lines = ["  ".join([f"{'kernel':<{name_width}}"] + [f"{h:>{w}}" for h, w, _, _ in columns])]
    for r in reports:
        lines.append("  ".join([f"{r.name:<{name_width}}"] + [f"{str(value(r)):>{w}}" for _, w, value, _ in columns]))
        if ptx:
            lines.append(r.ptx)
    legend = LEGEND + (" " + WIDE_LEGEND if wide else " --wide adds 128-bit vector loads, local memory "
                                                       "instructions, tanh.approx and PTX lines.")
    lines += [""] + textwrap.wrap(legend, width)
    return lines


if __name__ == "__main__":
    sys.exit(main())
