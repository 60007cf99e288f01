"""scripts/cpu_targets.py: the median over runs, the row it reads, and the verdict against the target."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("cpu_targets", ROOT / "scripts" / "cpu_targets.py")
cpu_targets = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cpu_targets)


def fake_run(lenet_vs_peer: float) -> dict:
    rows = [{"op": "train", "case": "lenet-5 b64", "impl": "fwd+bwd+adam", "device": "cpu", "threads": 1,
             "vs_peer": 0.5},
            {"op": "train", "case": "lenet-5 b64", "impl": "fwd+bwd+adam", "device": "cpu", "threads": 2,
             "vs_peer": lenet_vs_peer},
            {"op": "train", "case": "lenet-5 b64", "impl": "torch", "device": "torch-cpu", "threads": 2,
             "vs_peer": None},
            {"op": "train", "case": "mlp 784-256-256-10 b256", "impl": "fwd+bwd+adam", "device": "cpu", "threads": 1,
             "vs_peer": 9.0},
            {"op": "train", "case": "mlp 784-256-256-10 b256", "impl": "fwd+bwd+adam", "device": "cpu", "threads": 2,
             "vs_peer": 1.1}]
    return {"machine": {"cpu": "test CPU", "threads": 2}, "results": rows}


def test_the_ratio_comes_from_the_row_with_the_most_threads():
    assert cpu_targets.ratio(fake_run(1.7), "train", "lenet-5 b64", "fwd+bwd+adam", "vs_peer") == 1.7
    assert cpu_targets.ratio(fake_run(1.7), "gemm", "1024^3", "blas_split", "vs_blas") is None


def test_the_table_takes_the_median_and_judges_it():
    table = cpu_targets.table([fake_run(1.0), fake_run(2.0), fake_run(1.6)])
    lenet = next(line for line in table.splitlines() if line.startswith("| LeNet-5"))
    assert "| 3 | 1.60x | 1.00 – 2.00 | 1.50x | yes |" in lenet
    mlp = next(line for line in table.splitlines() if line.startswith("| MLP"))
    assert "| 1.10x |" in mlp and "**no**" in mlp  # the 2-thread row (as the peers), not the best-looking one
    missing = next(line for line in table.splitlines() if "2048^3" in line)
    assert "not measured" in missing


def test_reading_saved_runs_needs_no_benchmarking(tmp_path):
    paths = []
    for i, value in enumerate([1.2, 1.8, 1.9]):
        path = tmp_path / f"run{i}.json"
        path.write_text(json.dumps(fake_run(value)))
        paths.append(str(path))
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "cpu_targets.py"), "--from", *paths],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "| LeNet-5 training step, batch 64, vs PyTorch | 3 | 1.80x |" in done.stdout
