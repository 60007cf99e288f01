"""The bench's graph row is checked against eager steps: the same parameters after N steps, or the row fails
(bench.cases.graph_against_eager; the runner marks such a row FAILED instead of timing a wrong step)."""

import numpy as np
import pytest

import layers as L
from bench.cases import GRAPH_CHECK_STEPS, RowFailed, graph_against_eager
from cuda_kernels import launch
from engine import Device, Sequential

pytestmark = pytest.mark.gpu


def build(dev):
    return Sequential(L.Dense(6, 8, device=dev, seed=1), L.ReLU(), L.Dense(8, 3, device=dev, seed=2))


def batch():
    rng = np.random.default_rng(0)
    return rng.standard_normal((4, 6)).astype(np.float32), rng.integers(0, 3, 4)


def test_replayed_steps_match_eager_steps():
    assert graph_against_eager(Device("cuda"), build, *batch()) <= 1e-6


def test_a_graph_that_does_not_replay_fails_the_row(monkeypatch):
    monkeypatch.setattr(launch.CapturedGraph, "launch", lambda self: None)  # replays that do nothing
    with pytest.raises(RowFailed, match=rf"^after {GRAPH_CHECK_STEPS} steps the replayed graph's parameters differ"):
        graph_against_eager(Device("cuda"), build, *batch())
