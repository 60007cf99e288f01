"""The engine: devices, graph, training loop, data and checkpoints.

Names are imported lazily (PEP 562) so that ``hardware.cuda_probe`` can run before numba is imported:
the CUDA simulator can only be switched on before that.
"""

from importlib import import_module

_EXPORTS = {
    "Device": "runtime.device",
    "DeviceUnavailable": "runtime.device",
    "Sequential": "engine.sequential",
    "Graph": "engine.graph",
    "Add": "engine.graph",
    "fit": "engine.training",
    "evaluate": "engine.training",
    "save": "engine.checkpoint",
    "load": "engine.checkpoint",
    "gradcheck": "engine.gradient_check",
    "load_digits": "engine.data",
    "load_mnist": "engine.data",
    "read_idx": "engine.data",
    "batches": "engine.data",
}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
