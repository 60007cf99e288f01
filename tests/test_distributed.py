"""Data parallelism over MPI: 2 ranks on the CPU train the model one process trains."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")

try:
    import mpi4py  # noqa: F401
except ImportError:
    mpi4py = None
needs_mpi = pytest.mark.skipif(mpi4py is None or MPIEXEC is None,
                               reason="needs the dist extra: pip install -e '.[dist]' (mpi4py and an MPI wheel)")
pytestmark = needs_mpi


def clean_env():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    for name in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE"):
        env.pop(name, None)
    return env


def launch(ranks, *args, timeout=300, env=None):
    cmd = ([MPIEXEC, "-n", str(ranks)] if ranks > 1 else []) + [sys.executable, *args]
    return subprocess.run(cmd, cwd=ROOT, env={**clean_env(), **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def test_two_ranks_train_the_same_model_as_one_process(tmp_path):
    one = launch(1, "tests/mpi_worker.py", "train", str(tmp_path / "one"))
    two = launch(2, "tests/mpi_worker.py", "train", str(tmp_path / "two"))
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    rank0, rank1 = np.load(tmp_path / "two.rank0.npy"), np.load(tmp_path / "two.rank1.npy")
    np.testing.assert_array_equal(rank0, rank1)  # replicas stay identical, bit for bit
    single = np.load(tmp_path / "one.rank0.npy")
    # the same mathematics, summed in a different order: float32 rounding only
    np.testing.assert_allclose(rank0, single, rtol=1e-4, atol=1e-5)
    h1, h2 = json.loads((tmp_path / "one.json").read_text()), json.loads((tmp_path / "two.json").read_text())
    for a, b in zip(h1, h2):
        assert abs(a["loss"] - b["loss"]) < 1e-4
        assert abs(a["test_accuracy"] - b["test_accuracy"]) <= 1 / 360 + 1e-9  # at most one test image
        assert abs(a["train_accuracy"] - b["train_accuracy"]) <= 2 / 500 + 1e-9


def test_cli_train_on_two_ranks_reports_world_size(tmp_path):
    result = launch(2, "cli.py", "train", "--model", "mlp", "--epochs", "2", "--batch-size", "32", "--json",
                    str(tmp_path / "t.json"))
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "t.json").read_text())
    assert summary["world_size"] == 2 and summary["test_accuracy"] > 0.8
    assert result.stdout.count("test accuracy") == 1, "rank 0 alone prints the summary"


def test_uneven_global_batch_is_one_clear_error():
    result = launch(2, "cli.py", "train", "--model", "mlp", "--epochs", "1", "--batch-size", "33")
    assert result.returncode != 0
    assert result.stderr.count("does not divide evenly among 2 ranks") == 1
    assert "Traceback" not in result.stderr


def test_a_failing_rank_stops_the_job_once_and_leaves_the_checkpoint_whole(tmp_path):
    result = launch(2, "tests/mpi_worker.py", "fail", str(tmp_path / "f"))
    assert result.returncode != 0
    assert result.stderr.count("simulated failure on rank 1") == 1, result.stderr[-2000:]
    from engine.checkpoint import read

    meta, arrays = read(tmp_path / "f.ckpt.npz")  # written after epoch 1 by rank 0; intact
    assert meta["extra"]["epoch"] == 1 and arrays
    assert not list(tmp_path.glob(".*.tmp")), "no half-written checkpoint left behind"


def test_ranks_disagreeing_on_model_or_data_is_one_clear_error(tmp_path):
    for mode, what, detail in (("disagree-model", "the model", "Dense[48x64, 48]"),
                               ("disagree-data", "the training data", "400 samples")):
        result = launch(2, "tests/mpi_worker.py", mode, str(tmp_path / mode))
        assert result.returncode != 0
        assert result.stderr.count(f"ranks disagree on {what}: ") == 1, result.stderr[-2000:]
        assert detail in result.stderr and "rank 0 has" in result.stderr and "rank 1 has" in result.stderr
        assert "Traceback" not in result.stderr


def test_bench_reports_rank_scaling_and_the_allreduce(tmp_path):
    result = launch(1, "cli.py", "bench", "--quick", "--device", "cpu", "--ops", "allreduce", "--ranks", "1,2",
                    "--json", str(tmp_path / "b.json"), timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((tmp_path / "b.json").read_text())
    rows = data["scaling"]
    assert {r["impl"] for r in rows} == {"1 MPI rank", "2 MPI ranks, blocking", "2 MPI ranks, overlap"}
    assert all(r["samples_per_s"] > 0 and r["step_ms"] == r["median_ms"] for r in rows)
    assert all(r["scaling"] == 1.0 == r["efficiency"] and r["comm_ms"] == 0.0 for r in rows if r["ranks"] == 1)
    for r in rows:
        if r["ranks"] == 2:
            assert r["comm_ms"] > 0 and 0.0 <= r["comm_hidden"] <= 1.0
            assert r["efficiency"] == pytest.approx(r["scaling"])  # 2 ranks x 1 thread against 1 rank x 2 threads
    assert "hidden" in result.stdout and "efficiency" in result.stdout
    sizes = [r for r in data["results"] if r["op"] == "allreduce"]
    assert [r["case"] for r in sizes] == ["4 B", "1 KiB", "64 KiB", "1 MiB", "4 MiB"]
    assert all(r["median_ms"] > 0 and r["gbps"] > 0 and r["max_rel_err"] == 0.0 and r["ranks"] == 2 for r in sizes)
    assert sizes[-1]["median_ms"] > sizes[0]["median_ms"]
