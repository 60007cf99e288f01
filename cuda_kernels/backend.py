"""One backend object per device: the same op names and signatures on every backend.

Each family module registers its entry points with ``@implements("gemm", "cpu")``. The engine holds
one ``Backend`` (``device.kernels``) and calls ``kernels.gemm(out, a, b, ...)`` without ever
branching on the device. Backends:

- ``numpy``: the float64-capable NumPy references (slow, obviously correct);
- ``cpu``:   multi-core CPU twins (Numba ``prange``, BLAS);
- ``cuda``:  ``@cuda.jit`` kernels on a GPU, or in Numba's simulator.
"""

from __future__ import annotations

from collections.abc import Callable

BACKEND_NAMES = ("numpy", "cpu", "cuda")
_REGISTRY: dict[str, dict[str, Callable]] = {name: {} for name in BACKEND_NAMES}


def implements(op: str, backend: str):
    """Register ``fn`` as backend ``backend``'s implementation of ``op``."""
    if backend not in _REGISTRY:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKEND_NAMES}")

    def register(fn: Callable) -> Callable:
        if op in _REGISTRY[backend]:
            raise ValueError(f"op {op!r} registered twice for backend {backend!r}")
        _REGISTRY[backend][op] = fn
        return fn

    return register


class Backend:
    """The kernel layer as seen from one device: ``backend.<op>(outputs..., inputs..., sizes...)``."""

    def __init__(self, name: str):
        if name not in _REGISTRY:
            raise ValueError(f"unknown backend {name!r}; expected one of {BACKEND_NAMES}")
        self.name = name

    def __getattr__(self, op: str) -> Callable:
        ops = _REGISTRY[self.__dict__["name"]]
        try:
            fn = ops[op]
        except KeyError:
            raise AttributeError(f"backend {self.name!r} has no op {op!r}; it has {sorted(ops)}") from None
        # Remembered on the instance, so the next lookup skips __getattr__ (~1 us on every kernel call; an op is
        # never re-registered, so this cannot go stale)
        self.__dict__[op] = fn
        return fn

    def ops(self) -> list[str]:
        return sorted(_REGISTRY[self.name])

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, {len(_REGISTRY[self.name])} ops)"


def get_backend(name: str) -> Backend:
    return Backend(name)


def all_ops() -> dict[str, list[str]]:
    return {name: sorted(ops) for name, ops in _REGISTRY.items()}
