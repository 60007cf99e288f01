"""The ceilings of the roofline, measured in the same run as the results they judge.

CPU: BLAS SGEMM at 1024^3 on all threads (GFLOP/s) and a large copy (GB/s, bytes read + written).
GPU: the FMA kernel of cuda_kernels/ceilings.py (GFLOP/s); the best of its copy kernel and the driver's
device-to-device copy (GB/s).
"""

from __future__ import annotations

import time

import numpy as np

from .timing import cpu_threads, time_calls


def cpu_ceilings(threads: int, quick: bool) -> dict:
    from cuda_kernels import get_backend

    n = 1024
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), np.float32), rng.random((n, n), np.float32)
    c = np.empty((n, n), np.float32)
    gemm_ms = float("inf")
    for count in sorted({1, threads}):  # the best of one thread and all: the ceiling is what BLAS can do
        with cpu_threads(count, blas_threads=count):  # one BLAS call on BLAS's own threads
            gemm_ms = min(gemm_ms, time_calls(lambda: get_backend("cpu").gemm(c, a, b, version="blas"), "cpu", 10,
                                              best=True)[1])
    time.sleep(0.3)  # BLAS's threads spin a while after their last call: let them go idle before anything else
    size = 128 * 2**20 // 4  # well beyond the last-level cache: a DRAM ceiling
    src, dst = np.ones(size, np.float32), np.ones(size, np.float32)
    kernels = get_backend("cpu")
    with cpu_threads(threads):
        _, copy_ms = time_calls(lambda: kernels.scale(dst, src, 1.0), "cpu", 10, best=True)  # 8 bytes/element
        _, triad_ms = time_calls(lambda: kernels.axpy(dst, src, 0.5), "cpu", 10, best=True)  # 12 bytes/element
    copy, triad = 8 * size / copy_ms / 1e6, 12 * size / triad_ms / 1e6
    return {"gflops": 2 * n**3 / gemm_ms / 1e6, "gbps": max(copy, triad),
            "gflops_how": f"BLAS SGEMM {n}^3, best of 1 and {threads} threads",
            "gbps_how": f"best of a copy ({copy:.0f}) and a triad-like axpy ({triad:.0f}), {4 * size >> 20} MiB"}


def gpu_ceilings(quick: bool) -> dict:
    """The FMA-chain kernel, and the best of our copy kernel and the driver's device-to-device copy.

    Each probe is timed as BACK_TO_BACK launches between two events, divided by their number: timed one
    at a time, the GPU would sit idle through each launch's host-side work, and the ceiling would come
    out low by that fraction of a short copy.
    """
    from numba import cuda

    from cuda_kernels.ceilings import copy_ceiling_kernel, fma_ceiling_kernel, fma_flops

    size = (64 if quick else 256) * 2**20 // 4
    src, dst = cuda.to_device(np.ones(size, np.float32)), cuda.device_array(size, np.float32)
    sms = cuda.get_current_device().MULTIPROCESSOR_COUNT
    blocks = sms * 32
    copy_ms = _per_launch_ms(lambda: copy_ceiling_kernel[blocks, 256](dst, src))
    memcpy_ms = _per_launch_ms(lambda: dst.copy_to_device(src))  # cuMemcpyDtoD: the driver's own copy
    threads = sms * 2048
    out = cuda.device_array(threads, np.float32)
    fma_ms = _per_launch_ms(lambda: fma_ceiling_kernel[threads // 256, 256](out, np.float32(0.999),
                                                                           np.float32(1e-3)))
    copy, memcpy = 8 * size / copy_ms / 1e6, 8 * size / memcpy_ms / 1e6
    return {"gflops": fma_flops(threads) / fma_ms / 1e6, "gbps": max(copy, memcpy),
            "gflops_how": "FMA-chain kernel",
            "gbps_how": f"best of copy kernel ({copy:.0f}) and device-to-device memcpy ({memcpy:.0f}), "
                        f"{4 * size >> 20} MiB"}


BACK_TO_BACK = 10


def _per_launch_ms(launch) -> float:
    """Fastest of 10 timings of BACK_TO_BACK launches, per launch: the queue stays full, so launch latency
    is hidden except for the first launch of each timing."""
    def launches():
        for _ in range(BACK_TO_BACK):
            launch()
    return time_calls(launches, "cuda", 10, best=True)[1] / BACK_TO_BACK
