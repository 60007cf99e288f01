"""``python cli.py info``: what tilegrad finds on this machine."""

from __future__ import annotations

import json

from .common import add_device_option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("info", help="devices, simulator state, versions, CPU threads and BLAS",
                                   description="Print what tilegrad finds on this machine.")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    add_device_option(parser, help="`sim` shows the simulator switched on")
    parser.set_defaults(run=run)


def run(args) -> int:
    from engine import Device
    from hardware.machine import architecture, machine_info

    if args.device not in (None, "auto"):
        Device(args.device)  # asking about a device that cannot be used is an error, said in one line
    info = machine_info()
    from cuda_kernels.threads import thread_settings

    info["cpu_threads"] = thread_settings()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    gpu = info["gpu"]
    if gpu.get("present"):
        gpu_line = (f"{gpu['name']} ({architecture(gpu['compute_capability'])}, {gpu['multiprocessors']} SMs, "
                    f"{gpu['memory_gib']} GiB, driver CUDA {gpu['driver_cuda_version']})")
        gpu_line += "; GEMM rungs: " + rungs_line(gpu["compute_capability"])
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
        ("CPU thread pool", _thread_line(info["cpu_threads"])),
        ("BLAS", blas),
        ("numba / numba-cuda", f"{info['numba']} / {info['numba_cuda']}"),
        ("CUDA toolchain (PTX with no GPU)", toolchain),
        ("Python / NumPy", f"{info['python']} / {info['numpy']}" + _numpy_compat_note()),
    ]:
        table.add_row(key, value)
    Console().print(table)
    return 0


def _thread_line(settings: dict) -> str:
    return (f"{settings['threads']} of {settings['max_threads']} threads, {settings['threading_layer']} layer; "
            f"workers wait {settings['wait_policy']}; loops under {settings['parallel_grain']:,} elements run on "
            f"the calling thread (--threads N, runtime.set_threads, TILEGRAD_PARALLEL_GRAIN)")


def _numpy_compat_note() -> str:
    from cuda_kernels.numpy_compat import RESTORED

    return f" (restored for numba-cuda: np.{', np.'.join(RESTORED)})" if RESTORED else ""


def rungs_line(capability) -> str:
    """Which rungs of the GEMM ladder run on a GPU of this compute capability, and why the others do not."""
    from cuda_kernels.gemm import CUDA_C_VERSIONS, CUDA_VERSIONS
    from hardware.machine import rung_unavailable

    versions = CUDA_VERSIONS + CUDA_C_VERSIONS
    missing = [why for why in (rung_unavailable(v, capability) for v in versions) if why]
    return (f"all {len(versions)} run here" if not missing
            else f"{len(versions) - len(missing)} of {len(versions)} run here; not {'; '.join(missing)}")
