"""``python cli.py inspect``: registers, shared and local memory and PTX of the CUDA kernels, with no GPU.

Named ``inspect_kernels`` so that it is never mistaken for the standard library's ``inspect``."""

from __future__ import annotations

import os
import sys


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect", help="registers, shared/local memory and PTX of the CUDA kernels (no GPU needed)",
        description="Compile CUDA kernels to PTX for sm_90 (or --cc) and report the resources each uses. "
                    "Needs the cuda extra: pip install -e '.[cuda]'.")
    parser.add_argument("kernels", nargs="*", metavar="KERNEL", help="kernel names (default: all)")
    parser.add_argument("--ptx", action="store_true", help="print each kernel's PTX")
    parser.add_argument("--cc", default="9.0", help="compute capability (default 9.0 = H100/H200)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


def run(args) -> int:
    from hardware import cuda_probe

    argv = [*args.kernels, "--cc", args.cc] + (["--ptx"] if args.ptx else []) + (["--json"] if args.json else [])
    if cuda_probe.simulator_requested():
        import subprocess

        # compile_ptx does not work inside a simulator process: compile in a clean one
        env = {k: v for k, v in os.environ.items() if k != cuda_probe.SIMULATOR_VARIABLE}
        return subprocess.call([sys.executable, "-m", "cuda_kernels.ptx", *argv], env=env)
    from cuda_kernels import ptx

    return ptx.main(argv)
