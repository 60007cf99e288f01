"""The prepared GPU checks stay runnable: their dry runs (DRY_RUN=1) run every step's commands in a cheap mode here,
with no GPU, and must pass, in order of value, with limits that fit one nine-minute GPU window. GPU minutes are
scarce; they must not be spent finding a stale script."""

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GPU_CHECK_STEPS = ["versions", "gpu test tier", "captured step vs PyTorch", "gemm ladder", "compute-sanitizer",
                   "compute-sanitizer", "compute-sanitizer", "train lenet on cuda", "train charlm on cuda"]


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_ENABLE_CUDASIM", "PYTHONPATH")}
    return dict(env, PYTHON=sys.executable, **extra)


@pytest.fixture(scope="module")
def gpu_check(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check")
    result = subprocess.run(["bash", "scripts/gpu_check.sh"], cwd=ROOT, env=_env(DRY_RUN="1", OUT=str(out)),
                            capture_output=True, text=True, timeout=900)
    return result, out


def _summary_rows(text):
    rows = []
    for line in text.splitlines():
        match = re.match(r"^(.+?)\s{2,}(pass|skipped|TIMEOUT|FAIL rc=\d+|SKIPPED \(time\))\s+(\d+)\s+(\d+)$", line)
        if match:
            rows.append((match[1].strip(), match[2], int(match[3]), int(match[4])))
    return rows


@pytest.mark.slow
def test_gpu_check_dry_run_passes_every_step_in_order_of_value(gpu_check):
    result, out = gpu_check
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    summary = (out / "summary.txt").read_text()
    rows = _summary_rows(summary)
    names = [name for name, *_ in rows]
    expected = [s for s in GPU_CHECK_STEPS if s != "compute-sanitizer"]
    assert [n for n in names if not n.startswith("compute-sanitizer")] == [
        next(n for n in names if n.startswith(s)) for s in expected]
    sanitizer = [row for row in rows if row[0].startswith("compute-sanitizer")]
    assert len(sanitizer) == 1 and sanitizer[0][1] == "skipped" or len(sanitizer) == 3, sanitizer
    assert all(status in ("pass", "skipped") for _, status, _, _ in rows), summary
    assert all(seconds <= limit for _, status, seconds, limit in rows if status == "pass"), summary


@pytest.mark.slow
def test_gpu_check_limits_fit_nine_minutes_and_results_land_in_one_folder(gpu_check):
    result, out = gpu_check
    summary = (out / "summary.txt").read_text()
    planned = int(re.search(r"step limits add up to (\d+) s \(TOTAL_LIMIT (\d+) s, window (\d+) s\)", summary)[1])
    total_limit, window = map(int, re.search(r"TOTAL_LIMIT (\d+) s, window (\d+) s", summary).groups())
    assert planned <= total_limit < window == 540 and f"fits: {planned} s of limits" in summary
    with tarfile.open(out / "gpu-check-logs.tar.gz") as logs:
        members = {Path(m).name for m in logs.getnames()}
        graph_log = logs.extractfile("./graph-step.log").read().decode()
    assert {"versions.txt", "pytest-gpu.log", "graph-step.log", "gemm-ladder.log", "summary.txt"} <= members
    for model in ("lenet b256", "mlp b1024", "lstm b256"):
        assert f"would time {model}" in graph_log
    assert "skipped: no compute-sanitizer" in result.stdout or "compute-sanitizer" in summary


def test_graph_step_dry_run_needs_no_pythonpath(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "graph_step_gpu.py"), "--dry-run"], cwd=tmp_path,
                            env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [line.split(" input")[0] for line in result.stdout.splitlines() if line.startswith("would time")] == [
        "would time lenet b256", "would time mlp b1024", "would time lstm b256"]


@pytest.mark.slow
def test_ranks_check_dry_run_finds_pips_mpiexec_without_path(tmp_path):
    # no mpiexec on PATH (as on the GPU machine): the mpich wheel's own is found through its file list
    env = _env(DRY_RUN="1", OUT=str(tmp_path), PATH="/usr/bin:/bin")
    result = subprocess.run(["bash", "scripts/gpu_ranks_check.sh"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"^mpiexec: /\S+/mpiexec; mpi4py [\d.]+ on python 3\.\d+$", result.stdout, re.M), result.stdout
    import json

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["dry_run"] == 1 and len(summary["steps"]) == 6
    assert all(step["status"] == "pass" for step in summary["steps"]), summary
    probe = json.loads((tmp_path / "mpi.json").read_text())
    assert len(probe["ranks"]) == 2


@pytest.mark.slow
def test_launch_every_kernel_covers_every_kernel_and_checks_each():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    result = subprocess.run([sys.executable, "scripts/launch_every_kernel.py"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " 0 wrong" in result.stdout and "not launched" not in result.stdout
    assert "batchnorm_backward dx" in result.stdout and "batchnorm_forward_eval" in result.stdout
    assert "skipped: CUDA C needs a real GPU" in result.stdout  # the simulator cannot run the NVRTC kernels


def test_launch_coverage_comes_from_the_launches_themselves():
    from cuda_kernels import launch

    launched = launch.track_launches()
    try:
        from engine import Device

        Device("cuda").kernels.fill(Device("cuda").zeros((3,)), 1.0)
    finally:
        launch._LAUNCHED[0] = None
    assert launched == {"fill_kernel"}


def test_corpus_comparison_is_opt_in_and_its_dry_run_names_each_tool(tmp_path):
    """ONLY=corpus: NVIDIA's tools on the sanitizer corpus, a second short run (not in the nine-minute one)."""
    result = subprocess.run(["bash", "scripts/gpu_check.sh"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=_env(DRY_RUN="1", OUT=str(tmp_path), ONLY="corpus"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert [row[0] for row in _summary_rows(result.stdout)] == ["NVIDIA's tools on the sanitizer corpus"]
    with tarfile.open(tmp_path / "gpu-check-logs.tar.gz") as archive:
        log = archive.extractfile("./sanitizer-corpus.log").read().decode().splitlines()
    # a shared-memory race: racecheck
    assert "compute-sanitizer --tool racecheck --racecheck-report all python tests/sanitizer_corpus/" \
           "racecheck_block_sum.py" in log
    assert any("--tool memcheck" in line and "write_out_of_bounds.py" in line for line in log)
    assert "ncu --metrics ... tests/sanitizer_corpus/transpose_tile_32x32.py" in log
    assert not any("compute-sanitizer" in line and "strided_loads" in line for line in log)  # traffic: ncu alone
