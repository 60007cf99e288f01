"""The CLI as a user runs it: subprocesses, JSON parsed, exit codes asserted."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, timeout=300, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def one_line_error(result, code=1):
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    return result.stderr.strip()


@pytest.fixture(scope="module")
def quick_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    result = cli("bench", "--quick", "--device", "cpu", "--json", str(out / "b.json"), "--plot", str(out / "b.png"))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "b.json").read_text()), out, result


def test_bench_quick_covers_every_op_family_with_a_validation_error_on_every_row(quick_bench):
    data, out, result = quick_bench
    assert {"cpu", "threads", "gpu", "numba", "numba_cuda"} <= set(data["machine"])
    assert data["ceilings"]["cpu"]["gflops"] > 0 and data["ceilings"]["cpu"]["gbps"] > 0
    ours = [r for r in data["results"] if r["device"] == "cpu"]
    assert {r["op"] for r in ours} == {"gemm", "conv", "pool", "elementwise", "rnn", "optim", "train"}
    for row in ours:
        for key in ("op", "case", "device", "impl", "median_ms", "gflops", "gbps", "pct_of_ceiling", "speedup_vs_cpu",
                    "vs_peer", "max_rel_err"):
            assert key in row
        assert row["median_ms"] > 0 and row["max_rel_err"] is not None, row
        assert row["max_rel_err"] < 1e-4, row
    assert {r["threads"] for r in ours} >= {1}, "the 1-thread rows run"
    assert (out / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "tilegrad bench" in result.stdout


def test_bench_lists_gpu_rows_as_unavailable_without_a_gpu():
    from hardware import cuda_probe

    if cuda_probe.real_gpu_count():
        pytest.skip("a GPU is present")
    result = cli("bench", "--quick", "--ops", "pool", "--json", "/dev/stdout")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "unavailable" in result.stdout and "never timed" in result.stderr.replace("\n", " ")


def test_bench_bad_arguments():
    assert "unknown op fft" in one_line_error(cli("bench", "--ops", "gemm,fft"))
    assert "invalid choice" in one_line_error(cli("bench", "--device", "tpu"), code=2)


def test_train_writes_json_plot_checkpoint_and_resumes(tmp_path):
    ckpt, js, png = tmp_path / "m.npz", tmp_path / "t.json", tmp_path / "t.png"
    result = cli("train", "--model", "mlp", "--epochs", "3", "--checkpoint", str(ckpt), "--json", str(js),
                 "--plot", str(png))
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(js.read_text())
    for key in ("model", "dataset", "device", "epochs", "final_loss", "train_accuracy", "test_accuracy",
                "samples_per_s", "seconds"):
        assert key in summary
    assert summary["test_accuracy"] > 0.8 and summary["epochs"] == 3
    assert png.read_bytes()[:4] == b"\x89PNG" and ckpt.exists()
    again = cli("train", "--model", "mlp", "--epochs", "1", "--resume", str(ckpt), "--json", str(js))
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(js.read_text())["epochs"] == 4


def test_train_errors_are_one_line():
    assert "--data-dir" in one_line_error(cli("train", "--dataset", "mnist"))
    assert "MNIST folder not found" in one_line_error(cli("train", "--dataset", "mnist", "--data-dir", "/nonexistent"))
    assert "invalid choice" in one_line_error(cli("train", "--optimizer", "lion"), code=2)
    assert "must be positive" in one_line_error(cli("train", "--epochs", "0"))


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "train", "--model", "lenet", "--epochs", "1000"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # imports, compilation, some epochs (1000 of them take minutes: the signal lands inside fit)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted" in err
    assert (tmp_path / "interrupted-lenet.npz").exists()


def test_check_passes_and_reports_a_table():
    result = cli("check", "--only", "activation")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "pass" in result.stdout and "FAIL" not in result.stdout
    assert "no check matched" in one_line_error(cli("check", "--only", "no_such_thing"))


def test_profile_table_and_json(tmp_path):
    result = cli("profile", "--model", "mlp", "--steps", "3", "--json", str(tmp_path / "p.json"))
    assert result.returncode == 0, result.stderr[-2000:]
    parts = json.loads((tmp_path / "p.json").read_text())["parts"]
    assert parts[-1]["part"].startswith("total") and abs(sum(p["percent"] for p in parts[:-1]) - 100) < 1e-6
    assert any("Dense backward" in p["part"] for p in parts)


def test_help_teaches_every_subcommand():
    result = cli("--help")
    for command in ("bench", "train", "check", "profile", "inspect", "info"):
        assert command in result.stdout
    assert cli("bench", "--help").returncode == 0


def test_train_runs_in_the_simulator_at_a_tiny_size(tmp_path):
    result = cli("--device", "sim", "train", "--model", "mlp", "--epochs", "1", "--batch-size", "16", "--limit", "16",
                 "--json", str(tmp_path / "sim.json"))
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "sim.json").read_text())
    assert "simulator=True" in summary["device"] and summary["final_loss"] > 0


def test_grader_rejects_a_planted_wrong_kernel_and_accepts_the_reference(tmp_path):
    solutions = ROOT / "docs" / "tutorials" / "solutions"
    good = cli("check", "--only", "rnn_step", env_extra={"TILEGRAD_EXERCISES": str(solutions)})
    assert good.returncode == 0, good.stdout[-3000:]
    assert "1 passed, 0 failed" in good.stdout
    wrong = (solutions / "rnn_step.py").read_text().replace("(np.float32(1.0) - v * v)", "(np.float32(1.0) - v)")
    (tmp_path / "rnn_step.py").write_text(wrong)
    bad = cli("check", "--only", "rnn_step", env_extra={"TILEGRAD_EXERCISES": str(tmp_path)})
    assert bad.returncode == 1
    assert "FAIL" in bad.stdout and "rnn_tanh_backward" in bad.stdout
    assert "Falsifying example" in bad.stdout or "Failing test case" in bad.stdout, "the smallest failing input"
    assert "'n': 1, 'h': 1" in bad.stdout, "Hypothesis shrinks the failure to the smallest shape"
    assert "Traceback" not in bad.stderr


def test_grader_says_an_exercise_is_not_attempted_yet():
    result = cli("check", "--only", "avgpool")  # the shipped stub
    assert result.returncode == 1 and "not attempted yet" in result.stdout


def test_every_reference_solution_passes_its_grader():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["TILEGRAD_EXERCISES"] = str(ROOT / "docs" / "tutorials" / "solutions")
    result = subprocess.run([sys.executable, "-m", "pytest", "tests/test_exercises.py", "-q", "-p", "no:cacheprovider",
                             "-o", "addopts="], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "7 passed" in result.stdout
