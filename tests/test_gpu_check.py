"""The prepared GPU check stays runnable: its launcher covers every kernel (in the simulator here), and
the script parses. GPU minutes are scarce; they must not be spent finding a stale script."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_launch_every_kernel_covers_every_kernel_and_checks_each():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    result = subprocess.run([sys.executable, "scripts/launch_every_kernel.py"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 wrong" in result.stdout and "not launched" not in result.stdout


def test_gpu_check_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / "gpu_check.sh")]).returncode == 0


def test_gemm_ladder_script_compiles_and_covers_every_gemm_version():
    # scripts/gemm_ladder_gpu.py (gpu_check.sh's "ladder" step) times every version gemm_cuda accepts
    source = (ROOT / "scripts" / "gemm_ladder_gpu.py").read_text()
    compile(source, "gemm_ladder_gpu.py", "exec")
    assert "G.CUDA_VERSIONS, *G.CUDA_C_VERSIONS" in source
    assert "scripts/gemm_ladder_gpu.py" in (ROOT / "scripts" / "gpu_check.sh").read_text()
