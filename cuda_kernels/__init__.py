"""The kernel layer: C-style, stateless ops with a NumPy reference, a CPU twin and a CUDA kernel each.

``get_backend("numpy" | "cpu" | "cuda")`` returns the object the engine calls; every op has the same
name and signature on every backend (outputs first, then inputs, weights, sizes, hyper-parameters;
the caller allocates every buffer). Families, one file each, read top to bottom: napkin math,
NumPy reference, CPU twin, GPU kernels from naive to fast, launcher.
"""

from hardware.cuda_probe import ensure_numba_cache_dir

from . import numpy_compat  # noqa: F401  (before numba-cuda compiles anything: NumPy 2.5 removed an alias it uses)

ensure_numba_cache_dir()

from . import batchnorm, ceilings, conv, conv_image_gemm, elementwise, gemm, maxpool, optimizers, reductions, rnn  # noqa: E402,F401  (importing a family registers its ops)
from .backend import Backend, all_ops, get_backend  # noqa: E402
from .launch import KERNELS, SIMULATOR  # noqa: E402
from .threads import configure_cpu_threads  # noqa: E402

configure_cpu_threads()

__all__ = ["Backend", "get_backend", "all_ops", "KERNELS", "SIMULATOR"]
