"""scripts/cpu_targets.py: the median over runs, the row it reads, the verdict against the target, and the one
file a set of runs is kept in."""

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


def test_a_set_file_is_read_as_all_of_its_runs(tmp_path):
    runs = [fake_run(value) for value in (1.2, 1.8)]
    set_file = tmp_path / "2026-01-01T0000-cpu-targets-set.json"
    cpu_targets.write_set(set_file, {"started": "2026-01-01T0000"}, runs)
    single = tmp_path / "run.json"
    single.write_text(json.dumps(fake_run(1.9)))
    loaded, labels = cpu_targets.load_runs([set_file, single])
    assert loaded == [*runs, fake_run(1.9)]
    assert labels == [f"{set_file.name} (2 runs)", "run.json"]


def test_several_runs_are_kept_in_one_file(tmp_path, monkeypatch):
    values = iter([1.0, 2.0, 1.6])
    calls = []

    def fake_bench(command, **kwargs):  # stands in for `python cli.py bench ... --json PATH`
        calls.append(command)
        Path(command[command.index("--json") + 1]).write_text(json.dumps(fake_run(next(values)), indent=1))

    monkeypatch.setattr(cpu_targets.subprocess, "run", fake_bench)
    assert cpu_targets.main(["--runs", "3", "--out-dir", str(tmp_path)]) == 0
    assert len(calls) == 3
    (kept,) = tmp_path.iterdir()  # one file, no per-run leftovers
    assert kept.name.endswith(cpu_targets.SET_SUFFIX)
    data = json.loads(kept.read_text())
    assert data["runs"] == [fake_run(1.0), fake_run(2.0), fake_run(1.6)]  # each run as the bench wrote it
    assert data["set"]["runs"] == 3
    lenet = next(row for row in data["summary"] if row["case"] == "lenet-5 b64")
    assert (lenet["runs"], lenet["median"], lenet["min"], lenet["max"], lenet["met"]) == (3, 1.6, 1.0, 2.0, True)


def test_the_kept_sets_hold_their_runs_and_the_summary_of_them():
    sets = sorted((ROOT / "benchmarks" / "results").glob("*" + cpu_targets.SET_SUFFIX))
    assert sets
    for path in sets:
        data = json.loads(path.read_text())
        assert data["runs"] and all("results" in run for run in data["runs"]), path.name
        assert data["summary"] == cpu_targets.summary(data["runs"]), path.name
