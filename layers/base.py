"""The layer protocol every layer follows (``Parameter`` lives in the runtime, below the layers).

A layer's ``forward(x)`` takes and returns arrays on its device and saves what ``backward`` needs;
``backward(dy)`` returns dx and overwrites its parameters' ``.grad``. Buffers (outputs, workspaces,
gradients) are allocated at the first call for a batch shape and reused while the shape stays the
same, so a steady-state training step allocates nothing.
"""

from __future__ import annotations

import contextlib
import functools
import math

import numpy as np

from runtime.device import Device, device_of
from runtime.parameters import Parameter

_FINITE_CHECK = [False]  # anomaly mode: on, every forward output and backward gradient is checked
_NOT_RUN = object()


@contextlib.contextmanager
def check_finite(enabled: bool = True):
    """Within this block, the first layer whose forward output or backward gradient holds a NaN or an inf
    raises ``FloatingPointError`` naming itself (PyTorch's anomaly mode; each check copies to the host)."""
    before, _FINITE_CHECK[0] = _FINITE_CHECK[0], bool(enabled)
    try:
        yield
    finally:
        _FINITE_CHECK[0] = before


def positive_int(owner: str, name: str, value) -> int:
    """``value`` as an int, or one ValueError naming the argument when it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _check_array_argument(layer, method: str, value, what: str) -> None:
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        raise TypeError(f"{type(layer).__name__}.{method}: expected {what} as a NumPy or CUDA device array "
                        f"(move data with device.asarray), got {type(value).__name__}")


def _check_finite_values(layer, method: str, what: str, value) -> None:
    if value is None or not hasattr(value, "shape"):
        return
    host = np.asarray(value.copy_to_host() if hasattr(value, "copy_to_host") else value)
    bad = ~np.isfinite(host)
    if bad.any():
        raise FloatingPointError(f"{type(layer).__name__}.{method} produced {int(np.isnan(host).sum())} NaN and "
                                 f"{int(np.isinf(host).sum())} inf values in its {what} (shape {host.shape})")


def _guard_forward(forward):
    """Checks around every layer's forward: an array comes in; the output's shape is kept for backward."""
    @functools.wraps(forward)
    def checked_forward(self, *args, **kwargs):
        # on every step of every layer: attribute lookups only, the messages are built on failure
        if args and getattr(args[0], "shape", None) is None:
            _check_array_argument(self, "forward", args[0], "its input")
        out = forward(self, *args, **kwargs)
        self._out_shape = getattr(out, "shape", None)
        if _FINITE_CHECK[0]:
            _check_finite_values(self, "forward", "output", out)
        return out
    checked_forward.guarded = True
    return checked_forward


def _guard_backward(backward):
    """Checks around every layer's backward: forward ran first, and dy has the shape forward returned."""
    @functools.wraps(backward)
    def checked_backward(self, *args, **kwargs):
        out_shape = getattr(self, "_out_shape", _NOT_RUN)
        if out_shape is _NOT_RUN:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward: run forward on a batch first")
        dy = args[0] if args else kwargs.get("dy")
        if out_shape is not None and dy is not None and not isinstance(dy, (int, float)):
            dy_shape = getattr(dy, "shape", None)
            if dy_shape is None:
                _check_array_argument(self, "backward", dy, "dy")
            if tuple(dy_shape) != tuple(out_shape):
                raise ValueError(f"{type(self).__name__}.backward: expected dy of shape {tuple(out_shape)} (the "
                                 f"shape forward returned), got {tuple(dy_shape)}")
        grads = backward(self, *args, **kwargs)
        if _FINITE_CHECK[0]:
            for i, g in enumerate(grads if isinstance(grads, tuple) else (grads,)):
                _check_finite_values(self, "backward", f"gradient for input {i}", g)
        return grads
    checked_backward.guarded = True
    return checked_backward


def uniform_init(rng: np.random.Generator, shape, fan_in: int) -> np.ndarray:
    """PyTorch's default for Linear/Conv/RNN: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape)


class Layer:
    """Base class: parameters, train/eval mode, per-shape buffers."""

    device: Device | None = None

    def __init_subclass__(cls, **kwargs):
        """Every layer's own forward and backward get the same argument checks (once, however deep)."""
        super().__init_subclass__(**kwargs)
        for name, guard in (("forward", _guard_forward), ("backward", _guard_backward)):
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "guarded", False):
                setattr(cls, name, guard(method))

    def __init__(self):
        self.training = True
        self.needs_input_grad = True  # Sequential turns it off for its first layer: no dx for the data
        self._buffers: dict[str, object] = {}
        self._buffer_devices: dict[str, str] = {}  # the device kind each buffer was made for

    # -- the protocol --------------------------------------------------------------------------------
    def forward(self, x):
        """The layer's output for the batch ``x`` (an array on its device); saves what backward needs."""
        raise NotImplementedError

    def backward(self, dy):
        """dx for the gradient ``dy`` of the last forward's output; overwrites the parameters' ``.grad``.
        Returns None where no input gradient is needed (the first layer of a model)."""
        raise NotImplementedError

    def parameters(self) -> list[Parameter]:
        """The trainable parameters, in a fixed order (checkpoints and optimizers rely on it)."""
        return []

    def config(self) -> dict:
        """Constructor arguments, for checkpoints (the architecture is rebuilt from them)."""
        return {}

    def state_arrays(self) -> dict:
        """Arrays that are not parameters but belong in a checkpoint (e.g. running statistics)."""
        return {}

    def random_state(self) -> int | None:
        """Where this layer's random stream stands (None: it draws no random numbers); saved in checkpoints."""
        return None

    def set_random_state(self, state: int) -> None:
        """Continue the random stream from ``state`` (what ``random_state`` returned); no-op without one."""

    def train(self):
        """Training mode (dropout drops, batch norm uses batch statistics); returns the layer."""
        self.training = True
        return self

    def eval(self):
        """Evaluation mode (dropout is the identity, batch norm uses running statistics); returns the layer."""
        self.training = False
        return self

    def __call__(self, x):
        return self.forward(x)

    # -- helpers -------------------------------------------------------------------------------------
    def device_for(self, x) -> Device:
        """A layer with parameters computes on its own device; a parameter-free one on its input's."""
        if self.device is not None:
            self.device.check_owns(f"{type(self).__name__}.forward", x)
            return self.device
        return device_of(x)

    def _buffer(self, device: Device, name: str, shape, dtype=None):
        """A buffer reused while its shape stays the same (the memory plan)."""
        buf = self._buffers.get(name)
        # Fast path, every steady-state call (a few times cheaper than the checks below): the same device
        # kind as last time, and the same shape and dtype.
        if buf is not None and self._buffer_devices.get(name) == device.name and buf.shape == shape \
                and buf.dtype == (device.float_dtype if dtype is None else dtype):
            return buf
        shape = tuple(int(s) for s in shape)
        dtype = device.float_dtype if dtype is None else np.dtype(dtype)
        if buf is None or tuple(buf.shape) != shape or buf.dtype != dtype or not device.owns(buf):
            buf = device.empty(shape, dtype)
            self._buffers[name] = buf
        self._buffer_devices[name] = device.name
        return buf

    def _expect(self, x, ndim: int, what: str, fixed: dict | None = None):
        """One clear error for an input of the wrong rank or size (``fixed`` maps axis -> size), or, for a layer
        with a device, of another dtype than its floats (named here, not by the kernel underneath)."""
        if len(x.shape) != ndim or any(x.shape[axis] != size for axis, size in (fixed or {}).items()):
            raise ValueError(f"{type(self).__name__}.forward: expected {what}, got shape {tuple(x.shape)}")
        if self.device is not None and x.dtype != self.device.float_dtype:  # a comparison; the message on failure
            raise TypeError(f"{type(self).__name__}.forward: expected {self.device.float_dtype} input, got "
                            f"{x.dtype} (convert it with x.astype(np.{self.device.float_dtype}))")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"
