"""How much slower a launch runs under the sanitizer than in the plain simulator (issue 26, item 7).

    PYTHONPATH=. python scripts/sanitizer_overhead.py [--n 64] [--repeats 1]

Times the project's shared-memory tiled GEMM (``gemm_shared_tiled``: 16x16 tiles, 16x16 threads per block)
on an n x n x n problem, first in Numba's plain CUDA simulator, then under ``sanitize(tools="all")``, in
one process, and prints both wall times and their ratio (the sanitized result is also checked against
NumPy and must come out free of findings).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ["NUMBA_ENABLE_CUDASIM"] = "1"  # before numba is imported
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from numba import cuda  # noqa: E402

from cuda_kernels import gemm  # noqa: E402
from sanitizer import sanitize  # noqa: E402


def launch(n: int) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    c = cuda.device_array((n, n), np.float32)
    bias = cuda.to_device(np.zeros(1, np.float32))
    blocks = (n + gemm.TILE - 1) // gemm.TILE
    kernel = gemm.gemm_shared_tiled.compiled[(blocks, blocks), (gemm.TILE, gemm.TILE)]
    start = time.perf_counter()
    kernel(c, cuda.to_device(a), cuda.to_device(b), np.float32(1), np.float32(0), 0, 0, bias, 0, 0)
    seconds = time.perf_counter() - start
    np.testing.assert_allclose(c.copy_to_host(), a @ b, rtol=1e-4, atol=1e-3)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=64, help="matrix size (default 64: 16 blocks of 256 threads)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each, the best kept (default 1)")
    args = parser.parse_args()
    plain = min(launch(args.n) for _ in range(args.repeats))
    sanitized = []
    for _ in range(args.repeats):
        with sanitize(tools="all") as report:
            sanitized.append(launch(args.n))
    watched = min(sanitized)
    print(f"gemm_shared_tiled {args.n}x{args.n}x{args.n}, 16x16 blocks: plain simulator {plain:.2f} s, "
          f"sanitize(tools='all') {watched:.2f} s, ratio {watched / plain:.2f}x")
    print(f"sanitizer verdict: {report.summary()}")
    rows = report.memory_rows().get("gemm_shared_tiled", [])
    for row in rows:
        print(f"  line {row.line:4} {row.space:6} {row.op:5} requests {row.requests:6}  "
              + (f"ways {row.ways}, bank conflicts {row.bank_conflicts}" if row.space == "shared"
                 else f"sectors/request {row.sectors_per_request:.1f}"))
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
