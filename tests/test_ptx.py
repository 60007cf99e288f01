"""Compile tier: every CUDA kernel compiles to PTX for sm_90 with its eager signature, with no GPU.

``compile_ptx`` cannot run inside a simulator process, and this test process usually is one, so the
kernels are compiled by ``python -m cuda_kernels.ptx --json`` in a fresh process.
"""

import importlib.util
import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from cuda_kernels import KERNELS

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.compile


def _toolchain_missing() -> str | None:
    for module in ("cuda.bindings.nvjitlink", "cuda.bindings.nvrtc"):
        try:
            if importlib.util.find_spec(module) is None:
                return module
        except ModuleNotFoundError:
            return module
    return None


# The GPUs of a course: T4 (sm_75, the free notebook GPUs), A100 (sm_80), L4 (sm_89), H100 (sm_90). Every kernel is
# checked in depth for sm_90; on the others, the kernels that stress what differs between generations (vector
# loads, shared-memory tiles, atomics, fastmath bodies, the recurrent cells), to keep the tier's time small.
TARGETS = ["7.5", "8.0", "8.9", "9.0"]
TARGET_KERNELS = ["gemm_warp_tiled", "gemm_double_buffered", "gemm_split_k_partials",
                  "conv_implicit_gemm_forward_kernel", "conv_implicit_gemm_dweight_kernel",
                  "embedding_backward_atomic_kernel", "maxpool_backward_kernel",
                  "column_chunk_sums_kernel", "softmax_cross_entropy_kernel", "batchnorm_backward_kernel",
                  "adam_kernel", "lstm_cell_backward_kernel", "gru_cell_forward_kernel", "dropout_forward_kernel"]


@lru_cache(maxsize=len(TARGETS))
def reports(cc: str = "9.0") -> dict:
    missing = _toolchain_missing()
    if missing:
        pytest.skip(f"the compile tier needs the cuda extra ({missing} missing): pip install -e '.[cuda]'")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    names = [] if cc == "9.0" else TARGET_KERNELS
    result = subprocess.run([sys.executable, "-m", "cuda_kernels.ptx", *names, "--json", "--cc", cc], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return {r["name"]: r for r in json.loads(result.stdout)}


def test_every_kernel_compiles_for_sm90():
    assert set(reports()) == set(KERNELS), "every registered kernel must be compiled"
    for name, r in reports().items():
        assert r["ptx_lines"] > 0 and r["registers"] > 0, name


def test_the_target_kernels_exist():
    assert set(TARGET_KERNELS) <= set(KERNELS), sorted(set(TARGET_KERNELS) - set(KERNELS))


@pytest.mark.parametrize("cc", [t for t in TARGETS if t != "9.0"])
def test_kernels_compile_for_every_gpu_of_a_course(cc):
    found = reports(cc)
    assert set(found) == set(TARGET_KERNELS), cc
    for name, r in found.items():
        assert r["ptx_lines"] > 0 and r["registers"] > 0 and r["f64_instructions"] == 0, (cc, name)
        assert (r["spill_stores"], r["spill_loads"]) == (0, 0), (cc, name, r)


@pytest.mark.parametrize("arch", [f"sm_{t.replace('.', '')}" for t in TARGETS])
@pytest.mark.parametrize("version", ["cuda_c_double_buffered", "wmma_tf32"])
def test_cuda_c_versions_compile_for_every_gpu_of_a_course_or_say_why_not(version, arch):
    # NVRTC, no GPU: a version that needs a newer GPU (wmma TF32: sm_80) is left out of that target's PTX, and
    # gemm_cuda_c.unsupported gives the reason the launcher raises on such a GPU
    if _toolchain_missing():
        pytest.skip("needs the cuda extra")
    from cuda_kernels import gemm_cuda_c as CC

    kernel = CC.VERSIONS[version][0]
    ptx = CC.compile_source("ptx", arch).decode()
    why = CC.unsupported(version, (int(arch[3]), int(arch[4:])))
    if why:
        assert f".entry {kernel}(" not in ptx, arch
        pytest.skip(why)
    if version == "wmma_tf32" and CC.wmma_header_dir() is None:
        pytest.skip("wmma_tf32 not built: no crt/mma.h here (pip install -e '.[cuda]' brings nvidia-cuda-crt)")
    assert f".entry {kernel}(" in ptx, arch


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_no_float64_instruction(name):
    assert reports()[name]["f64_instructions"] == 0, f"{name}: float64 crept in (a Python float literal?)"


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_no_coarse_tanh_approximation(name):
    # found on an H100: fastmath turned math.tanh into tanh.approx.f32, 8e-6 off where the tests allow 2e-6
    assert reports()[name]["tanh_approx_instructions"] == 0, f"{name}: tanh.approx.f32 (compile it without fastmath)"


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_no_register_spills(name):
    r = reports()[name]
    assert (r["spill_stores"], r["spill_loads"]) == (0, 0), f"{name} spills registers: {r}"
    assert r["registers"] <= 255, name


LADDER = ["gemm_register_blocked_transposed_a", "gemm_double_buffered", "gemm_warp_tiled"]


@pytest.mark.parametrize("name", ["gemm_register_blocked", "gemm_register_blocked_8x8", "gemm_split_k_partials",
                                  *LADDER])
def test_register_blocked_gemm_keeps_its_accumulators_in_registers(name):
    r = reports()[name]  # split-K shares the tile loop through a device function: it must inline
    assert r["local_instructions"] == 0 and r["local_bytes"] == 0, r
    assert r["shared_bytes"] > 0, "the register-blocked GEMM stages tiles in shared memory"


@pytest.mark.parametrize("name", LADDER)
def test_gemm_ladder_reads_its_fragments_with_128_bit_shared_loads(name):
    # issue #19: 16-byte-aligned shared rows and contiguous fragments let NVVM emit ld.shared.v4 (LDS.128): one
    # per 4 floats of a fragment, 4 per k-step (8 where two buffers are unrolled); the 8x8 rung has none
    r, old = reports()[name], reports()["gemm_register_blocked_8x8"]
    assert r["shared_v4_loads"] >= 4 and old["shared_v4_loads"] == 0, (r, old)


# The kernels whose element body is shared with their CPU twin (launch.cpu_and_gpu): shared only while the
# body inlines into registers, as the kernel's own code did.
SHARED_BODY_KERNELS = ["sgd_kernel", "adagrad_kernel", "rmsprop_kernel", "adam_kernel", "activation_forward_kernel",
                       "activation_backward_kernel", "dropout_forward_kernel"]


@pytest.mark.parametrize("name", SHARED_BODY_KERNELS)
def test_shared_element_bodies_stay_in_registers(name):
    r = reports()[name]
    assert r["local_bytes"] == 0 and r["local_instructions"] == 0, r


def test_shared_element_bodies_compile_under_their_kernels_fastmath():
    # a device function keeps its own flags: compiled without fastmath, Adam's division inside a fastmath
    # kernel would stay div.full; and an inlined body leaves no call behind
    if _toolchain_missing():
        pytest.skip("needs the cuda extra")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    result = subprocess.run([sys.executable, "-m", "cuda_kernels.ptx", "adam_kernel", "adagrad_kernel", "--json",
                             "--ptx"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for r in json.loads(result.stdout):
        body = [line for line in r["ptx"].splitlines() if not line.strip().startswith("//")]
        assert any("div.approx" in line for line in body), r["name"]
        assert not any("div.full" in line or "div.rn" in line for line in body), r["name"]
        assert not any(line.strip().startswith("call") for line in body), r["name"]


def test_cli_inspect_reports_one_kernel_and_rejects_unknown_names():
    if _toolchain_missing():
        pytest.skip("needs the cuda extra")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    ok = subprocess.run([sys.executable, "cli.py", "inspect", "gemm_naive", "--json"], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    (report,) = json.loads(ok.stdout)
    assert report["name"] == "gemm_naive" and report["registers"] > 0
    bad = subprocess.run([sys.executable, "cli.py", "inspect", "no_such_kernel"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "unknown kernel" in bad.stderr and "Traceback" not in bad.stderr


def test_cuda_c_gemm_compiles_for_sm90_without_a_gpu():
    # gemm_cuda_c.py: NVRTC -> PTX -> nvJitLink, no driver needed. The twin keeps the numba rung's algorithm with
    # the loads numba cannot write (ld.shared.v4 every fragment, ld.global.v4 where rows are aligned); wmma_tf32
    # is built where a toolkit's crt/mma.h exists (the pip wheels lack it) and must then issue tensor-core mma
    if _toolchain_missing():
        pytest.skip("needs the cuda extra")
    from cuda_kernels import gemm_cuda_c

    found = gemm_cuda_c.compile_report()
    twin = found["gemm_cuda_c_double_buffered"]
    assert twin["registers"] > 0 and (twin["spill_stores"], twin["spill_loads"], twin["local_bytes"]) == (0, 0, 0)
    assert twin["f64_instructions"] == 0 and twin["shared_v4_loads"] >= 4 and twin["global_v4_loads"] >= 1, twin
    if "gemm_wmma_tf32" in found:
        tc = found["gemm_wmma_tf32"]
        assert tc["mma_instructions"] > 0 and tc["spill_stores"] == 0 and tc["f64_instructions"] == 0, tc
    elif gemm_cuda_c.wmma_header_dir() is None:
        pytest.skip("wmma_tf32 not built: no crt/mma.h here (pip install -e '.[cuda]' brings nvidia-cuda-crt)")
    else:
        raise AssertionError("crt/mma.h is here but wmma_tf32 was not built")


def test_wmma_kernel_builds_from_pips_headers_to_tensor_core_ptx():
    # the cuda extra's nvidia-cuda-crt wheel alone (no system toolkit: CUDA_HOME points nowhere) gives NVRTC
    # crt/mma.h; the TF32 kernel then compiles, in a process without the simulator, to PTX with wmma.mma
    if _toolchain_missing():
        pytest.skip("needs the cuda extra")
    import importlib.metadata

    try:
        importlib.metadata.distribution("nvidia-cuda-crt")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("nvidia-cuda-crt not installed: pip install -e '.[cuda]'")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env.update(CUDA_HOME="/nonexistent", CUDA_PATH="/nonexistent")
    code = ("import os, sys; from cuda_kernels import gemm_cuda_c as C; d = C.wmma_header_dir(); "
            "assert d and '/usr/local/cuda' not in d, d; "
            "ptx = {a: C.compile_source('ptx', a).decode() for a in ('sm_80', 'sm_90')}; "
            "print({a: ('.entry gemm_wmma_tf32(' in t, 'wmma.mma' in t or 'mma.sync' in t) for a, t in ptx.items()})")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "{'sm_80': (True, True), 'sm_90': (True, True)}"
