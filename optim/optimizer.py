"""The optimizer base: state buffers shaped like the flat parameter buffer, one fused launch per step,
state_dict / load_state_dict, and an optional learning-rate schedule."""

from __future__ import annotations

import math

import numpy as np

from runtime.parameters import FlatParameters

# what PyTorch accepts for each hyper-parameter, [lowest, highest): every one finite
_HYPER_RANGES = {"lr": (0.0, math.inf), "momentum": (0.0, math.inf), "dampening": (-math.inf, math.inf),
                 "weight_decay": (0.0, math.inf), "eps": (0.0, math.inf), "alpha": (0.0, math.inf),
                 "lr_decay": (0.0, math.inf), "beta1": (0.0, 1.0), "beta2": (0.0, 1.0)}
_HYPER_NAMES = {"beta1": "betas[0]", "beta2": "betas[1]"}  # as the constructor's caller wrote them


def check_hyperparameter(owner: str, name: str, value) -> None:
    """One ValueError naming ``owner`` and the argument when ``value`` is not a finite number in PyTorch's range
    (lr, momentum, eps, weight_decay, alpha, lr_decay >= 0; betas in [0, 1))."""
    low, high = _HYPER_RANGES[name]
    shown = _HYPER_NAMES.get(name, name)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: {shown} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{owner}: {shown} must be a finite number, got {value!r}")
    if number < low or number >= high:
        wanted = f"in [{low:g}, {high:g})" if math.isfinite(high) else (
            f">= {low:g}" if math.isfinite(low) else "finite")
        raise ValueError(f"{owner}: {shown} must be {wanted}, got {value!r}")


class Optimizer:
    """The base of every optimizer: ``step()`` updates every parameter in one fused kernel launch.

    ``params`` are moved into one flat buffer (their ``.data``/``.grad`` become slices of it); set
    ``schedule`` to a function of the step index (e.g. ``cosine_lr``) to vary the learning rate.

    What changes from step to step (the scheduled learning rate, Adam's bias corrections, SGD's first-step
    flag) lives in device memory, in ``step_scalars`` (a few float32s the fused kernel reads), never in a
    kernel argument: ``step()`` is ``begin_step()`` (host: count the step, apply the schedule, copy the new
    scalars to the device on its stream) then the launch. While the device is captured into a CUDA graph
    (``engine.cuda_graph``) ``step()`` only launches, and the replay calls ``begin_step()`` before each replay.
    """

    state_names: tuple[str, ...] = ()
    kind = ""  # the kernel layer's name for the update (step_scalars' layout)

    def __init__(self, params, lr: float, **hyper):
        check_hyperparameter(type(self).__name__, "lr", lr)
        for name, value in hyper.items():
            if name in _HYPER_RANGES:
                check_hyperparameter(type(self).__name__, name, value)
        self.flat = FlatParameters(params)
        self.device = self.flat.device
        self.lr = self.base_lr = float(lr)
        self.hyper = hyper
        self.step_count = 0
        self.state = {name: self.device.zeros((self.flat.size,)) for name in self.state_names}
        self.schedule = None
        k = self.device.kernels
        self.step_scalars = self.device.zeros((len(k.step_scalars(self.kind or "sgd", 1.0)),))
        self._scalars_host = np.zeros(self.step_scalars.shape, self.device.float_dtype)  # pageable: see begin_step

    def step(self) -> None:
        """One update of every parameter from its current ``.grad``."""
        if not self.device.capturing:
            self.begin_step()
        self._update(self.device.kernels)

    def begin_step(self) -> None:
        """The host's part of a step: count it, apply the schedule, and copy this step's scalars (learning rate,
        bias corrections) into ``step_scalars`` on the device's stream, ahead of the update that reads them.
        The copy's source is pageable host memory, which the driver stages before the call returns, so the next
        step may rewrite it at once."""
        self.step_count += 1
        if self.schedule is not None:
            self.lr = self.schedule(self.step_count - 1)
        if self.kind:  # a subclass without a kind reads self.lr in its own _update
            self._scalars_host[...] = self.device.kernels.step_scalars(self.kind, self.lr, self.step_count,
                                                                       **self.hyper)
            self.device.copy_from_host(self.step_scalars, self._scalars_host)

    def _update(self, kernels) -> None:
        raise NotImplementedError

    def zero_grad(self) -> None:
        """Not needed with tilegrad's layers (backward overwrites .grad); provided for PyTorch habits."""
        self.device.kernels.fill(self.flat.grad, 0.0)

    def state_dict(self) -> dict:
        """The learning rate, step count, hyper-parameters and state buffers, as host values (for checkpoints)."""
        out = {"lr": self.lr, "base_lr": self.base_lr, "step_count": self.step_count, "hyper": dict(self.hyper)}
        out.update({f"state.{name}": np.array(self.device.to_numpy(buf)) for name, buf in self.state.items()})
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned (shapes checked)."""
        for name, buf in self.state.items():
            value = np.asarray(state[f"state.{name}"])
            if value.shape != tuple(buf.shape):
                raise ValueError(f"{type(self).__name__}.load_state_dict: state '{name}' has shape {value.shape}, "
                                 f"expected {tuple(buf.shape)}")
            self.device.copy(buf, np.ascontiguousarray(value, dtype=self.device.float_dtype))
        self.lr, self.base_lr, self.step_count = float(state["lr"]), float(state["base_lr"]), int(state["step_count"])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.hyper.items())
        return f"{type(self).__name__}(lr={self.lr}, {args})"
