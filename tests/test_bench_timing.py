"""The bench's paired timing: versions of one case timed in alternating blocks, so that a drift of the
machine's speed lands on every version alike."""

import time
from contextlib import contextmanager

import pytest

from bench.timing import time_interleaved


class Clocked:
    """A run whose duration is set by a shared 'machine speed' that drifts over time."""

    def __init__(self, cost_s, machine):
        self.cost_s, self.machine = cost_s, machine

    def __call__(self):
        time.sleep(self.cost_s * self.machine["slowdown"])
        self.machine["calls"] += 1
        if self.machine["calls"] == 12:  # halfway through, the machine turns 3x slower and stays so
            self.machine["slowdown"] = 3.0


def test_paired_ratio_survives_a_slow_phase_that_would_skew_one_after_the_other():
    machine, entered = {"slowdown": 1.0, "calls": 0}, []

    @contextmanager
    def context(name):
        entered.append(name)
        yield

    fast, slow = Clocked(0.002, machine), Clocked(0.004, machine)
    entries = [("fast", fast, lambda: context("fast"), 0.0), ("slow", slow, lambda: context("slow"), 0.0)]
    timings = time_interleaved(entries, rounds=6, min_time_s=0.03)
    (_, fast_ms), (_, slow_ms) = timings["fast"], timings["slow"]
    # true ratio 2: both meet the slow phase, so the paired ratio stays near 2 (timed one after the other,
    # 'fast' would have run before the change and 'slow' after it: a ratio of about 6)
    assert 1.5 < slow_ms / fast_ms < 2.7, (fast_ms, slow_ms)
    # six blocks each, the order rotated every round, the context entered around every block
    assert entered == ["fast", "slow"] + ["fast", "slow", "slow", "fast"] * 3  # first calls, then the rounds


def test_every_version_gets_its_minimum_time_and_at_least_one_sample_a_block():
    calls = {"slow": 0}

    def slow():
        calls["slow"] += 1
        time.sleep(0.02)  # longer than a block: still one sample per block

    timings = time_interleaved([("slow", slow, lambda: _nothing(), 0.0)], rounds=4, min_time_s=0.01)
    assert calls["slow"] == 1 + 4  # the first call, then one per block
    assert timings["slow"][1] == pytest.approx(20, rel=0.5)


@contextmanager
def _nothing():
    yield
