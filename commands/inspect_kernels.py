"""``python cli.py inspect``: registers, shared and local memory and PTX of the CUDA kernels, with no GPU.

Named ``inspect_kernels`` so that it is never mistaken for the standard library's ``inspect``."""

from __future__ import annotations

import os
import sys


def add_parser(subparsers) -> None:
    from hardware.cuda_probe import install_hint

    parser = subparsers.add_parser(
        "inspect", help="registers, shared/local memory and PTX of the CUDA kernels (no GPU needed)",
        description="Compile CUDA kernels to PTX for sm_90 (or --cc) and report the resources each uses. "
                    f"Needs the cuda extra: {install_hint()}. KERNEL matches as `check --only` does: "
                    "a kernel's exact name selects that kernel, a part of a name every kernel containing it "
                    "(gemm: every GEMM kernel); a name matching none is an error naming the closest.")
    parser.add_argument("kernels", nargs="*", metavar="KERNEL",
                        help="a kernel's name, or part of names (default: all); --list shows them")
    parser.add_argument("--list", action="store_true", help="list the kernels selected (all without KERNEL), "
                                                            "compile nothing")
    parser.add_argument("--ptx", action="store_true", help="print each kernel's PTX")
    parser.add_argument("--cc", default="9.0", help="compute capability (default 9.0 = H100/H200)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--wide", action="store_true", help="every column: vector loads, local memory "
                                                             "instructions, tanh.approx, PTX lines (default: the "
                                                             "table fits 100 columns)")
    parser.add_argument("--memory", action="store_true",
                        help="instead: the memory traffic per source line (sectors per request, bank conflicts) "
                             "of a small sanitized launch of each KERNEL in the simulator (exact names)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from hardware import cuda_probe

    if getattr(args, "memory", False):
        from .inspect_memory import run as memory_profile

        return memory_profile(args.kernels)

    flags = ("ptx", "json", "list", "wide")
    argv = [*args.kernels, "--cc", args.cc] + [f"--{flag}" for flag in flags if getattr(args, flag)]
    if cuda_probe.simulator_requested():
        import subprocess

        # compile_ptx does not work inside a simulator process: compile in a clean one
        env = {k: v for k, v in os.environ.items() if k != cuda_probe.SIMULATOR_VARIABLE}
        return subprocess.call([sys.executable, "-m", "cuda_kernels.ptx", *argv], env=env)
    from cuda_kernels import ptx

    return ptx.main(argv)
