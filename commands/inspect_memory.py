"""``python cli.py inspect --memory KERNEL``: the memory traffic Nsight Compute would count, per source line of
one small sanitized launch of KERNEL in the simulator (no GPU): sectors per request, shared-memory bank ways.

Each kernel that teaches something about memory has an example launch here (``EXAMPLES``), made through the
kernel layer's own launcher, so the grid, block and tile are the project's; the numbers are counted by the
sanitizer (``sanitizer.sanitize``, the ``memory`` tool) while the launch runs."""

from __future__ import annotations

import linecache
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

WIDTH = 100  # every line printed fits


@dataclass
class Example:
    """A small launch that runs ``kernel`` (and maybe helper kernels), and what to look at in its profile."""
    what: str  # the op and its shapes, in words
    launch: Callable  # launch(gpu, rng): calls the kernel layer's op on the cuda backend
    look_at: str  # the lesson of the profile, in a sentence or two


def _gemm(version: str, m: int, n: int, k: int):
    def launch(gpu, rng):
        from numba import cuda

        a = cuda.to_device(rng.standard_normal((m, k)).astype("float32"))
        b = cuda.to_device(rng.standard_normal((k, n)).astype("float32"))
        c = cuda.to_device(rng.standard_normal((m, n)).astype("float32"))
        gpu.gemm(c, a, b, 1.0, 0.0, False, False, None, "none", version=version)
    return launch


def _maxpool(backward: bool):
    def launch(gpu, rng):
        from numba import cuda

        x = rng.standard_normal((1, 2, 9, 9)).astype("float32")
        y, arg = cuda.device_array((1, 2, 4, 4), "float32"), cuda.device_array((1, 2, 4, 4), "int32")
        gpu.maxpool_forward(y, arg, cuda.to_device(x), 3, 2)
        if backward:
            dy = cuda.to_device(rng.standard_normal((1, 2, 4, 4)).astype("float32"))
            gpu.maxpool_backward(cuda.device_array(x.shape, "float32"), dy, arg, 3, 2)
    return launch


def _column_sums(gpu, rng):
    from numba import cuda

    out = cuda.device_array(40, "float32")
    gpu.column_sums(out, cuda.to_device(rng.standard_normal((37, 40)).astype("float32")))


def _softmax_cross_entropy(gpu, rng):
    from numba import cuda

    rows, classes = 8, 10
    logits = cuda.to_device(rng.standard_normal((rows, classes)).astype("float32"))
    labels = cuda.to_device(rng.integers(0, classes, rows).astype("int32"))
    gpu.softmax_cross_entropy_forward(cuda.device_array(1, "float32"), cuda.device_array(rows, "float32"),
                                      cuda.device_array((rows, classes), "float32"), logits, labels)


def _argmax_rows(gpu, rng):
    from numba import cuda

    gpu.argmax_rows(cuda.device_array(8, "int32"), cuda.to_device(rng.standard_normal((8, 40)).astype("float32")))


def _add(gpu, rng):
    from numba import cuda

    x = cuda.to_device(rng.standard_normal(100).astype("float32"))
    gpu.add(cuda.device_array(100, "float32"), x, x)


def _swap_leading_axes(gpu, rng):
    from numba import cuda

    gpu.swap_leading_axes(cuda.device_array((3, 5, 7), "float32"),
                          cuda.to_device(rng.standard_normal((5, 3, 7)).astype("float32")))


GEMM = "C (32x32) = A (32x16) @ B (16x32), no transposes"
GEMM_64 = "C (64x64) = A (64x16) @ B (16x64), no transposes"
EXAMPLES = {
    "gemm_naive": Example(GEMM, _gemm("naive", 32, 32, 16),
                          "every thread reads its row of A and its column of B from global memory, K times: "
                          "compare its global requests with gemm_shared_tiled's at the same shape."),
    "gemm_shared_tiled": Example(GEMM, _gemm("shared_tiled", 32, 32, 16),
                                 "each global element is loaded once per tile into shared memory (16x fewer global "
                                 "requests than naive), then read from shared memory: 1-way, no bank conflicts."),
    "gemm_register_blocked": Example(
        GEMM_64, _gemm("register_blocked", 64, 64, 16),
        "the tiles are padded (SMEM_PAD = 4 floats a row): a warp's stores tile_a[k, r] (k = 0..7, r = 0..3) "
        "fall in banks 4k + r, all distinct (1-way); rows of 64 floats would put every k in bank r (8-way)."),
    "maxpool_forward_kernel": Example("max-pooling 3x3, stride 2, x (1, 2, 9, 9) -> y (1, 2, 4, 4)", _maxpool(False),
                                      "one thread per output: neighbouring lanes read windows 2 apart, across "
                                      "rows, so a warp's loads of x touch many more sectors than 4."),
    "maxpool_backward_kernel": Example("max-pooling backward (3x3, stride 2) of the forward above", _maxpool(True),
                                       "the scattered writes into dx follow each window's argmax."),
    "column_sums_kernel": Example("column sums of x (37, 40)", _column_sums,
                                  "32 columns per block: a warp reads 32 consecutive floats of one row (4 "
                                  "sectors per request), then folds its stripes in shared memory."),
    "softmax_cross_entropy_kernel": Example("softmax cross-entropy forward, logits (8, 10)", _softmax_cross_entropy,
                                            "one row per thread: a warp's lanes read rows 40 bytes apart."),
    "scaled_sum_kernel": Example("the loss's sum of 8 row losses (after softmax cross-entropy)",
                                 _softmax_cross_entropy, "a one-block reduction folded in shared memory."),
    "argmax_rows_kernel": Example("argmax of each row of x (8, 40)", _argmax_rows,
                                  "one row per thread: lanes 160 bytes apart, one sector each per request."),
    "add_kernel": Example("out = x + x, 100 floats", _add,
                          "the ideal: a warp reads 32 consecutive floats, 128 bytes, 4 sectors per request."),
    "swap_leading_axes_kernel": Example("(5, 3, 7) -> (3, 5, 7)", _swap_leading_axes,
                                        "rows of 7 floats moved: requests straddle sector boundaries."),
}

LEGEND = """\
requests   warp instructions: 32 consecutive threads of a block executing the line once (summed)
sect/req   global memory: distinct 32-byte sectors one request touches; 4 is ideal for 32 lanes
           reading 32 consecutive floats (128 bytes), 32 the worst (every lane its own sector);
           fewer than 4 when lanes share an address (a broadcast) or fewer lanes are active
ways       shared memory (32 banks of 4 bytes): the most distinct words one request needs from
           one bank; 1 is ideal (lanes reading the same word are a broadcast), n-way = n passes
conflicts  extra passes over the launch (wavefronts - requests); 0 is ideal"""


def profile_text(kernel: str, seed: int = 0) -> str:
    """The memory profile of ``EXAMPLES[kernel]``'s launch (in this process, which must run the simulator)."""
    import numpy as np

    from cuda_kernels import get_backend
    from sanitizer import sanitize

    example = EXAMPLES[kernel]
    with sanitize(tools="all") as report:
        example.launch(get_backend("cuda"), np.random.default_rng(seed))
    launches = [launch for launch in report.launches if launch.kernel == kernel]
    if not launches:
        return f"inspect --memory: the example launch of {kernel} did not launch it (a bug in its example)"
    rows = report.memory_rows()[kernel]
    first = launches[0]
    count = f"{len(launches)} launches" if len(launches) > 1 else "1 launch"
    findings = [f for launch in launches for f in launch.findings if f.severity != "info"]
    out = [f"memory profile of {kernel}: {example.what}",
           f"{count}, grid {tuple(first.grid)}, block {tuple(first.block)}, in the simulator; sanitizer: "
           f"{len(findings)} error{'s' * (len(findings) != 1)} or warning{'s' * (len(findings) != 1)}"]
    out += [f"  {f.one_line()}"[:WIDTH] for f in findings[:3]]
    files = sorted({row.file for row in rows})
    if files:
        out.append("source: " + ", ".join(_short(f) for f in files))
    header = f"{'line':>5}  {'source':<44} {'space':<6} {'op':<5} {'requests':>8} {'sect/req':>8} {'ways':>4} " \
             f"{'conflicts':>9}"
    out += ["", header, "-" * len(header)]
    for row in rows:
        shared = row.space == "shared"
        source = linecache.getline(row.file, row.line).strip()
        source = source if len(source) <= 44 else source[:43] + "~"
        out.append(f"{row.line:>5}  {source:<44} {row.space:<6} {row.op:<5} {row.requests:>8} "
                   f"{'-' if shared else f'{row.sectors_per_request:.1f}':>8} {row.ways if shared else '-':>4} "
                   f"{row.bank_conflicts if shared else '-':>9}")
    if not rows:
        out.append("(no global or shared access was counted)")
    out += ["", *_wrap(f"look at: {example.look_at}"), "", LEGEND]
    return "\n".join(out)


def _wrap(text: str) -> list[str]:
    import textwrap

    return textwrap.wrap(text, WIDTH, subsequent_indent="         ")


def _short(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def main(kernels: list[str]) -> int:
    """Print the profile of each kernel named (this process runs the simulator); 1 if a name has no example."""
    if not kernels:
        print("inspect --memory: name a kernel; those with an example launch: " + ", ".join(EXAMPLES),
              file=sys.stderr)
        return 1
    status = 0
    for number, kernel in enumerate(kernels):
        if kernel not in EXAMPLES:
            print(_no_example(kernel), file=sys.stderr)
            status = 1
            continue
        if number:
            print()
        print(profile_text(kernel))
    return status


def _no_example(kernel: str) -> str:
    import difflib

    from cuda_kernels import KERNELS

    if kernel in KERNELS:
        return (f"inspect --memory: {kernel} has no example launch yet (kernels with one: "
                f"{', '.join(EXAMPLES)}); `python cli.py sanitize --tool memory SCRIPT` profiles any launch")
    near = difflib.get_close_matches(kernel, list(KERNELS), n=3, cutoff=0.5)
    return (f"inspect --memory: no kernel named {kernel!r}" + (f"; close names: {', '.join(near)}" if near else "")
            + " (`python cli.py inspect --list` shows them all)")


def run(kernels: list[str]) -> int:
    """``inspect --memory``: in this process when the simulator is (or can still be) on, else in a child."""
    from hardware import cuda_probe

    if not cuda_probe.simulator_requested():
        if cuda_probe.numba_imported():  # too late to turn the simulator on here
            env = dict(os.environ, **{cuda_probe.SIMULATOR_VARIABLE: "1"})
            return subprocess.call([sys.executable, "-m", "commands.inspect_memory", *kernels], env=env,
                                   cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        cuda_probe.enable_simulator()
    return main(kernels)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
