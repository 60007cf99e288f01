"""Learning-rate schedules: functions of the step index, attached with ``optimizer.schedule = ...``."""

from __future__ import annotations

import math
from numbers import Integral, Real


def step_lr(base_lr: float, step_size: int, gamma: float = 0.1):
    """lr = base_lr * gamma ** (step // step_size) (PyTorch's StepLR, counted in optimizer steps)."""
    _check("step_lr", base_lr=base_lr, gamma=gamma)
    _check_steps("step_lr", "step_size", step_size)
    return lambda step: base_lr * gamma ** (step // step_size)


def cosine_lr(base_lr: float, total_steps: int, min_lr: float = 0.0):
    """Cosine annealing from base_lr to min_lr over total_steps (PyTorch's CosineAnnealingLR)."""
    _check("cosine_lr", base_lr=base_lr, min_lr=min_lr)
    _check_steps("cosine_lr", "total_steps", total_steps)
    return lambda step: min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * min(step, total_steps) / total_steps)) / 2


def _check(owner: str, **values) -> None:
    """Rates and factors are finite and >= 0, or one ValueError naming the argument (a NaN lr would surface
    mid-epoch as a diverged loss)."""
    for name, value in values.items():
        if not (isinstance(value, Real) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value!r}")


def _check_steps(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
