"""The GEMM ladder on a real GPU (issue #19), one call: every CUDA version of ``gemm`` (numba rungs, the CUDA C twin,
TF32 tensor cores) at 1024^3 and 4096^3 against cuBLAS (PyTorch; TF32 off, and on for the ``*_tf32`` row),
LeNet c2 forward+backward against cuDNN, and the SASS facts of each GEMM kernel (LDS.128, LDG.E.128, FFMA, integer
and 64-bit ops, local memory) from nvdisasm/cuobjdump. Writes one JSON (``--out``) and prints a table last.

    python3 scripts/gemm_ladder_gpu.py --out $OUT/gemm-ladder.json      # scripts/gpu_check.sh step "ladder"
    python3 scripts/gemm_ladder_gpu.py --dry-run     # no GPU: imports the kernel layer, lists every row it would time

Timing: CUDA events around each call, 3 warm-ups (the first compiles), the median of ``--repeat`` timed calls;
inputs random, never zeros; each output checked against a float64 product (||out - ref|| / ||ref||).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

SHAPES = [1024, 4096]
CONV_ALGORITHMS = ("im2col", "implicit_gemm")


def dry_run() -> int:
    """The rows a GPU run would time, from the kernel layer's own version lists (nothing launched)."""
    from cuda_kernels import gemm as G

    for size in SHAPES:
        versions = [v for v in (*G.CUDA_VERSIONS, *G.CUDA_C_VERSIONS) if not (v == "naive" and size > 2048)]
        print(f"would time {size}^3: cuBLAS, cuBLAS tf32, {', '.join(versions)}")
    print(f"would time lenet c2 fwd+bwd b64: {', '.join(CONV_ALGORITHMS)} vs cuDNN")
    print("would read SASS facts of each numba GEMM kernel and of the CUDA C kernels (nvdisasm/cuobjdump)")
    return 0


def timed(fn, repeat: int) -> float:
    from numba import cuda

    for _ in range(3):
        fn()
    cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = cuda.event(), cuda.event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return float(np.median(times))


def sass_facts(text: str) -> dict:
    ops = [line.split(";")[0] for line in text.splitlines() if re.search(r"/\*[0-9a-f]{4}\*/", line)]
    count = lambda pattern: sum(1 for op in ops if re.search(pattern, op))  # noqa: E731
    return {"instructions": len(ops), "FFMA": count(r"\bFFMA\b"), "LDS.128": count(r"\bLDS\.128\b"),
            "LDS (all)": count(r"\bLDS\b"), "LDG.E.128": count(r"\bLDG\.E\.128"), "LDG (all)": count(r"\bLDG\b"),
            "IMAD": count(r"\bIMAD\b"), "64-bit int (.X / .EX / .WIDE)": count(r"\.(X|EX|WIDE)\b"),
            "LDL/STL (local)": count(r"\b(LDL|STL)\b"), "HMMA": count(r"\bHMMA\b"), "BRA": count(r"\bBRA\b")}


def gemm_rows(repeat: int) -> tuple[list, dict]:
    import torch
    from numba import cuda

    from cuda_kernels import gemm as G
    from cuda_kernels import get_backend

    k = get_backend("cuda")
    rows, sass = [], {}
    for size in SHAPES:
        rng = np.random.default_rng(size)
        a = rng.standard_normal((size, size)).astype(np.float32)
        b = rng.standard_normal((size, size)).astype(np.float32)
        ref = a.astype(np.float64) @ b.astype(np.float64)
        A, B, C = cuda.to_device(a), cuda.to_device(b), cuda.device_array((size, size), np.float32)
        flops = 2.0 * size**3
        ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
        peers = {}
        for tf32 in (False, True):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            out = torch.empty_like(ta)
            ms = timed(lambda ta=ta, tb=tb, out=out: torch.matmul(ta, tb, out=out), repeat)
            err = float(np.linalg.norm(out.cpu().numpy() - ref) / np.linalg.norm(ref))
            peers[tf32] = ms
            rows.append({"shape": f"{size}^3", "version": "cuBLAS" + (" tf32" if tf32 else ""), "ms": ms,
                         "tflops": flops / ms / 1e9, "rel_error": err})
        torch.backends.cuda.matmul.allow_tf32 = False
        for version in (*G.CUDA_VERSIONS, *G.CUDA_C_VERSIONS):
            if version == "naive" and size > 2048:
                continue
            try:
                ms = timed(lambda v=version, C=C, A=A, B=B: k.gemm(C, A, B, version=v), repeat)
                err = float(np.linalg.norm(C.copy_to_host() - ref) / np.linalg.norm(ref))
                peer = peers[version.endswith("_tf32")]
                rows.append({"shape": f"{size}^3", "version": version, "ms": ms, "tflops": flops / ms / 1e9,
                             "vs_cublas": peer / ms, "rel_error": err})
            except Exception as error:  # noqa: BLE001 (one failing rung must not cost the others)
                rows.append({"shape": f"{size}^3", "version": version, "error": f"{type(error).__name__}: {error}"})
            print(rows[-1], flush=True)
    for name, kernel in G.__dict__.items():  # SASS of each numba GEMM kernel, compiled for this GPU
        if name.startswith("gemm_") and hasattr(kernel, "compiled"):
            try:
                sass[name] = sass_facts(kernel.compiled.inspect_sass(kernel.compiled.signatures[0]))
            except Exception as error:  # noqa: BLE001 (nvdisasm missing: say so)
                sass[name] = {"error": str(error)[:200]}
    sass.update(cuda_c_sass())
    return rows, sass


def cuda_c_sass() -> dict:
    from numba import cuda

    from cuda_kernels import gemm_cuda_c

    cuobjdump = shutil.which("cuobjdump") or next(iter(Path("/usr/local").glob("cuda*/bin/cuobjdump")), None)
    if not cuobjdump:
        return {"cuda_c": {"error": "cuobjdump not found"}}
    cc = cuda.get_current_device().compute_capability
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp) / "gemm.cubin"
        cubin.write_bytes(gemm_cuda_c.compile_source("cubin", f"sm_{cc[0]}{cc[1]}"))
        text = subprocess.run([str(cuobjdump), "-sass", str(cubin)], capture_output=True, text=True).stdout
    facts = {}
    for part in re.split(r"\n\s*Function : ", text)[1:]:
        facts[part.split()[0]] = sass_facts(part)
    return facts


def conv_rows(repeat: int) -> list:
    """LeNet c2 (6->16 5x5, 14x14, b64) forward+backward: our Conv2D (im2col, implicit_gemm) against cuDNN; each
    of ours with its relative error (dx and dweight against float64) and its speed relative to cuDNN."""
    import torch

    from layers import Conv2D
    from runtime.device import Device

    dev = Device("cuda")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6, 14, 14)).astype(np.float32)
    dy = rng.standard_normal((64, 16, 10, 10)).astype(np.float32)
    rows = []
    X, DY = dev.asarray(x), dev.asarray(dy)
    twin = Conv2D(6, 16, 5, device=Device("numpy"), seed=1)
    twin.forward(x.astype(np.float64))
    dx_ref = twin.backward(dy.astype(np.float64))
    for algorithm in CONV_ALGORITHMS:
        try:
            layer = Conv2D(6, 16, 5, device=dev, seed=1, algorithm=algorithm)

            def ours(layer=layer):
                layer.forward(X)
                return layer.backward(DY)

            ms = timed(ours, repeat)
            dx, dw = dev.to_numpy(ours()), dev.to_numpy(layer.weight.grad)
            error = max(float(np.linalg.norm(dx - dx_ref) / np.linalg.norm(dx_ref)),
                        float(np.linalg.norm(dw - twin.weight.grad) / np.linalg.norm(twin.weight.grad)))
            rows.append({"case": "lenet c2 fwd+bwd b64", "version": algorithm, "ms": ms, "rel_error": error})
        except Exception as error:  # noqa: BLE001 (one algorithm failing must not hide the other's row)
            rows.append({"case": "lenet c2 fwd+bwd b64", "version": algorithm,
                         "error": f"{type(error).__name__}: {error}"})
    torch.backends.cudnn.allow_tf32 = False
    conv = torch.nn.Conv2d(6, 16, 5).cuda()
    tx = torch.from_numpy(x).cuda().requires_grad_(True)
    tdy = torch.from_numpy(dy).cuda()

    def theirs():
        conv(tx).backward(tdy)

    rows.append({"case": "lenet c2 fwd+bwd b64", "version": "cuDNN", "ms": timed(theirs, repeat)})
    for r in rows:
        if "ms" in r and r["version"] != "cuDNN":
            r["vs_cudnn"] = rows[-1]["ms"] / r["ms"]  # issue #19's target: implicit_gemm >= 0.50
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="gemm-ladder.json")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--dry-run", action="store_true", help="no GPU: list the rows a GPU run would time")
    args = parser.parse_args()
    if args.dry_run:
        return dry_run()
    t0 = time.time()
    rows, sass = gemm_rows(args.repeat)
    try:
        conv = conv_rows(args.repeat)
    except Exception as error:  # noqa: BLE001
        conv = [{"error": f"{type(error).__name__}: {error}"}]
    Path(args.out).write_text(json.dumps({"gemm": rows, "conv": conv, "sass": sass,
                                          "seconds": time.time() - t0}, indent=1))
    print(f"\n{'shape':8s} {'version':32s} {'ms':>8s} {'TFLOP/s':>8s} {'vs cuBLAS':>9s} {'rel err':>9s}")
    for r in rows:
        if "error" in r:
            print(f"{r['shape']:8s} {r['version']:32s} {r['error'][:60]}")
        else:
            print(f"{r['shape']:8s} {r['version']:32s} {r['ms']:8.3f} {r['tflops']:8.2f} "
                  f"{r.get('vs_cublas', 1.0):9.2f} {r['rel_error']:9.1e}")
    for r in conv:
        print(r)
    for name, facts in sass.items():
        print(name, facts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
