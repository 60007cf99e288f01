"""Gradients reduced in buckets during backward (engine/distributed.py), and the scaling model that
extrapolates the measured allreduce to clusters (bench/scaling_model.py)."""

import json
import math

import numpy as np
import pytest
from test_distributed import launch, needs_mpi

import layers as L
from engine import Device, Graph
from engine.distributed import (
    bucket_floats_for,
    gpu_index,
    layer_ranges,
    make_reducer,
    model_fingerprint,
    plan_buckets,
    query_cuda_aware,
)
from engine.models import lenet, mlp
from engine.sequential import Sequential

# ------------------------------------------------------------------------------------------------ buckets


def test_buckets_are_whole_layers_from_the_end_of_the_buffer():
    units = [(0, 100), (100, 130), (130, 400), (400, 410)]  # four layers' ranges
    assert plan_buckets(units, 410, 1000) == [(0, 410)]  # everything fits one bucket
    assert plan_buckets(units, 410, 300) == [(130, 410), (0, 130)]  # 10 + 270 fit, + 30 would not: cut at 130
    assert plan_buckets(units, 410, 279) == [(400, 410), (130, 400), (0, 130)]
    assert plan_buckets(units, 410, 1) == [(400, 410), (130, 400), (100, 130), (0, 100)]  # one layer each
    # a layer larger than the bucket gets one of its own, and a bucket never splits a layer
    assert plan_buckets([(0, 10), (10, 5000), (5000, 5010)], 5010, 100) == [(5000, 5010), (10, 5000), (0, 10)]


def test_buckets_tile_the_buffer_or_fall_back_to_one():
    for units, total in [([(0, 10), (20, 30)], 30), ([(0, 10), (5, 30)], 30), ([(0, 10)], 30)]:
        assert plan_buckets(units, total, 5) == [(0, total)], "a gap or an overlap: one bucket, the whole buffer"
    with pytest.raises(ValueError, match="at least one float"):
        plan_buckets([(0, 10)], 10, 0)


def test_bucket_sizes_are_mebibytes_of_float32():
    assert bucket_floats_for(1.0) == 2**18
    assert bucket_floats_for(0.25) == 2**16
    assert bucket_floats_for(float("inf")) > 2**40
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="bucket size must be positive"):
            bucket_floats_for(bad)


def test_layer_ranges_of_the_models_tile_their_flat_buffers():
    for model in (mlp(Device("cpu"), in_features=784), lenet(Device("cpu"))):
        ranges = layer_ranges(model)
        assert [type(layer).__name__ for layer, _, _ in ranges] == [type(layer).__name__ for layer in model.layers
                                                                   if layer.parameters()]
        assert ranges[0][1] == 0 and ranges[-1][2] == model.flat.size
        assert all(a[2] == b[1] for a, b in zip(ranges, ranges[1:]))
    ranges = layer_ranges(mlp(Device("cpu"), in_features=784))
    # the MLP 784-256-256-10 (1.03 MiB) at 1 MiB: the first Dense alone, the other two together
    units = [(lo, hi) for _, lo, hi in ranges]
    assert plan_buckets(units, ranges[-1][2], bucket_floats_for(1.0)) == [(ranges[1][1], ranges[-1][2]),
                                                                           (0, ranges[1][1])]
    assert ranges[1][1] == 784 * 256 + 256


def test_backward_hooks_see_every_layer_in_reverse_order():
    dev = Device("cpu")
    model = mlp(dev, in_features=8, hidden=4)
    seen = []
    model.backward_hooks.append(seen.append)
    ce = L.SoftmaxCrossEntropy()
    x = np.random.default_rng(0).random((3, 8)).astype(np.float32)
    ce.forward(model.forward(x), np.array([0, 1, 2]))
    model.backward(ce.backward())
    assert seen == list(reversed(model.layers))

    g = Graph(inputs=["x"])
    g.add("fc", L.Dense(8, 8, device=dev), "x").add("relu", L.ReLU(), "fc").add("unused", L.ReLU(), "fc")
    g.add("out", L.Dense(8, 3, device=dev), "relu").output("out")
    seen = []
    g.backward_hooks.append(lambda layer: seen.append(layer))
    y = g.forward(x)
    g.backward(np.ones(y.shape, np.float32))
    assert seen == [g.nodes[name][0] for name in ("out", "unused", "relu", "fc")], "a node off the output path too"


def test_a_reducer_outside_a_step_does_nothing_and_detaches():
    """fit attaches the reducer for its steps; a backward outside them (a gradient check) starts nothing."""
    from engine.distributed import World

    model = mlp(Device("cpu"), in_features=8, hidden=4)
    world = World()  # one process: the reducer is only driven, never asked to communicate
    reducer = make_reducer(world, model, "overlap", 1e-5).attach()
    assert model.backward_hooks == [reducer.on_layer_done]
    assert len(reducer.buckets) == 3
    for layer in model.layers:
        reducer.on_layer_done(layer)  # not active: no MPI call
    assert reducer.started == len(reducer.buckets) and reducer.requests == []
    other = make_reducer(world, model, "blocking").attach()
    assert model.backward_hooks == [other.on_layer_done], "one reducer at a time"
    other.detach()
    assert model.backward_hooks == []
    with pytest.raises(ValueError, match="allreduce must be one of overlap, blocking"):
        make_reducer(world, model, "ring")


def test_gpu_of_each_local_rank():
    assert [gpu_index(r, 1) for r in range(3)] == [0, 0, 0], "one GPU: every rank shares it"
    assert [gpu_index(r, 4) for r in range(6)] == [0, 1, 2, 3, 0, 1]
    assert gpu_index(0, 0) is None
    with pytest.raises(ValueError):
        gpu_index(-1, 2)


def test_cuda_awareness_is_detected_or_forced(monkeypatch):
    class WithQuery:
        @staticmethod
        def Query_cuda_support():
            return True

    monkeypatch.delenv("TILEGRAD_MPI_CUDA_AWARE", raising=False)
    assert query_cuda_aware(WithQuery) == (True, "mpi4py's MPI.Query_cuda_support()")
    monkeypatch.setenv("TILEGRAD_MPI_CUDA_AWARE", "0")
    assert query_cuda_aware(WithQuery) == (False, "TILEGRAD_MPI_CUDA_AWARE=0")

    class Nothing:
        __file__ = "/nonexistent/libmpi.so"

    monkeypatch.delenv("TILEGRAD_MPI_CUDA_AWARE")
    aware, how = query_cuda_aware(Nothing)
    assert aware is False and "taken as not CUDA-aware" in how


def test_model_fingerprint_names_layers_and_sizes():
    text = model_fingerprint(Sequential(L.Dense(3, 2, device=Device("cpu")), L.ReLU()))
    assert text == "Dense[2x3, 2] ReLU: 8 parameters"


# ------------------------------------------------------------------------------------------------ over MPI
@needs_mpi
def test_overlap_and_blocking_train_the_same_model(tmp_path):
    """Three buckets started during backward give the parameters one blocking allreduce gives, bit for bit."""
    overlap = launch(2, "tests/mpi_worker.py", "train", str(tmp_path / "o"), "overlap", "0.002")
    blocking = launch(2, "tests/mpi_worker.py", "train", str(tmp_path / "b"), "blocking")
    assert overlap.returncode == 0, overlap.stderr[-2000:]
    assert blocking.returncode == 0, blocking.stderr[-2000:]
    for rank in (0, 1):
        np.testing.assert_array_equal(np.load(tmp_path / f"o.rank{rank}.npy"), np.load(tmp_path / f"b.rank{rank}.npy"))
    keys = ("loss", "train_accuracy", "test_loss", "test_accuracy")
    history = {name: [[h[k] for k in keys] for h in json.loads((tmp_path / f"{name}.json").read_text())]
               for name in "ob"}
    assert history["o"] == history["b"], "the same losses and accuracies"
    transport, cuda_aware = (tmp_path / "o.transport.txt").read_text().splitlines()
    assert transport == "host memory (MPI)"
    assert cuda_aware.startswith("False") and "MPIX_Query_cuda_support" in cuda_aware  # the MPICH wheel has it


@needs_mpi
def test_gpu_gradients_staged_through_pinned_host_buffers_in_the_simulator(tmp_path):
    """Two ranks on the simulated GPU: buckets copied to pinned host memory, reduced, copied back; the
    result is the one-process CPU run's."""
    sim = launch(2, "tests/mpi_worker.py", "short", str(tmp_path / "s"), "overlap", "0.0005", "cuda",
                 env={"NUMBA_ENABLE_CUDASIM": "1"})
    cpu = launch(1, "tests/mpi_worker.py", "short", str(tmp_path / "c"))
    assert sim.returncode == 0, sim.stderr[-2000:]
    assert cpu.returncode == 0, cpu.stderr[-2000:]
    assert (tmp_path / "s.transport.txt").read_text().startswith("pinned host buffers (the CUDA simulator")
    np.testing.assert_array_equal(np.load(tmp_path / "s.rank0.npy"), np.load(tmp_path / "s.rank1.npy"))
    np.testing.assert_allclose(np.load(tmp_path / "s.rank0.npy"), np.load(tmp_path / "c.rank0.npy"), atol=1e-6)


# ------------------------------------------------------------------------------------------------ the model
def _spec(step_ms=2.0, params=269_322):
    from bench.scaling_model import ModelSpec

    # five layers in backward order: (seconds, gradient bytes); the backward half of the step
    sizes = [4 * 2570, 0, 4 * 65_792, 0, 4 * 200_960]
    return ModelSpec("mlp", params, 256, step_ms / 1e3, [(step_ms / 1e3 / 2 / 5, b) for b in sizes])


def test_calibration_recovers_alpha_and_beta():
    from bench.scaling_model import fit_calibration

    alpha, beta = 3e-6, 0.4e-9
    rows = [{"ranks": 2, "bytes": s, "avg_us": 1e6 * (2 * alpha + s * beta)} for s in (4, 1024, 2**16, 2**20, 2**24)]
    cal = fit_calibration(rows)
    assert cal.alpha_s == pytest.approx(alpha, rel=1e-6) and cal.beta_s_per_byte == pytest.approx(beta, rel=1e-6)
    with pytest.raises(ValueError, match="one rank count"):
        fit_calibration(rows + [dict(rows[0], ranks=4)])


def test_ring_allreduce_known_limits():
    from bench.scaling_model import Calibration, Link, ring_allreduce_s

    link, cal = Link(100, 2e-6, "test"), Calibration(1e-6, 0.0)
    assert ring_allreduce_s(1, 1e6, link, cal) == 0.0 and ring_allreduce_s(8, 0, link, cal) == 0.0
    # 2 nodes: 2 latencies and the message once over the link
    assert ring_allreduce_s(2, 1e6, link, cal) == pytest.approx(2 * 3e-6 + 1e6 * 8 / 100e9)
    # many nodes: the bandwidth term tends to twice the message over the link; the latency term grows as 2(n-1)
    big = ring_allreduce_s(10_000, 1e9, link, Calibration(0.0, 0.0))
    assert big == pytest.approx(2 * 1e9 * 8 / 100e9 + 2 * 9_999 * 2e-6, rel=1e-3)


def test_predictions_are_monotone_and_overlap_costs_at_most_its_extra_latency():
    from bench.scaling_model import LINKS, NODES, Calibration, Link, buckets_of, predict

    cal, spec, no_latency = Calibration(2e-6, 0.2e-9), _spec(), Calibration(0.0, 0.2e-9)
    for link in LINKS:
        for overlap in (True, False):
            runs = [predict(spec, n, link, cal, overlap) for n in NODES]
            steps = [r["step_s"] for r in runs]
            assert steps == sorted(steps), "more nodes: a longer allreduce, never a shorter step"
            effs = [r["efficiency"] for r in runs]
            assert effs == sorted(effs, reverse=True) and all(0 < e <= 1.0 for e in effs)
            assert all(r["samples_per_s"] <= r["nodes"] * spec.batch / spec.step_s + 1e-9 for r in runs)
        for n in NODES:
            # overlap pays one latency term per extra bucket: at most that much slower, and never slower when
            # latency is free
            extra = (len(buckets_of(spec)) - 1) * 2 * (n - 1) * (cal.alpha_s + link.latency_s)
            assert predict(spec, n, link, cal, True)["step_s"] <= predict(spec, n, link, cal, False)["step_s"] + extra
            free = Link(link.gbps, 0.0, "no latency")
            assert predict(spec, n, free, no_latency, True)["step_s"] <= \
                predict(spec, n, free, no_latency, False)["step_s"] + 1e-12
    faster = [predict(spec, 64, link, cal, False)["efficiency"] for link in LINKS]
    assert faster == sorted(faster), "a faster link, a higher efficiency"
    assert predict(spec, 1, LINKS[0], cal, False)["efficiency"] == 1.0


def test_overlap_hides_at_most_the_backward_and_nothing_of_a_single_bucket():
    from bench.scaling_model import Calibration, Link, ModelSpec, buckets_of, predict

    cal, link = Calibration(0.0, 0.0), Link(10, 0.0, "slow")
    one_bucket = ModelSpec("lenet", 61_706, 64, 2e-3, [(0.5e-3, 4 * 10_000), (0.5e-3, 4 * 51_706)])
    assert len(buckets_of(one_bucket)) == 1
    o, b = predict(one_bucket, 8, link, cal, True), predict(one_bucket, 8, link, cal, False)
    assert o["step_s"] == pytest.approx(b["step_s"]), "its only bucket is ready when backward ends"
    spec = _spec()
    o, b = predict(spec, 8, link, cal, True), predict(spec, 8, link, cal, False)
    assert b["exposed_s"] - o["exposed_s"] <= spec.backward_s + 1e-12
    assert o["exposed_s"] < b["exposed_s"]
    # infinitely fast: nothing to hide, the step is one node's
    free = predict(spec, 256, Link(math.inf, 0.0, "free"), cal, True)
    assert free["step_s"] == pytest.approx(spec.step_s)


def test_stops_paying_where_efficiency_falls_under_half():
    from bench.scaling_model import LINKS, Calibration, predict, stops_paying

    cal, spec = Calibration(2e-6, 0.2e-9), _spec()
    for link in LINKS:
        n = stops_paying(spec, link, cal, False)
        if n is not None:
            assert predict(spec, n, link, cal, False)["efficiency"] < 0.5
            assert n == 2 or predict(spec, n // 2, link, cal, False)["efficiency"] >= 0.5
    assert stops_paying(_spec(step_ms=1e6), LINKS[0], cal, False) is None, "a step of 1000 s hides any allreduce"
