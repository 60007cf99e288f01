"""`cli.py profile`: on a cuda device, host time and GPU time apart per part (CUDA events; a fake event source
here, where the simulator has no GPU clock), launch-bound parts marked; on a CPU the synchronized table as
before. And the bench's train rows: eager and graph on cuda, PyTorch peers run the same two ways."""

import json

import numpy as np
import pytest
from test_cli import cli

import layers as L
import optim as O
from engine import Device, Sequential
from engine.profiler import SIMULATOR_GPU_NOTE, launch_bound_note, profile_step


def tiny(dev):
    model = Sequential(L.Dense(6, 5, device=dev, seed=1), L.ReLU(), L.Dense(5, 3, device=dev, seed=2))
    return model, L.SoftmaxCrossEntropy(), O.Adam(model.parameters(), lr=1e-3)


def batch():
    rng = np.random.default_rng(0)
    return rng.random((4, 6), dtype=np.float32), rng.integers(0, 3, 4)


class FakeClock:
    """CUDA events stand-in: each mark is a number; a part's GPU time is ``ms_per_part``."""

    def __init__(self, ms_per_part):
        self.ms_per_part, self.count = ms_per_part, 0

    def mark(self):
        self.count += 1
        return self.count

    def elapsed_ms(self, start, end):
        assert end == start + 1, "each part's events: one before it, one after it"
        return self.ms_per_part


def test_cpu_profile_is_unchanged():
    rows = profile_step(*tiny(Device("cpu")), *batch(), steps=2, warmup=1)
    assert all(set(r) == {"part", "median_ms", "percent"} for r in rows)
    assert rows[-1]["part"] == "total (synchronized)"
    assert launch_bound_note(rows) is None


@pytest.mark.parametrize("gpu_ms, bound", [(0.0, "launch"), (1e6, "GPU")])
def test_cuda_profile_splits_host_and_gpu_time(gpu_ms, bound):
    holds = []
    rows = profile_step(*tiny(Device("cuda")), *batch(), steps=3, warmup=1, gpu_clock=FakeClock(gpu_ms),
                        hold=lambda: holds.append(1))
    assert len(holds) == 3, "the GPU is held back before every timed step, never before a warm-up step"
    parts = [r["part"] for r in rows]
    assert parts[-1] == "total" and "loss forward" in parts and "optimizer step" in parts
    for r in rows:
        assert {"host_ms", "gpu_ms", "bound", "median_ms", "percent"} <= set(r)
        assert r["host_ms"] > 0 and r["bound"] == bound
        assert r["median_ms"] == max(r["host_ms"], r["gpu_ms"])
    assert rows[-1]["gpu_ms"] == pytest.approx(gpu_ms * (len(rows) - 1))
    assert sum(r["percent"] for r in rows[:-1]) == pytest.approx(100)
    assert launch_bound_note(rows).startswith(f"{bound}-bound")


def test_simulator_profile_has_no_gpu_time_and_says_why():
    rows = profile_step(*tiny(Device("cuda")), *batch(), steps=1, warmup=1)
    assert all(r["gpu_ms"] is None and r["bound"] is None and r["host_ms"] > 0 for r in rows)
    assert launch_bound_note(rows) == SIMULATOR_GPU_NOTE


def test_profile_command_on_the_simulator_has_host_and_gpu_columns(tmp_path):
    out = tmp_path / "p.json"
    result = cli("--device", "sim", "profile", "--model", "mlp", "--batch-size", "2", "--steps", "1",
                 "--json", str(out), env_extra={"COLUMNS": "140"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "host ms" in result.stdout and "GPU ms" in result.stdout and "bound" in result.stdout
    assert "GPU time: – in the simulator" in result.stdout
    data = json.loads(out.read_text())
    assert all("host_ms" in p and "gpu_ms" in p for p in data["parts"]) and data["note"] == SIMULATOR_GPU_NOTE


# ------------------------------------------------------------------------------------------------ bench
def test_train_cases_run_eager_and_graph_on_cuda_for_the_four_shapes():
    from bench.cases import TRAIN_CPU_IMPL, train_cases

    cases = list(train_cases(quick=False))
    assert [c.case for c in cases] == ["lenet-5 b64", "lenet-5 b256", "mlp 784-256-256-10 b256",
                                       "mlp 784-256-256-10 b1024", "lenet-5 digits b32",
                                       "mlp 64-256-256-10 digits b32", "lstm 8->64 digits b32", "gru 8->64 digits b32"]
    for case in cases:
        assert case.impls == {"cpu": [TRAIN_CPU_IMPL], "cuda": ["eager", "graph"]}
        assert case.peer["impls"] == {"cpu": ["eager"], "cuda": ["eager", "graph"]}


def test_the_train_peer_job_accepts_graph_on_cuda_only():
    from bench.cases import rnn_cases, train_cases
    from bench.peers import PEER_IMPL, peer_impls

    spec = next(iter(train_cases(quick=True))).peer
    assert peer_impls(spec, "cuda") == ["eager", "graph"] and peer_impls(spec, "cpu") == ["eager"]
    with pytest.raises(ValueError, match="cuda only"):
        peer_impls({**spec, "impls": {"cpu": ["graph"]}}, "cpu")
    with pytest.raises(ValueError, match="unknown impl"):
        peer_impls({**spec, "impls": {"cuda": ["compiled"]}}, "cuda")
    # the other kinds run one way, named as before
    assert peer_impls({"kind": "gemm"}, "cuda") == [PEER_IMPL]
    assert [c.peer["kind"] for c in rnn_cases(quick=True)] == ["rnn", "lstm", "gru"]


def test_vs_peer_pairs_eager_with_eager_and_graph_with_graph():
    from bench.runner import _derive

    def row(device, impl, ms):
        return {"op": "train", "case": "c", "device": device, "impl": impl, "median_ms": ms, "gflops": None,
                "gbps": None, "threads": None, "pct_of_ceiling": None, "speedup_vs_cpu": None, "vs_peer": None,
                "vs_blas": None}

    rows = [row("cuda", "eager", 4.0), row("cuda", "graph", 1.0), row("torch-cuda", "eager", 2.0),
            row("torch-cuda", "graph", 0.5), row("cpu", "fwd+bwd+adam", 8.0), row("torch-cpu", "eager", 4.0)]
    _derive(rows, {})
    assert [r["vs_peer"] for r in rows[:2]] == [0.5, 0.5]
    assert rows[4]["vs_peer"] == 0.5, "a CPU row against the peer's best (no peer row of its name)"


def test_train_case_eager_and_graph_steps_run_in_the_simulator(monkeypatch):
    """The setup of each cuda impl, on a tiny model in place of the MLP (the simulator is never timed)."""
    import bench.cases as cases
    import engine.models

    monkeypatch.setattr(cases, "TRAIN_CASES", [("tiny mlp b2", "mlp", 2)])
    monkeypatch.setattr(cases, "DIGITS_TRAIN_CASES", [])
    monkeypatch.setattr(engine.models, "mlp", lambda dev, in_features: Sequential(
        L.Dense(in_features, 3, device=dev, seed=1)))
    (case,) = cases.train_cases(quick=False)
    dev = Device("cuda")
    for impl in case.impls["cuda"]:
        run, check = case.setup(dev, impl)
        run()
        run()
        assert check() < 1e-4
