"""The CLI as a user runs it: subprocesses, JSON parsed, exit codes asserted."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
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


def test_bench_output_fits_100_columns_and_ends_with_a_verdict_per_family(quick_bench):
    data, out, result = quick_bench
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    assert "vs CPU" not in result.stdout and "vs peer" not in result.stdout, "empty for a CPU-only run: left out"
    verdict = result.stdout.split("\nverdict\n", 1)[1]
    for family in ("gemm", "conv", "pool", "elementwise", "rnn", "optim", "train"):
        line = next(line for line in verdict.splitlines() if line.startswith(f"{family}: "))
        assert line.startswith(f"{family}: best CPU row "), line
    assert " ".join(verdict.split()).count("no GPU in this run") == 7
    if any((r["pct_of_ceiling"] or 0) > 100 for r in data["results"]):
        assert "Cache-resident data beats a DRAM ceiling" in " ".join(result.stdout.split())
    assert all("spread" in r for r in data["results"]), "each row keeps its repeats' spread"


def test_bench_wide_prints_every_column():
    result = cli("bench", "--quick", "--ops", "pool", "--device", "cpu", "--wide")
    assert result.returncode == 0, result.stderr[-2000:]
    header = next(line for line in result.stdout.splitlines() if "max rel err" in line)
    for column in ("op", "case", "device", "impl", "thr", "ms", "spread %", "first ms", "GB/s", "% ceil"):
        assert f" {column} " in header, column
    assert "vs CPU" not in header and "\nverdict\npool: " in result.stdout


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
    again = cli("train", "--model", "mlp", "--epochs", "4", "--resume", str(ckpt), "--json", str(js))  # 4 in all
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming {ckpt} at epoch 3 of 4: 1 to go" in again.stderr
    resumed = json.loads(js.read_text())
    assert resumed["epochs"] == 4 and [h["epoch"] for h in resumed["history"]] == [4]


def test_train_errors_are_one_line():
    assert "--data-dir" in one_line_error(cli("train", "--dataset", "mnist"))
    assert "MNIST folder not found" in one_line_error(cli("train", "--dataset", "mnist", "--data-dir", "/nonexistent"))
    assert "invalid choice" in one_line_error(cli("train", "--optimizer", "lion"), code=2)
    assert "must be positive" in one_line_error(cli("train", "--epochs", "0"))


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "train", "--model", "lenet", "--epochs", "1000"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # the signal lands inside fit once an epoch line came (a fixed sleep raced the imports on a loaded machine,
    # e.g. beside another pytest-xdist worker); 1000 epochs take minutes
    lines = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True)
    reader.start()
    deadline, seen = time.monotonic() + 300, []
    while not any(line.startswith("epoch ") for line in seen) and time.monotonic() < deadline and proc.poll() is None:
        try:
            seen.append(lines.get(timeout=1))
        except queue.Empty:
            pass
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    reader.join(timeout=30)
    err = "".join(seen) + "".join(lines.get() for _ in range(lines.qsize()))
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
    assert "smallest failing input: n=1, h=1" in bad.stdout, "Hypothesis shrinks the failure to the smallest shape"
    assert "wrong: " in bad.stdout and "first: [0, 0] got" in bad.stdout, "the wrong indices, with both values"
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
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-3000:]  # every grader ran


# -- what a student sees: the failing case in a few lines, exact names, --list, inspect's matching ------------
def planted(tmp_path, name, old, new):
    source = (ROOT / "docs" / "tutorials" / "solutions" / f"{name}.py").read_text()
    assert old in source
    (tmp_path / f"{name}.py").write_text(source.replace(old, new))
    return {"TILEGRAD_EXERCISES": str(tmp_path)}


def test_a_kernel_failure_is_its_inputs_launch_shape_and_unwritten_indices_in_a_few_lines(tmp_path):
    env = planted(tmp_path, "leaky_relu", "range(start, x.size, stride)", "range(start, x.size - 1, stride)")
    bad = cli("--device", "sim", "check", "--only", "leaky_relu", env_extra=env)
    assert bad.returncode == 1, bad.stderr[-2000:]
    report = bad.stdout[bad.stdout.index("FAILED"):].splitlines()
    assert len(report) <= 8, "a few lines, not pytest's report:\n" + "\n".join(report)
    text = "\n".join(report)
    assert "launch: leaky_relu_kernel[" in text and "threads)" in text
    assert "never written (still NaN): 1 of " in text and "first: [" in text
    assert "smallest failing input: n=" in text and "slope=" in text
    assert "--full" in text, "how to see the whole report"
    for noise in ("tests/support.py", "+  where", "reproduce_failure", "\N{HUNDRED POINTS SYMBOL}"):
        assert noise not in bad.stdout, noise

    full = cli("--device", "sim", "check", "--only", "leaky_relu", "--full", env_extra=env)
    assert full.returncode == 1
    assert "reproduce_failure" in full.stdout and "tests/test_exercises.py:" in full.stdout
    assert "\N{HUNDRED POINTS SYMBOL}" not in full.stdout, "file.py:100: stays text, not an emoji"


def test_only_prefers_the_exact_name_and_otherwise_matches_substrings():
    solutions = {"TILEGRAD_EXERCISES": str(ROOT / "docs" / "tutorials" / "solutions")}
    exact = cli("check", "--only", "leaky_relu", env_extra=solutions)
    assert exact.returncode == 0, exact.stdout[-3000:]
    assert "leaky_relu[cpu]" in exact.stdout and "leaky_relu_layer" not in exact.stdout
    assert "1 passed, 0 failed" in exact.stdout
    both = cli("check", "--only", "leaky", env_extra=solutions)
    assert both.returncode == 0, both.stdout[-3000:]
    assert "leaky_relu[cpu]" in both.stdout and "leaky_relu_layer" in both.stdout
    typo = one_line_error(cli("check", "--only", "leaky_rleu"))
    assert "no check matched 'leaky_rleu'" in typo and "leaky_relu" in typo
    elsewhere = one_line_error(cli("--device", "sim", "check", "--only", "avgpool"))
    assert "no case that runs on" in elsewhere
    assert "exactly" in cli("check", "--help").stdout, "--help says how NAME matches"


def test_check_list_names_every_check_without_running_any():
    listed = cli("check", "--list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    rows = {line.split()[0]: line.split()[1:] for line in listed.stdout.splitlines()[1:]}
    for name, kind in (("leaky_relu", "exercise"), ("leaky_relu_layer", "exercise"), ("gemm_tiled", "exercise"),
                       ("layer_gradcheck", "gradcheck"), ("gemm_matches_float64_reference", "property")):
        assert rows[name][0] == kind, (name, rows.get(name))
    assert rows["gemm_tiled"][1] == "-", "a CUDA-only exercise has no case on the cpu"
    assert "passed" not in listed.stdout + listed.stderr and "FAIL" not in listed.stdout
    one = cli("check", "--list", "--only", "leaky_relu")
    assert [line.split()[0] for line in one.stdout.splitlines()[1:]] == ["leaky_relu"]
    gemms = cli("--device", "sim", "check", "--list", "--only", "gemm")
    assert {"gemm_tiled", "gemm_matches_float64_reference"} <= {line.split()[0] for line in gemms.stdout.splitlines()}


def test_inspect_matches_names_like_check():
    listed = cli("inspect", "gemm", "--list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert {"gemm_naive", "gemm_register_blocked", "gemm_split_k_reduce"} <= set(listed.stdout.split())
    assert cli("inspect", "gemm_register_blocked", "--list").stdout.split() == ["gemm_register_blocked"], \
        "an exact name selects just that kernel, not gemm_register_blocked_8x8 too"
    assert "gemm_naive" in one_line_error(cli("inspect", "gemm_navie", "--list"))
    assert "unknown kernel 'no_such_kernel'" in one_line_error(cli("--device", "sim", "inspect", "no_such_kernel"))


def test_the_failure_summary_reads_pytest_and_exception_group_reports():
    from commands.check import summarize

    short = """tests/test_exercises.py:100: in test_leaky_relu
    for_all(backend, case, check, sim_examples=5)
/tmp/ex/leaky_relu.py:9: in leaky_relu_cpu
    out[i] = v
E   AssertionError: leaky_relu n=1 slope=0.0
E   never written (still NaN): 1 of 1 outputs, first: [0]
E   assert not np.True_
E    +  where np.True_ = <built-in method any>()
E   Failing test case: check(
E       c={'n': 1,
E           'seed': 0},  # or any other generated value
E   )
E
E   You can reproduce this test case by temporarily adding @reproduce_failure('6', b'AX') as a decorator"""
    (failure,) = summarize(short)
    assert failure.message == ["leaky_relu n=1 slope=0.0", "never written (still NaN): 1 of 1 outputs, first: [0]"]
    assert failure.inputs == "n=1, seed=0" and failure.raised_at == "/tmp/ex/leaky_relu.py:9 in leaky_relu_cpu"
    group = """+ Exception Group Traceback (most recent call last):
  |   File "/x/tests/support.py", line 59, in for_all
  | ExceptionGroup: Hypothesis found 2 distinct failures. (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | Traceback (most recent call last):
    |   File "/x/tests/test_exercises.py", line 115, in check
    | AssertionError: gemm_tiled m=1 n=1 k=1
    | wrong: 1 of 1 outputs beyond rtol=0.0001 atol=0.0001, first: [0, 0] got 1 expected 2
    | Falsifying example: check(
    |     # The test sometimes passed when commented parts were varied together.
    |     c={
    |         'm': 1,  # or any other generated value
    |     },
    | )
    +---------------- 2 ----------------
    | Traceback (most recent call last):
    |   File "/tmp/ex/gemm_tiled.py", line 8, in gemm_tiled_kernel
    |     c[i, j] = acc
    | IndexError: index 16 is out of bounds for axis 0 with size 1
    | launch: gemm_tiled_kernel[(1, 1), (16, 16)] (1 block of 256 threads)
    | Falsifying example: check(c={'m': 17})
    +------------------------------------"""
    first, second = summarize(group)
    assert first.message[-1].startswith("wrong: 1 of 1") and first.inputs == "m=1" and first.raised_at is None
    assert second.message == ["IndexError: index 16 is out of bounds for axis 0 with size 1",
                              "launch: gemm_tiled_kernel[(1, 1), (16, 16)] (1 block of 256 threads)"]
    assert second.inputs == "m=17" and second.raised_at == "/tmp/ex/gemm_tiled.py:8 in gemm_tiled_kernel"


def test_grader_output_is_printed_as_text_not_rich_markup():
    from commands.check import failure_lines

    text = "tests/test_exercises.py:100: in test_leaky_relu\nE   AssertionError: out[:smile:] [red]x[/red]"
    assert failure_lines(text) == ["out[:smile:] [red]x[/red]"], "printed as it is: no emoji, no markup"


def test_mismatch_names_the_unwritten_and_the_wrong_indices():
    import numpy as np
    from support import mismatch

    assert mismatch(np.ones(3, np.float32), np.ones(3), 1e-5, 1e-6) is None
    out = np.array([1, np.nan, 3, np.nan], np.float32)
    assert mismatch(out, np.arange(4.0), 1e-5, 1e-6) == "never written (still NaN): 2 of 4 outputs, first: [1], [3]"
    wrong = mismatch(np.zeros((2, 2)), np.eye(2), 1e-5, 1e-6)
    assert wrong.startswith("wrong: 2 of 4 outputs") and "[0, 0] got 0 expected 1; [1, 1] got 0 expected 1" in wrong
    assert mismatch(np.zeros((2, 3)), np.zeros(3), 0, 0) == "output shape (2, 3), expected (3,)"
    assert mismatch(np.zeros((2, 3)), 0.0, 0, 0) is None
