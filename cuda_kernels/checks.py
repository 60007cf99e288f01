"""Validation at the Python boundary: one clear ValueError/TypeError naming the argument.

Every kernel-layer entry point checks its arguments before launching anything, so a wrong shape,
dtype, memory layout or device is reported in words instead of becoming a silent wrong answer or an
out-of-bounds write on the GPU.
"""

from __future__ import annotations

import numpy as np

from .launch import is_device_array

FLOAT = np.dtype(np.float32)
INDEX = np.dtype(np.int32)


def _describe(x) -> str:
    return f"shape {tuple(x.shape)} {np.dtype(x.dtype).name}"


def check_array(op: str, name: str, x, backend: str, shape=None, dtype=FLOAT, ndim=None):
    """Check one array argument of ``op`` for ``backend``; returns ``x.shape``.

    ``shape`` may contain ``None`` for a free dimension; ``dtype=None`` accepts any float dtype
    (the NumPy reference backend computes in whatever float precision it is given).
    """
    # Fast path (most calls, and this check runs on every kernel call): a valid C-contiguous float32 NumPy
    # array. Anything else takes the slow path below, which finds what is wrong and names it.
    if type(x) is np.ndarray and backend != "cuda" and dtype is FLOAT and x.dtype is FLOAT \
            and x.flags.c_contiguous:
        got = x.shape
        if (ndim is None or len(got) == ndim) and (shape is None or got == shape):
            return got
    on_gpu = is_device_array(x)
    if backend == "cuda" and not on_gpu:
        raise TypeError(f"{op}: argument '{name}' must be a CUDA device array (device.asarray), got {type(x).__name__}")
    if backend != "cuda" and not isinstance(x, np.ndarray):
        where = "a CUDA device array" if on_gpu else type(x).__name__
        raise TypeError(f"{op}: argument '{name}' must be a NumPy array on the {backend} backend, got {where}")
    if dtype is None:
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"{op}: argument '{name}' expects a float array, got {_describe(x)}")
    elif np.dtype(x.dtype) != np.dtype(dtype):
        raise TypeError(f"{op}: argument '{name}' expects dtype {np.dtype(dtype).name}, got {_describe(x)}")
    if ndim is not None and len(x.shape) != ndim:
        raise ValueError(f"{op}: argument '{name}' expects a {ndim}-D array, got {_describe(x)}")
    if shape is not None:
        shape = tuple(shape)
        if len(x.shape) != len(shape) or any(e is not None and e != g for e, g in zip(shape, x.shape)):
            dims = ", ".join("*" if e is None else str(e) for e in shape)
            expected = f"({dims},)" if len(shape) == 1 else f"({dims})"
            raise ValueError(f"{op}: argument '{name}' expects shape {expected}, got {_describe(x)}")
    contiguous = x.is_c_contiguous() if on_gpu else x.flags.c_contiguous
    if not contiguous:
        raise ValueError(f"{op}: argument '{name}' must be C-contiguous, got a strided view with {_describe(x)}")
    return tuple(x.shape)


def check_dtype_family(op: str, backend: str, **arrays) -> None:
    """The NumPy backend may run in float64; all float arguments of one call must then agree."""
    if backend != "numpy":
        return
    dtypes = {name: np.dtype(a.dtype) for name, a in arrays.items() if np.issubdtype(a.dtype, np.floating)}
    if len(set(dtypes.values())) > 1:
        raise TypeError(f"{op}: float arguments must share one dtype, got {dtypes}")


def check_positive(op: str, name: str, value: int) -> int:
    if int(value) != value or value < 1:
        raise ValueError(f"{op}: argument '{name}' must be a positive integer, got {value!r}")
    return int(value)


def check_in(op: str, name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{op}: argument '{name}' must be one of {list(allowed)}, got {value!r}")


def float_dtype(backend: str):
    """The float dtype a backend computes in for its checks: float32, or any float for numpy."""
    return None if backend == "numpy" else FLOAT
