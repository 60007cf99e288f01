#!/usr/bin/env python
"""tilegrad's command line: learn and measure how deep learning runs on a GPU and on a multi-core CPU.

    python cli.py info                      what this machine has: devices, simulator, versions, BLAS
    python cli.py inspect [KERNEL] [--ptx]  registers, shared and local memory of each CUDA kernel (sm_90)

Every subcommand takes --device cpu|cuda|sim|auto where it computes; `sim` runs the CUDA kernels in
Numba's simulator (correct, very slow, never timed as if it were a GPU).
"""

from __future__ import annotations

import argparse
import json
import sys

DEVICE_CHOICES = ("auto", "cpu", "cuda", "sim")


class CliError(Exception):
    """A problem to report in one line, with a non-zero exit status."""


def _prepare(device: str | None) -> None:
    """Runs before numba is imported: the simulator can only be chosen now."""
    from engine import cuda_probe

    if device == "sim":
        cuda_probe.enable_simulator()
    cuda_probe.ensure_numba_cache_dir()


# ------------------------------------------------------------------------------------------------
# info
# ------------------------------------------------------------------------------------------------


def cmd_info(args) -> int:
    from engine import Device
    from engine.machine import machine_info

    if args.device not in (None, "auto"):
        Device(args.device)  # asking about a device that cannot be used is an error, said in one line
    info = machine_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    gpu = info["gpu"]
    if gpu.get("present"):
        gpu_line = (f"{gpu['name']} (sm_{gpu['compute_capability'].replace('.', '')}, {gpu['multiprocessors']} SMs, "
                    f"{gpu['memory_gib']} GiB, driver CUDA {gpu['driver_cuda_version']})")
    else:
        gpu_line = f"none ({gpu.get('reason')})"
    devices = ["cpu"] + (["cuda"] if gpu.get("present") else []) + (["cuda (simulator)"] if info["simulator"] else [])
    blas = ", ".join(f"{b['library']} {b['version']} ({b['threads']} threads, {b['architecture']})"
                     for b in info["blas"])
    tool = info["cuda_toolchain"]
    toolchain = (f"NVVM {tool['nvvm']}, CUDA runtime {tool['cuda_runtime']}, cuda-bindings {tool['cuda_bindings']}"
                 if tool.get("nvvm") else tool.get("note", "unavailable"))
    table = Table(title="tilegrad info", show_header=False)
    for key, value in [
        ("devices", ", ".join(devices)),
        ("GPU", gpu_line),
        ("simulator", "ON: Device('cuda') runs kernels in Numba's CUDA simulator" if info["simulator"]
         else "off (python cli.py --device sim, or NUMBA_ENABLE_CUDASIM=1)"),
        ("CPU", f"{info['cpu']} — {info['threads']} Numba threads ({info['numba_threading_layer']} layer), "
                f"{info['logical_cpus']} logical CPUs"),
        ("BLAS", blas),
        ("numba / numba-cuda", f"{info['numba']} / {info['numba_cuda']}"),
        ("CUDA toolchain (PTX with no GPU)", toolchain),
        ("Python / NumPy", f"{info['python']} / {info['numpy']}"),
    ]:
        table.add_row(key, value)
    Console().print(table)
    return 0


# ------------------------------------------------------------------------------------------------
# inspect
# ------------------------------------------------------------------------------------------------


def cmd_inspect(args) -> int:
    import subprocess

    from engine import cuda_probe

    if cuda_probe.simulator_requested():
        # compile_ptx does not work inside a simulator process: compile in a clean one
        env = {k: v for k, v in __import__("os").environ.items() if k != cuda_probe.SIMULATOR_VARIABLE}
        cmd = [sys.executable, "-m", "cuda_kernels.ptx", *args.kernels, "--cc", args.cc]
        return subprocess.call(cmd + (["--ptx"] if args.ptx else []) + (["--json"] if args.json else []), env=env)
    from cuda_kernels import ptx

    argv = [*args.kernels, "--cc", args.cc] + (["--ptx"] if args.ptx else []) + (["--json"] if args.json else [])
    return ptx.main(argv)


# ------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python cli.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=DEVICE_CHOICES, default=None,
                        help="where to compute (default: auto = cuda with a real GPU, else cpu); "
                             "sim = CUDA kernels in Numba's simulator")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    info = sub.add_parser("info", help="devices, simulator state, versions, CPU threads and BLAS",
                          description="Print what tilegrad finds on this machine.")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.add_argument("--device", choices=DEVICE_CHOICES, default=argparse.SUPPRESS,
                      help="`sim` shows the simulator switched on")
    info.set_defaults(run=cmd_info)

    inspect = sub.add_parser(
        "inspect", help="registers, shared/local memory and PTX of the CUDA kernels (no GPU needed)",
        description="Compile CUDA kernels to PTX for sm_90 (or --cc) and report the resources each uses. "
                    "Needs the cuda extra: pip install -e '.[cuda]'.")
    inspect.add_argument("kernels", nargs="*", metavar="KERNEL", help="kernel names (default: all)")
    inspect.add_argument("--ptx", action="store_true", help="print each kernel's PTX")
    inspect.add_argument("--cc", default="9.0", help="compute capability (default 9.0 = H100/H200)")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.set_defaults(run=cmd_inspect)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _prepare(getattr(args, "device", None))
        return args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CliError, ValueError, TypeError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
