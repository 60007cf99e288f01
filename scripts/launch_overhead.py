#!/usr/bin/env python
"""Kernel launch overhead on a GPU (issue "GPU truth 3": <= 8 us per launch with device arrays).

Times N back-to-back launches of (a) a no-op kernel with no arguments, (b) the same with one device
array, (c) tilegrad's real `fill` launcher (validation + launch) and (d) its `adam_step` launcher over a
tiny buffer, all with eager signatures, and reports microseconds per launch (host-side rate with the
queue kept full, then one synchronize). Prints a JSON line; `--launches` sets N.

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launches", type=int, default=20 if SIMULATOR else 20000)
    args = parser.parse_args()
    k = get_backend("cuda")
    small = cuda.to_device(np.zeros(256, np.float32))
    p, m, v, g = (cuda.to_device(np.ones(256, np.float32)) for _ in range(4))
    result = {
        "simulator": SIMULATOR,
        "launches": args.launches,
        "noop_no_args_us": per_launch_us(lambda: noop[1, 32](), args.launches),
        "noop_one_device_array_us": per_launch_us(lambda: noop_one_array[1, 32](small), args.launches),
        "fill_launcher_us": per_launch_us(lambda: k.fill(small, 0.0), args.launches),
        "adam_launcher_us": per_launch_us(lambda: k.adam_step(p, m, v, g, lr=1e-3, step=1), args.launches),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
