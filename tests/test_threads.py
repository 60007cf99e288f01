"""CPU threads on a busy machine: the pool's defaults (set before numba loads, a user's own settings kept), small
loops on the calling thread, --threads / set_threads, `bench --busy` and what `info` says."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hardware.cpu_threads import DEFAULTS, LAYER_PRIORITY, WAIT_POLICY, apply_thread_defaults, wait_policy

ROOT = Path(__file__).resolve().parent.parent
THREAD_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "NUMBA_THREADING_LAYER",
                    "NUMBA_THREADING_LAYER_PRIORITY", "NUMBA_NUM_THREADS", "TILEGRAD_PARALLEL_GRAIN")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES and k != "NUMBA_ENABLE_CUDASIM"}
    env.update(extra)
    return env


def python(code, **extra):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                            env=clean_env(**extra))
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


def cli(*args, **extra):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env=clean_env(**extra))


def one_line_error(result, code=1):
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ------------------------------------------------------------------------------------------------ defaults
def test_defaults_fill_only_what_the_user_left_unset():
    env = {}
    assert apply_thread_defaults(env) == DEFAULTS and env == DEFAULTS
    for users_wait in ({"OMP_WAIT_POLICY": "active"}, {"GOMP_SPINCOUNT": "100000"}, {"KMP_BLOCKTIME": "200"}):
        env = dict(users_wait)
        assert apply_thread_defaults(env) == {LAYER_PRIORITY: DEFAULTS[LAYER_PRIORITY]}
        assert env == {**users_wait, LAYER_PRIORITY: DEFAULTS[LAYER_PRIORITY]}  # the user's value untouched
    env = {"NUMBA_THREADING_LAYER": "workqueue"}
    assert apply_thread_defaults(env) == {WAIT_POLICY: "PASSIVE"} and env["NUMBA_THREADING_LAYER"] == "workqueue"


def test_wait_policy_says_whose_setting_it_is():
    assert wait_policy({"GOMP_SPINCOUNT": "1000"}).startswith("spin 1000")
    assert wait_policy({"OMP_WAIT_POLICY": "ACTIVE"}) == "active (set by the user)"
    assert wait_policy({}).startswith("active for a while")


def test_the_package_sets_its_defaults_before_numba_reads_them():
    # numba reads NUMBA_THREADING_LAYER_PRIORITY when it is imported: seeing tilegrad's order in numba's config
    # proves the defaults were in the environment before numba loaded; libgomp reads OMP_WAIT_POLICY later still
    code = ("import sys, os; import cuda_kernels, numba; assert 'numba' in sys.modules; "
            "print(os.environ['OMP_WAIT_POLICY'], ' '.join(numba.config.THREADING_LAYER_PRIORITY))")
    assert python(code).split() == ["PASSIVE", "omp", "tbb", "workqueue"]
    kept = python(code, OMP_WAIT_POLICY="ACTIVE", NUMBA_THREADING_LAYER_PRIORITY="tbb omp workqueue")
    assert kept.split() == ["ACTIVE", "tbb", "omp", "workqueue"]


def test_the_pool_runs_on_the_layer_tilegrad_put_first():
    code = ("import cuda_kernels, numpy as np; from cuda_kernels import get_backend; b = get_backend('cpu'); "
            "x = np.ones(2_000_000, np.float32); out = np.empty_like(x); b.add(out, x, x); import numba; "
            "print(numba.threading_layer(), float(out.sum()))")
    assert python(code).split() == ["omp", "4000000.0"]


# ------------------------------------------------------------------------------------------------ grain
def test_small_loops_run_serially_and_large_ones_in_parallel(monkeypatch):
    from numba import njit, prange

    from cuda_kernels import threads

    def double(out, x):
        for i in prange(x.size):
            out[i] = 2 * x[i]

    loop = threads.serial_below_grain(njit(parallel=True)(double))
    assert "parallel" not in loop.serial.targetoptions and loop.parallel.targetoptions["parallel"]
    monkeypatch.setattr(threads, "PARALLEL_GRAIN", 100)
    small, large = np.arange(99, dtype=np.float32), np.arange(100, dtype=np.float32)
    out = np.empty_like(small)
    loop(out, small)
    assert np.array_equal(out, 2 * small)
    assert len(loop.serial.signatures) == 1 and not loop.parallel.signatures
    out = np.empty_like(large)
    loop(out, large)
    assert np.array_equal(out, 2 * large) and len(loop.parallel.signatures) == 1


def test_every_elementwise_twin_goes_through_the_grain_and_agrees_both_sides():
    from cuda_kernels import elementwise, get_backend, threads

    assert isinstance(elementwise._add_cpu, threads.SerialBelowGrain)
    backend = get_backend("cpu")
    for n in (threads.PARALLEL_GRAIN - 1, threads.PARALLEL_GRAIN + 1):
        x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
        out = np.empty_like(x)
        backend.activation_forward(out, x, "relu")
        assert np.array_equal(out, np.maximum(x, 0))


def test_grain_from_the_environment_and_a_bad_value():
    assert python("import cuda_kernels.threads as t; print(t.PARALLEL_GRAIN)", TILEGRAD_PARALLEL_GRAIN="0") == "0"
    bad = subprocess.run([sys.executable, "-c", "import cuda_kernels"], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, env=clean_env(TILEGRAD_PARALLEL_GRAIN="many"))
    assert bad.returncode != 0 and "TILEGRAD_PARALLEL_GRAIN must be a whole number" in bad.stderr


# ------------------------------------------------------------------------------------------------ threads
def test_set_threads_takes_one_to_the_pool_size():
    import numba

    from runtime import set_threads, thread_settings

    limit = thread_settings()["max_threads"]
    before = numba.get_num_threads()
    try:
        assert set_threads(1) == 1 and numba.get_num_threads() == 1
        assert thread_settings()["threads"] == 1
        for bad, error, words in ((0, ValueError, "at least 1"), (-2, ValueError, "at least 1"),
                                  (limit + 1, ValueError, f"at most {limit}"), (1.5, TypeError, "whole number"),
                                  (True, TypeError, "whole number")):
            with pytest.raises(error, match=words):
                set_threads(bad)
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("command", [["train", "--model", "mlp"], ["profile", "--model", "mlp"],
                                     ["predict", "--checkpoint", "none.npz", "--dataset", "digits"],
                                     ["bench", "--ops", "elementwise"]])
def test_bad_thread_counts_are_one_line_errors(command):
    assert "--threads must be at least 1, got 0" in one_line_error(cli(*command, "--threads", "0"))
    assert "--threads 4096: at most " in one_line_error(cli(*command, "--threads", "4096"))


def test_train_and_profile_headers_show_threads_and_the_wait(tmp_path):
    train = cli("train", "--model", "mlp", "--epochs", "1", "--limit", "64", "--threads", "1")
    assert train.returncode == 0, train.stderr[-2000:]
    assert "1 CPU thread (passive wait, omp layer)" in train.stderr
    spinning = cli("profile", "--model", "mlp", "--steps", "1", "--threads", "1", OMP_WAIT_POLICY="active")
    assert spinning.returncode == 0, spinning.stderr[-2000:]
    assert "1 CPU thread (active wait" in " ".join(spinning.stdout.split())


def test_info_prints_the_pool_policy_layer_and_grain():
    text = cli("info")
    assert text.returncode == 0, text.stderr[-2000:]
    flat = " ".join(text.stdout.replace("│", " ").split())
    assert "CPU thread pool" in flat and "passive (tilegrad's default)" in flat and "262,144 elements" in flat
    data = json.loads(cli("info", "--json", OMP_WAIT_POLICY="active").stdout)
    assert data["cpu_threads"]["wait_policy"] == "active (set by the user)"
    assert data["cpu_threads"]["parallel_grain"] == 1 << 18 and data["cpu_threads"]["threading_layer"]


# ------------------------------------------------------------------------------------------------ bench --busy
def _alive(process) -> bool:
    return process.poll() is None


def test_spinners_run_inside_and_always_stop():
    from bench.busy import spinning_processes

    with spinning_processes(2) as spinners:
        assert len(spinners) == 2 and all(_alive(p) for p in spinners)
    assert not any(_alive(p) for p in spinners)
    with pytest.raises(KeyboardInterrupt), spinning_processes(1) as spinners:
        raise KeyboardInterrupt
    assert not _alive(spinners[0])


def test_quiet_and_busy_passes_merge_into_slowdowns():
    from bench.busy import run_quiet_and_busy

    def row(ms, threads=1):
        return {"op": "train", "case": "c", "device": "cpu", "impl": "i", "threads": threads, "median_ms": ms}

    seen = []

    def fake_bench(config, progress=None):
        busy = len(seen) == 1
        seen.append(busy)
        return {"results": [row(3.0 if busy else 1.0), row(8.0 if busy else 2.0, 2)], "ceilings": {}, "seconds": 1.0}

    result = run_quiet_and_busy(None, 1, run_bench=fake_bench)
    assert seen == [False, True] and result["busy"] == 1
    assert [r["slowdown"] for r in result["results"]] == [3.0, 4.0]
    assert [r["median_ms"] for r in result["quiet_results"]] == [1.0, 2.0]


def test_an_interrupted_busy_pass_still_stops_its_spinners(monkeypatch):
    from bench import busy

    started = []
    real_popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(busy.subprocess, "Popen", recording_popen)
    calls = []

    def bench_interrupted_when_busy(config, progress=None):
        calls.append(1)
        if len(calls) == 2:
            assert started and all(_alive(p) for p in started)
            raise KeyboardInterrupt
        return {"results": [], "ceilings": {}, "seconds": 0.0}

    with pytest.raises(KeyboardInterrupt):
        busy.run_quiet_and_busy(None, 2, run_bench=bench_interrupted_when_busy)
    assert len(started) == 2 and not any(_alive(p) for p in started)


def test_bench_busy_reports_each_rows_slowdown(tmp_path):
    out = tmp_path / "busy.json"
    result = cli("bench", "--device", "cpu", "--ops", "elementwise", "--quick", "--busy", "1", "--json", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["busy"] == 1 and data["quiet_results"]
    measured = [r for r in data["results"] if r["median_ms"] is not None]
    assert measured and all(r["slowdown"] and r["quiet_ms"] for r in measured)
    assert any(r.get("vs_one_thread") for r in measured)
    assert "1 busy process" in result.stdout and "busy x" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 100
    assert "--busy takes a number" in one_line_error(cli("bench", "--busy", "0"))


def test_the_pytorch_peer_runs_without_the_defaults_tilegrad_set(monkeypatch):
    """PyTorch's OpenMP reads OMP_WAIT_POLICY too: the bench's peer gets the user's settings, never ours."""
    from hardware import cpu_threads

    monkeypatch.setattr(cpu_threads, "_SET_HERE", {"OMP_WAIT_POLICY": "PASSIVE", "_done": "1"})
    ours = {"OMP_WAIT_POLICY": "PASSIVE", "PATH": "/bin"}
    assert cpu_threads.environment_without_our_defaults(ours) == {"PATH": "/bin"}
    users = {"OMP_WAIT_POLICY": "ACTIVE", "PATH": "/bin"}  # not the value tilegrad set: the user's, kept
    assert cpu_threads.environment_without_our_defaults(users) == users
