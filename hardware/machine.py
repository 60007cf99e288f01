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


# compute capability -> NVIDIA's architecture name (the newest first: a capability takes the first at or below it)
ARCHITECTURES = (((10, 0), "Blackwell"), ((9, 0), "Hopper"), ((8, 9), "Ada Lovelace"), ((8, 6), "Ampere (GA10x)"),
                 ((8, 0), "Ampere"), ((7, 5), "Turing"), ((7, 0), "Volta"), ((6, 0), "Pascal"))
# what a rung of the GEMM ladder needs beyond a GPU that CUDA 13 supports (sm_75 and up)
RUNG_NEEDS = {"wmma_tf32": ((8, 0), "TF32 tensor cores (wmma m16n16k8) need sm_80+ (Ampere or newer)")}


def architecture(capability) -> str:
    """``(7, 5)`` or ``"7.5"`` -> ``"sm_75 Turing"``: what a compute capability is called."""
    major, minor = (int(v) for v in str(capability).split(".")) if isinstance(capability, str) else capability
    name = next((arch for (cc, arch) in ARCHITECTURES if (major, minor) >= cc), "older than Pascal")
    if major >= 12:
        name = "Blackwell (consumer)"
    return f"sm_{major}{minor} {name}"


def rung_unavailable(version: str, capability) -> str | None:
    """Why GEMM ``version`` cannot run on a GPU of this compute capability, or None when it can."""
    major, minor = (int(v) for v in str(capability).split(".")) if isinstance(capability, str) else capability
    need = RUNG_NEEDS.get(version)
    if need and (major, minor) < need[0]:
        return f"{version}: {need[1]}; this GPU is {architecture((major, minor))}"
    return None


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
                    architecture=architecture(device.compute_capability),
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
