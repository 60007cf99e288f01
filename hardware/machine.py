"""Facts about this machine: devices, simulator, package versions, CPU threads, BLAS.

Printed by ``python cli.py info`` and recorded in every benchmark JSON, so a number is never
separated from the machine that produced it.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import platform

from . import cuda_probe


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> list[dict]:
    import numpy  # noqa: F401  (loads the BLAS threadpoolctl reports)
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_info

    return [
        {"library": i.get("internal_api"), "version": i.get("version"), "threads": i.get("num_threads"),
         "architecture": i.get("architecture"), "user_api": i.get("user_api")}
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]


def gpu_info() -> dict:
    """The GPU (name, compute capability, driver) or why there is none; never raises."""
    import numba

    info = {"present": False, "simulator": bool(numba.config.ENABLE_CUDASIM)}
    if cuda_probe.real_gpu_count() == 0:
        info["reason"] = "no CUDA driver or device found"
        return info
    if info["simulator"]:
        info["reason"] = "a GPU is present but NUMBA_ENABLE_CUDASIM=1 runs the simulator instead"
        return info
    try:
        from numba import cuda

        device = cuda.get_current_device()
        name = device.name.decode() if isinstance(device.name, bytes) else device.name
        free, total = cuda.current_context().get_memory_info()
        from numba.cuda.cudadrv.driver import driver

        info.update(present=True, name=name, compute_capability=".".join(map(str, device.compute_capability)),
                    multiprocessors=device.MULTIPROCESSOR_COUNT, memory_gib=round(total / 2**30, 1),
                    driver_cuda_version=".".join(map(str, driver.get_version())))
    except Exception as exc:  # a broken driver should be reported, not crash `info`
        info["reason"] = f"CUDA initialisation failed: {exc}".splitlines()[0]
    return info


def cuda_toolchain() -> dict:
    """NVVM / runtime versions from the cuda extra: what PTX compilation with no GPU relies on."""
    out = {"cuda_bindings": _version("cuda-bindings"), "nvvm": None, "cuda_runtime": None}
    try:
        import numba

        if numba.config.ENABLE_CUDASIM:
            out["note"] = "toolchain versions are not visible inside a simulator process"
            return out
        from numba.cuda.cudadrv import nvvm, runtime

        out["nvvm"] = ".".join(map(str, nvvm.NVVM().get_version()))
        out["cuda_runtime"] = ".".join(map(str, runtime.runtime.get_version()))
    except Exception as exc:
        out["note"] = f"CUDA toolchain unavailable ({str(exc).splitlines()[0]}): {cuda_probe.install_hint()}"
    return out


def machine_info() -> dict:
    import numba

    return {
        "cpu": cpu_name(),
        "threads": numba.get_num_threads(),
        "logical_cpus": os.cpu_count(),
        "numba_threading_layer": numba.config.THREADING_LAYER,
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "numba": _version("numba"),
        "numba_cuda": _version("numba-cuda"),
        "blas": blas_info(),
        "gpu": gpu_info(),
        "cuda_toolchain": cuda_toolchain(),
        "simulator": bool(numba.config.ENABLE_CUDASIM),
    }
