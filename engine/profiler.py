"""Where a training step's time goes: each layer's forward and backward, the loss and the optimizer.

On a CPU the device is synchronized around every piece, and each row is the median over several steps after
warm-up. On a cuda device each part gets two times (``host_ms``, ``gpu_ms``):

* host time: the Python call (argument checks, launch), ``time.perf_counter`` around it, no synchronization;
* GPU time: CUDA events recorded on the device's stream before and after the part, read once after the step.

A launch puts work in the stream's queue and returns; if the queue runs dry, the GPU idles while Python
launches the next kernel, and events would count that idle time as the part's. So before each timed step the
profiler holds the GPU back with a few long, throwaway kernels (``_GpuHold``: a naive 1024^3 GEMM, repeated to
outlast the step's host time): every part's launches are queued before the GPU reaches them, and the events
time only the kernels. A part whose host time exceeds its GPU time is launch-bound: the GPU finishes its work
sooner than Python can issue it. The loss is kept on the device (``forward_device``) during the step, so the
step does not stop in the middle to read it back.

In Numba's simulator there is no GPU clock (CUDA events report no elapsed time): ``gpu_ms`` is None there.
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np

from .sequential import Sequential

SIMULATOR_GPU_NOTE = ("GPU time: – in the simulator (CUDA events report no elapsed time there; the kernels run as "
                      "Python threads on the CPU): only host time is measured")


def profile_step(model, loss_layer, optimizer, x, y, steps: int = 10, warmup: int = 2,
                 gpu_clock=None, hold=None) -> list[dict]:
    """Per-part rows ``{"part", "median_ms", "percent"}`` and a last total row. On a cuda device each row also
    has ``host_ms`` and ``gpu_ms`` (None without a GPU clock: the simulator) and ``bound`` ("launch" when the
    host time exceeds the GPU time, "GPU" otherwise, None unknown); ``median_ms`` is then the larger of the two.
    ``gpu_clock`` (``mark() -> event``, ``elapsed_ms(start, end)``) and ``hold`` (a callable queueing work
    ahead of the step) replace the CUDA events and the GPU hold (tests)."""
    if model.device.name == "cuda":
        return _profile_cuda(model, loss_layer, optimizer, x, y, steps, warmup, gpu_clock, hold)
    dev = model.device
    X = dev.asarray(x)
    timings: dict[str, list[float]] = {}
    record = False

    def timed(name, fn, *args):
        dev.synchronize()
        t0 = time.perf_counter()
        out = fn(*args)
        dev.synchronize()
        if record:
            timings.setdefault(name, []).append((time.perf_counter() - t0) * 1e3)
        return out

    for step in range(warmup + steps):
        record = step >= warmup
        _one_step(model, loss_layer.forward, loss_layer, optimizer, X, y, timed)
    rows = [{"part": name, "median_ms": statistics.median(values)} for name, values in timings.items()]
    total = sum(r["median_ms"] for r in rows)
    for r in rows:
        r["percent"] = 100 * r["median_ms"] / total
    rows.append({"part": "total (synchronized)", "median_ms": total, "percent": 100.0})
    return rows


def _one_step(model, loss_forward, loss_layer, optimizer, X, y, timed) -> None:
    """One training step, each part called through ``timed(name, fn, *args)``."""
    # forward as the model runs it: by stages, a Dense with its activation fused in being one
    stages = model.planned_stages() if isinstance(model, Sequential) else [
        (i, layer, None) for i, layer in enumerate(model.layers)]
    names = [f"{i}:{type(layer).__name__}" for i, layer in enumerate(model.layers)]
    h = X
    for stage in stages:
        h = timed(f"{Sequential.stage_name(stage)} forward", Sequential.run_stage, stage, h)
    timed("loss forward", loss_forward, h, y)
    dy = timed("loss backward", loss_layer.backward)
    for name, layer in reversed(list(zip(names, model.layers))):
        dy = timed(f"{name} backward", layer.backward, dy)
    timed("optimizer step", optimizer.step)


class EventClock:
    """GPU time between two points of a device's stream: a CUDA event recorded at each."""

    def __init__(self, dev):
        from numba import cuda

        self._cuda, self._stream = cuda, dev.stream

    def mark(self):
        event = self._cuda.event()
        event.record(self._stream)
        return event

    def elapsed_ms(self, start, end) -> float:
        return start.elapsed_time(end)


class _GpuHold:
    """Throwaway work queued on the device's stream ahead of a timed step, long enough that the GPU is still
    busy with it when Python has launched the whole step (so the step's kernels then run back to back)."""

    SIZE = 1024  # a naive GEMM of SIZE^3: one launch of about a millisecond on a current GPU

    def __init__(self, dev, clock):
        self.dev, self.clock, self.repeats = dev, clock, 1
        a = np.ones((self.SIZE, self.SIZE), np.float32)
        self.a, self.b, self.c = dev.asarray(a), dev.asarray(a), dev.empty((self.SIZE, self.SIZE))

    def _one(self) -> None:
        self.dev.kernels.gemm(self.c, self.a, self.b, version="naive")

    def calibrate(self, host_step_ms: float) -> None:
        """Repeat the GEMM enough to last twice the step's host time."""
        self._one()
        self.dev.synchronize()
        start = self.clock.mark()
        self._one()
        end = self.clock.mark()
        self.dev.synchronize()
        one_ms = max(self.clock.elapsed_ms(start, end), 1e-3)
        self.repeats = max(1, min(1000, math.ceil(2.0 * host_step_ms / one_ms)))

    def __call__(self) -> None:
        for _ in range(self.repeats):
            self._one()


def _profile_cuda(model, loss_layer, optimizer, x, y, steps, warmup, clock, hold) -> list[dict]:
    dev = model.device
    X = dev.asarray(x)
    if clock is None and not dev.simulator:
        clock = EventClock(dev)
    if hasattr(loss_layer, "forward_device"):  # the loss stays on the device: no read back mid-step
        labels = dev.asarray(np.asarray(y, np.int32)) if np.asarray(y).dtype.kind in "iub" else dev.asarray(y)
        loss_forward = loss_layer.forward_device
    else:
        labels, loss_forward = y, loss_layer.forward
    host: dict[str, list[float]] = {}
    gpu: dict[str, list[float]] = {}
    marks: list = []

    def timed(name, fn, *args):
        start = clock.mark() if clock is not None else None
        t0 = time.perf_counter()
        out = fn(*args)
        host_ms = (time.perf_counter() - t0) * 1e3
        marks.append((name, host_ms, start, clock.mark() if clock is not None else None))
        return out

    for step in range(warmup + steps):
        marks.clear()
        if step >= warmup and hold is not None:
            hold()
        _one_step(model, loss_forward, loss_layer, optimizer, X, labels, timed)
        dev.synchronize()  # once per step: then every event of the step has its time
        if step + 1 == warmup and hold is None and clock is not None and isinstance(clock, EventClock):
            hold = _GpuHold(dev, clock)
            hold.calibrate(sum(m[1] for m in marks))
        if step >= warmup:
            for name, host_ms, start, end in marks:
                host.setdefault(name, []).append(host_ms)
                if clock is not None:
                    gpu.setdefault(name, []).append(clock.elapsed_ms(start, end))
    rows = []
    for name, values in host.items():
        host_ms = statistics.median(values)
        gpu_ms = statistics.median(gpu[name]) if name in gpu else None
        rows.append({"part": name, "host_ms": host_ms, "gpu_ms": gpu_ms, "median_ms": max(host_ms, gpu_ms or 0.0),
                     "bound": None if gpu_ms is None else "launch" if host_ms > gpu_ms else "GPU"})
    total = sum(r["median_ms"] for r in rows)
    for r in rows:
        r["percent"] = 100 * r["median_ms"] / total if total > 0 else 0.0
    host_total = sum(r["host_ms"] for r in rows)
    gpu_total = None if clock is None else sum(r["gpu_ms"] for r in rows)
    rows.append({"part": "total", "host_ms": host_total, "gpu_ms": gpu_total, "median_ms": total, "percent": 100.0,
                 "bound": None if gpu_total is None else "launch" if host_total > gpu_total else "GPU"})
    return rows


def launch_bound_note(rows: list[dict]) -> str | None:
    """One sentence for a student, from the total row of a cuda profile: what bounds the step."""
    total = rows[-1] if rows else {}
    if total.get("gpu_ms") is None:
        return SIMULATOR_GPU_NOTE if "host_ms" in total else None
    parts = [r for r in rows[:-1] if r.get("bound") == "launch"]
    if total["bound"] == "launch":
        return (f"launch-bound: Python spends {total['host_ms']:.3f} ms issuing the step, the GPU works "
                f"{total['gpu_ms']:.3f} ms ({len(parts)} of {len(rows) - 1} parts take longer to launch than "
                "to run): the GPU waits on the host; a CUDA graph (train --cuda-graph) replays the whole step in "
                "one launch")
    return (f"GPU-bound: the GPU works {total['gpu_ms']:.3f} ms, Python issues the step in {total['host_ms']:.3f} ms "
            f"({len(parts)} of {len(rows) - 1} parts are launch-bound)")


def random_batch(model_name: str, batch: int, seed: int = 0, mlp_features: int = 64):
    """A batch shaped as the model's data set (digits: 8x8 = 64 features for the MLP; 784 = MNIST size,
    the bench's MLP; 8 rows of 8 for the recurrent classifiers). For charlm: character ids (batch, 64) and
    the labels of every time step as one (batch*64,) vector, the rows ``FlattenTime`` makes."""
    rng = np.random.default_rng(seed)
    if model_name == "charlm":
        from .data import CHARS
        from .recipes import CHAR_LM

        steps = CHAR_LM["seq_len"]
        return (rng.integers(0, len(CHARS), (batch, steps)).astype(np.int32),
                rng.integers(0, len(CHARS), batch * steps))
    shapes = {"lenet": (batch, 1, 28, 28), "mlp": (batch, mlp_features), "rnn": (batch, 8, 8), "lstm": (batch, 8, 8),
              "gru": (batch, 8, 8)}
    return rng.random(shapes[model_name]).astype(np.float32), rng.integers(0, 10, batch)
