"""GEMM in CUDA C, compiled at run time by NVRTC: the bench's answer to "what does writing this kernel in
Python cost?", and the tensor-core GEMM numba cannot write (no wmma/mma in numba-cuda, numba #5899).

The op and its contract are gemm.py's (``C = act(alpha * op(A) @ op(B) + beta * C + bias)``); these are two more
CUDA versions of it, chosen with ``gemm(..., version=...)``:
- cuda_c_double_buffered: numba's ``double_buffered`` rung line for line in CUDA C (cuda_c/gemm.cu): same tiles,
                    threads, fragments and barriers; 32-bit index math, float4 shared loads written out, float4
                    global loads where rows are 16-byte aligned. Its distance to the numba rung is the cost of
                    the Python front end; its distance to cuBLAS is the algorithm's.
- wmma_tf32:        tensor cores, nvcuda::wmma m16n16k8 TF32 fragments (sm_80+), 64x64x8 tiles, 4 warps of
                    32x32. Napkin math: H200 dense TF32 ~ 495 TFLOP/s vs FP32 SIMT ~ 67: a ceiling 7x higher,
                    paid for in precision: TF32 keeps 10 mantissa bits, so each product is off by up to 2^-11
                    relative and a K-long sum of random-sign terms by ~ 2^-11 (relative to the output's scale);
                    the tests allow 2e-3 * ||ref|| (3e-4 with TF32 rounding emulated on the CPU, K = 9..1024, see
                    tests/test_gemm.py). A ``*_tf32`` row is compared with cuBLAS with TF32 *on*.
Compiled with no GPU (NVRTC to PTX for sm_90, nvJitLink for the resource report: ``compile_report``); run
only on a real GPU (cuda.core loads the cubin and launches it on the caller's numba stream). The simulator
cannot run C: there these versions raise ``RuntimeError``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from .launch import SIMULATOR, current_stream, note_launch, record_or_run, stream_handle

SOURCE = Path(__file__).resolve().parent / "cuda_c" / "gemm.cu"
# version name (gemm's ``version=``) -> (kernel name in gemm.cu, block tile (rows, cols), threads per block)
VERSIONS = {
    "cuda_c_double_buffered": ("gemm_cuda_c_double_buffered", (128, 128), (16, 16)),
    "wmma_tf32": ("gemm_wmma_tf32", (64, 64), (128, 1)),
}
DEFAULT_ARCH = "sm_90"
# the oldest GPU each version runs on, and why (a version not listed runs on every target of the course: sm_75+)
MIN_CC = {"wmma_tf32": ((8, 0), "TF32 tensor-core fragments (wmma m16n16k8 tf32) need sm_80 (A100) or newer")}


def unsupported(version: str, cc: tuple[int, int]) -> str | None:
    """Why ``version`` cannot run on a GPU of compute capability ``cc``, or None when it can."""
    if version in MIN_CC and tuple(cc) < MIN_CC[version][0]:
        return f"gemm version {version!r}: {MIN_CC[version][1]}; this GPU is sm_{cc[0]}{cc[1]}"
    return None

# ------------------------------------------------------------------------------------------------
# Reference: gemm.py's gemm_reference (the same op; these are versions of its CUDA backend)
# ------------------------------------------------------------------------------------------------
# (no code: the float64 NumPy reference of ``gemm`` checks these versions too)

# ------------------------------------------------------------------------------------------------
# CPU twin: none (CUDA C for the GPU; the CPU's GEMM is gemm.py's BLAS twin)
# ------------------------------------------------------------------------------------------------
# (no code: C for a CUDA device has no CPU twin here)

# ------------------------------------------------------------------------------------------------
# GPU kernels: CUDA C in cuda_c/gemm.cu, compiled by NVRTC
# ------------------------------------------------------------------------------------------------


def _include_dirs() -> list[str]:
    try:
        from cuda.pathfinder import find_nvidia_header_directory

        found = [find_nvidia_header_directory("cudart")]
    except Exception:  # noqa: BLE001 (a system toolkit's NVRTC finds its own headers)
        found = []
    mma = wmma_header_dir()
    if mma is not None and mma not in found:
        found.append(mma)
    return [d for d in found if d]


def wmma_header_dir() -> str | None:
    """The include folder holding wmma's ``crt/mma.h``: pip's nvidia-cuda-crt wheel (the cuda extra installs it
    through ``cuda-toolkit[crt]``), else a system CUDA toolkit's; None when neither is here (gemm.cu then builds
    its SIMT twin only, and the wmma_tf32 version is missing)."""
    import glob
    import os

    try:
        import nvidia  # the namespace package of NVIDIA's wheels: one path per site-packages holding any

        wheels = [d for p in nvidia.__path__ for d in sorted(glob.glob(f"{p}/cu*/include"), reverse=True)]
    except ImportError:
        wheels = []
    homes = [os.environ.get("CUDA_HOME", ""), os.environ.get("CUDA_PATH", ""), "/usr/local/cuda",
             *sorted(glob.glob("/usr/local/cuda-*"), reverse=True)]
    candidates = [*wheels, *(f"{h}/include" for h in homes if h)]
    return next((d for d in candidates if os.path.exists(f"{d}/crt/mma.h")), None)


@lru_cache(maxsize=8)
def compile_source(target: str = "ptx", arch: str = DEFAULT_ARCH) -> bytes:
    """gemm.cu compiled by NVRTC to ``target`` ("ptx" or "cubin") for ``arch``. Needs no GPU and no driver (NVRTC
    and the CUDA headers come with the ``cuda`` extra; cuda.core's Program asks the driver for its version, so
    NVRTC is called through cuda.bindings directly)."""
    from cuda.bindings import nvrtc

    def check(result):
        err, *rest = result if isinstance(result, tuple) else (result,)
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise RuntimeError(f"NVRTC: {nvrtc.nvrtcGetErrorString(err)[1].decode()}")
        return rest[0] if len(rest) == 1 else rest

    source = SOURCE.read_bytes()
    program = check(nvrtc.nvrtcCreateProgram(source, b"gemm.cu", 0, [], []))
    options = [f"--gpu-architecture={arch}".encode(), b"-std=c++17", b"-default-device"]
    options += [f"-I{d}".encode() for d in _include_dirs()]
    try:
        err, = nvrtc.nvrtcCompileProgram(program, len(options), options)
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            size = check(nvrtc.nvrtcGetProgramLogSize(program))
            log = b" " * size
            check(nvrtc.nvrtcGetProgramLog(program, log))
            raise RuntimeError(f"NVRTC could not compile {SOURCE.name}:\n{log.decode(errors='replace')}")
        if target == "ptx":
            size = check(nvrtc.nvrtcGetPTXSize(program))
            out = b" " * size
            check(nvrtc.nvrtcGetPTX(program, out))
        else:
            size = check(nvrtc.nvrtcGetCUBINSize(program))
            out = b" " * size
            check(nvrtc.nvrtcGetCUBIN(program, out))
        return out.rstrip(b"\0") if target == "ptx" else out
    finally:
        nvrtc.nvrtcDestroyProgram(program)


def compile_report(arch: str = DEFAULT_ARCH) -> dict:
    """{kernel name: registers, shared/local bytes, spills, PTX facts} for every kernel in gemm.cu, from
    nvJitLink's assembly of NVRTC's PTX (as ``cuda_kernels.ptx`` reports the numba kernels)."""
    import re

    from . import ptx as P

    text = compile_source("ptx", arch).decode()
    log = P._assemble_log(text, (int(arch[3]), int(arch[4:])))
    reports = {}
    for _, name, _, _ in VERSIONS_TABLE():
        if f".entry {name}(" not in text:  # wmma_tf32 without a toolkit's crt/mma.h
            continue
        lines = [line for line in _kernel_ptx(text, name).splitlines()
                 if line.strip() and not line.strip().startswith("//")]
        ptxas = log[log.index(f"Compiling entry function '{name}'"):]
        ptxas = ptxas[:ptxas.find("Compile time")]
        summary = log[log.index(f"Function properties for '{name}':"):].split("\n")[1]
        reports[name] = {
            "registers": P._number(r"used (\d+) registers", summary),
            "shared_bytes": P._number(r"(\d+) bytes smem", summary),
            "local_bytes": P._number(r"(\d+) bytes lmem", summary) or P._number(r"(\d+) bytes stack frame", ptxas),
            "spill_stores": P._number(r"(\d+) bytes spill stores", ptxas),
            "spill_loads": P._number(r"(\d+) bytes spill loads", ptxas),
            "f64_instructions": sum(1 for line in lines if re.search(r"\.f64\b", line)),
            "mma_instructions": sum(1 for line in lines if re.search(r"\b(w?mma)\.", line)),
            **P.ptx_facts(lines),
        }
    return reports


def VERSIONS_TABLE():  # noqa: N802 (a table, read like a constant)
    return [(version, *spec) for version, spec in VERSIONS.items()]


def _kernel_ptx(text: str, name: str) -> str:
    start = text.index(f".entry {name}(")
    end = text.find(".entry ", start + 1)
    return text[start:end if end > 0 else len(text)]


# ------------------------------------------------------------------------------------------------
# Launchers: gemm.py's gemm_cuda validates and calls launch() for these versions
# ------------------------------------------------------------------------------------------------

_LOADED = {}


def _kernel(name: str):
    if name not in _LOADED:
        from cuda.core import Device, ObjectCode

        device = Device()
        device.set_current()  # numba-cuda made the primary context current already: this joins it
        arch = f"sm_{device.compute_capability.major}{device.compute_capability.minor}"
        _LOADED[name] = ObjectCode.from_cubin(compile_source("cubin", arch)).get_kernel(name)
    return _LOADED[name]


def _pointer(array) -> int:
    return int(array.__cuda_array_interface__["data"][0])


def launch(version: str, out, a, b, m: int, n: int, k: int, alpha, beta, trans_a, trans_b, bias, has_bias, act,
           stream=0):
    """Launch ``version`` of gemm.cu on numba device arrays (already validated by gemm_cuda)."""
    if SIMULATOR:
        raise RuntimeError(f"gemm version {version!r} is CUDA C compiled by NVRTC: it needs a real GPU, the "
                           "simulator runs Python only")
    import ctypes

    from cuda.core import LaunchConfig, Stream
    from cuda.core import launch as core_launch
    from numba import cuda

    from hardware.machine import rung_unavailable

    why_not = rung_unavailable(version, cuda.get_current_device().compute_capability)
    if why_not:  # e.g. TF32 tensor cores on a T4: one line, not NVRTC's compile error
        raise RuntimeError(f"gemm version {why_not}")
    name, (tile_rows, tile_cols), block = VERSIONS[version]
    if version in MIN_CC:  # one clear error on an older GPU, not NVRTC's missing-kernel one
        why = unsupported(version, tuple(cuda.get_current_device().compute_capability))
        if why:
            raise RuntimeError(why)
    grid = (max(1, min(-(-n // tile_cols), 65535)), max(1, min(-(-m // tile_rows), 65535)))
    numba_stream = stream or current_stream() or cuda.default_stream()  # the device's stream, as every launch
    core_stream = Stream.from_handle(stream_handle(numba_stream))
    args = (ctypes.c_void_p(_pointer(out)), ctypes.c_void_p(_pointer(a)), ctypes.c_void_p(_pointer(b)),
            np.int32(m), np.int32(n), np.int32(k), np.float32(alpha), np.float32(beta), np.int32(trans_a),
            np.int32(trans_b), ctypes.c_void_p(_pointer(bias)), np.int32(has_bias), np.int32(act))
    config, kernel = LaunchConfig(grid=grid, block=block), _kernel(name)

    def issue(buffers=(out, a, b, bias)):  # the recording holds the buffers (by pointer in args) with the graph
        core_launch(core_stream, config, kernel, *args)

    record_or_run(f"cuda_c:{name}", issue, stream=numba_stream)  # captured on a GPU, like every launch
    note_launch(f"cuda_c:{name}")
