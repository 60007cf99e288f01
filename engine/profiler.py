"""Where a training step's time goes: each layer's forward and backward, the loss and the optimizer,
timed with the device synchronized around every piece (so GPU work is charged to the layer that
launched it), as the median over several steps after warm-up."""

from __future__ import annotations

import statistics
import time

import numpy as np

from .sequential import Sequential


def profile_step(model, loss_layer, optimizer, x, y, steps: int = 10, warmup: int = 2) -> list[dict]:
    dev = model.device
    X = dev.asarray(x)
    timings: dict[str, list[float]] = {}

    def timed(name, fn, *args):
        dev.synchronize()
        t0 = time.perf_counter()
        out = fn(*args)
        dev.synchronize()
        if record:
            timings.setdefault(name, []).append((time.perf_counter() - t0) * 1e3)
        return out

    # forward as the model runs it: by stages, a Dense with its activation fused in being one
    stages = model.planned_stages() if isinstance(model, Sequential) else [
        (i, layer, None) for i, layer in enumerate(model.layers)]
    names = [f"{i}:{type(layer).__name__}" for i, layer in enumerate(model.layers)]
    for step in range(warmup + steps):
        record = step >= warmup
        h = X
        for stage in stages:
            h = timed(f"{Sequential.stage_name(stage)} forward", Sequential.run_stage, stage, h)
        timed("loss forward", loss_layer.forward, h, y)
        dy = timed("loss backward", loss_layer.backward)
        for name, layer in reversed(list(zip(names, model.layers))):
            dy = timed(f"{name} backward", layer.backward, dy)
        timed("optimizer step", optimizer.step)
    rows = [{"part": name, "median_ms": statistics.median(values)} for name, values in timings.items()]
    total = sum(r["median_ms"] for r in rows)
    for r in rows:
        r["percent"] = 100 * r["median_ms"] / total
    rows.append({"part": "total (synchronized)", "median_ms": total, "percent": 100.0})
    return rows


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
