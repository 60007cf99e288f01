#!/usr/bin/env python
"""Kernel launch overhead on a GPU (issue "GPU truth 3": <= 8 us per launch with device arrays).

Times N back-to-back launches of (a) a no-op kernel with no arguments, (b) the same with one device
array, (c) tilegrad's real `fill` launcher (validation + launch) and (d) its `adam_step` launcher over a
tiny buffer, all with eager signatures, and reports microseconds per launch (host-side rate with the
queue kept full, then one synchronize). On a GPU it also times the no-op through each layer of
numba-cuda's launch path (with its low-occupancy warning, configured once, the compiled kernel's own
launch), and counts the launches in one LeNet b256 and one MLP b1024 training step next to the step's
time. Prints a JSON line; `--launches` and `--steps` set the repeats.

In the simulator it only checks that everything runs (the numbers mean nothing there).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from numba import cuda  # noqa: E402

from cuda_kernels import SIMULATOR, get_backend  # noqa: E402


@cuda.jit("void()")
def noop():
    pass


@cuda.jit("void(float32[::1])")
def noop_one_array(x):
    pass


def per_launch_us(launch, n: int) -> float:
    launch()
    cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        launch()
    cuda.synchronize()
    return (time.perf_counter() - t0) / n * 1e6


def per_step(model_name: str, batch: int, steps: int) -> dict:
    """Launches in one training step (forward, backward, Adam) and the step's time, launches timed apart."""
    import layers as L
    import optim as O
    from cuda_kernels import launch
    from engine.models import lenet, mlp
    from runtime.device import Device

    dev = Device("cuda")
    model = lenet(dev) if model_name == "lenet" else mlp(dev, in_features=784)
    ce, opt = L.SoftmaxCrossEntropy(), O.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = dev.asarray(rng.random((batch, 1, 28, 28) if model_name == "lenet" else (batch, 784)).astype(np.float32))
    y = rng.integers(0, 10, batch)

    def step():
        ce.forward(model.forward(x), y)
        model.backward(ce.backward())
        opt.step()

    if not SIMULATOR:  # compile and plan buffers before counting (the simulator has nothing to warm)
        step()
        cuda.synchronize()
    counted = []
    original = launch.GpuKernel.__getitem__

    def counting(self, config):
        counted.append(self.name)
        return original(self, config)

    launch.GpuKernel.__getitem__ = counting
    try:
        step()
    finally:
        launch.GpuKernel.__getitem__ = original
    cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    cuda.synchronize()
    return {"launches": len(counted), "ms_per_step": (time.perf_counter() - t0) / steps * 1e3 if steps else None,
            "by_kernel": {name: counted.count(name) for name in sorted(set(counted))}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launches", type=int, default=20 if SIMULATOR else 20000)
    parser.add_argument("--steps", type=int, default=0 if SIMULATOR else 50, help="timed steps (0: count only)")
    args = parser.parse_args()
    k = get_backend("cuda")
    small = cuda.to_device(np.zeros(256, np.float32))
    p, m, v, g = (cuda.to_device(np.ones(256, np.float32)) for _ in range(4))
    result = {"simulator": SIMULATOR, "launches": args.launches}
    if not SIMULATOR:  # the ways into a launch, each skipping one more layer of numba-cuda's launch path
        from numba.cuda.core import config as cuda_config

        warned = cuda_config.CUDA_LOW_OCCUPANCY_WARNINGS
        cuda_config.CUDA_LOW_OCCUPANCY_WARNINGS = 1
        result["noop_with_occupancy_warning_us"] = per_launch_us(lambda: noop[1, 32](), args.launches)
        cuda_config.CUDA_LOW_OCCUPANCY_WARNINGS = warned
        configured = noop[1, 32]
        result["noop_configured_once_us"] = per_launch_us(lambda: configured(), args.launches)
        kernel = next(iter(noop.overloads.values()))
        grid, block, stream = configured.griddim, configured.blockdim, configured.stream
        result["noop_kernel_launch_direct_us"] = per_launch_us(lambda: kernel.launch((), grid, block, stream, 0),
                                                               args.launches)
        one = next(iter(noop_one_array.overloads.values()))
        result["noop_one_array_kernel_launch_direct_us"] = per_launch_us(
            lambda: one.launch((small,), grid, block, stream, 0), args.launches)
    result.update({
        "noop_no_args_us": per_launch_us(lambda: noop[1, 32](), args.launches),
        "noop_one_device_array_us": per_launch_us(lambda: noop_one_array[1, 32](small), args.launches),
        "fill_launcher_us": per_launch_us(lambda: k.fill(small, 0.0), args.launches),
        "adam_launcher_us": per_launch_us(lambda: k.adam_step(p, m, v, g, lr=1e-3, step=1), args.launches),
    })
    for name, model, batch in (("lenet_b256", "lenet", 256), ("mlp_b1024", "mlp", 1024)):
        # the simulator runs every GPU thread in Python: a batch of 2 has the same launches
        result[f"step_{name}"] = per_step(model, 2 if SIMULATOR else batch, args.steps)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
