"""One backend object per device: the same op names and signatures on every backend.

Each family module registers its entry points with ``@implements("gemm", "cpu")``. The engine holds
one ``Backend`` (``device.kernels``) and calls ``kernels.gemm(out, a, b, ...)`` without ever
branching on the device. Backends:

- ``numpy``: the float64-capable NumPy references (slow, obviously correct);
- ``cpu``:   multi-core CPU twins (Numba ``prange``, BLAS);
- ``cuda``:  ``@cuda.jit`` kernels on a GPU, or in Numba's simulator.

Every op exists on all three backends, unless its one registration says why it does not:
``@implements("copy_labels_checked", "cpu", only="host-side ...")``. ``check_registry()`` (run when
``cuda_kernels`` is imported) rejects an op that is missing from a backend without such a reason;
``single_backend_ops()`` lists the declared ones with their reasons.
"""

from __future__ import annotations

from collections.abc import Callable

BACKEND_NAMES = ("numpy", "cpu", "cuda")
_REGISTRY: dict[str, dict[str, Callable]] = {name: {} for name in BACKEND_NAMES}
_ONLY: dict[str, tuple[str, str]] = {}  # op -> (its one backend, why it has only that one)


def implements(op: str, backend: str, only: str | None = None):
    """Register ``fn`` as backend ``backend``'s implementation of ``op``.

    ``only="why"`` declares that ``op`` exists on this backend alone, and why; registering it on a
    second backend is then an error.
    """
    if backend not in _REGISTRY:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKEND_NAMES}")
    if only is not None and not only.strip():
        raise ValueError(f"op {op!r}: only= must say why it exists on {backend!r} alone")

    def register(fn: Callable) -> Callable:
        if op in _REGISTRY[backend]:
            raise ValueError(f"op {op!r} registered twice for backend {backend!r}")
        if op in _ONLY and _ONLY[op][0] != backend:
            raise ValueError(f"op {op!r} is declared {_ONLY[op][0]!r}-only ({_ONLY[op][1]}); "
                             f"cannot register it for {backend!r}")
        if only is not None:
            elsewhere = [name for name in BACKEND_NAMES if op in _REGISTRY[name]]
            if elsewhere:
                raise ValueError(f"op {op!r} declared {backend!r}-only but already registered for {elsewhere}")
            _ONLY[op] = (backend, only)
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
        # Remembered on the instance, so the next lookup skips __getattr__ (it runs on every kernel call;
        # an op is never re-registered, so this cannot go stale)
        self.__dict__[op] = fn
        return fn

    def ops(self) -> list[str]:
        return sorted(_REGISTRY[self.name])

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, {len(_REGISTRY[self.name])} ops)"


def get_backend(name: str) -> Backend:
    """The kernel layer as seen from one backend: "numpy" (float64 references), "cpu" (twins) or "cuda"."""
    return Backend(name)


def all_ops() -> dict[str, list[str]]:
    """{backend: the names of its ops}."""
    return {name: sorted(ops) for name, ops in _REGISTRY.items()}


def single_backend_ops() -> dict[str, tuple[str, str]]:
    """The ops declared to exist on one backend only: ``{op: (backend, why)}``."""
    return dict(sorted(_ONLY.items()))


def registry_problems() -> list[str]:
    """Ops that are missing from some backend without a declared reason (``implements(..., only=...)``)."""
    problems = []
    for op in sorted(set().union(*_REGISTRY.values())):
        on = [name for name in BACKEND_NAMES if op in _REGISTRY[name]]
        if len(on) < len(BACKEND_NAMES) and op not in _ONLY:
            missing = [name for name in BACKEND_NAMES if name not in on]
            problems.append(f"op {op!r} is registered for {on} but not for {missing}: implement it there, or "
                            f"declare it single-backend with implements({op!r}, {on[0]!r}, only='why')")
    return problems


def check_registry() -> None:
    """Raise if an op is missing from a backend without saying why (see ``registry_problems``)."""
    problems = registry_problems()
    if problems:
        raise ValueError("kernel registry: " + "; ".join(problems))
