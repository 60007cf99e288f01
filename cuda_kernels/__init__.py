"""The kernel layer: C-style, stateless ops with a NumPy reference, a CPU twin and a CUDA kernel each.

``get_backend("numpy" | "cpu" | "cuda")`` returns the object the engine calls; every op has the same
name and signature on every backend (outputs first, then inputs, weights, sizes, hyper-parameters;
the caller allocates every buffer), and an op on one backend only says why in its registration
(``single_backend_ops()``). Families, one file each, read top to bottom: the docstring's napkin math
and versions, then the sections Reference, CPU twin, GPU kernels (naive to fast), Launchers.
"""

from hardware.cpu_threads import apply_for_this_process
from hardware.cuda_probe import ensure_numba_cache_dir

apply_for_this_process()  # before Numba's pool starts: a passive wait, OpenMP first (hardware/cpu_threads.py)

from . import numpy_compat  # noqa: E402,F401  (before numba-cuda compiles anything: NumPy 2.5 removed an alias it uses)

ensure_numba_cache_dir()

# importing a family registers its ops
from . import (  # noqa: E402,F401
    batchnorm,
    ceilings,
    conv,
    conv_image_gemm,
    conv_implicit_gemm,
    elementwise,
    embedding,
    gemm,
    gru,
    layernorm,
    lstm,
    maxpool,
    optimizers,
    reductions,
    rnn,
)
from .backend import Backend, all_ops, check_registry, get_backend, single_backend_ops  # noqa: E402
from .launch import KERNELS, SIMULATOR  # noqa: E402
from .threads import configure_cpu_threads  # noqa: E402

check_registry()  # every op on every backend, or a declared reason why not
configure_cpu_threads()

__all__ = ["Backend", "get_backend", "all_ops", "single_backend_ops", "KERNELS", "SIMULATOR"]
