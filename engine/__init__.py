"""The engine: devices, graph, training loop, data and checkpoints.

Names are imported lazily (PEP 562) so that ``engine.cuda_probe`` can run before numba is imported:
the CUDA simulator can only be switched on before that.
"""

from importlib import import_module

_EXPORTS = {
    "Device": "engine.device",
    "DeviceUnavailable": "engine.device",
}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
