"""Learning-rate schedules: functions of the step index, attached with ``optimizer.schedule = ...``."""

from __future__ import annotations

import math


def step_lr(base_lr: float, step_size: int, gamma: float = 0.1):
    """lr = base_lr * gamma ** (step // step_size) (PyTorch's StepLR, counted in optimizer steps)."""
    return lambda step: base_lr * gamma ** (step // step_size)


def cosine_lr(base_lr: float, total_steps: int, min_lr: float = 0.0):
    """Cosine annealing from base_lr to min_lr over total_steps (PyTorch's CosineAnnealingLR)."""
    return lambda step: min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * min(step, total_steps) / total_steps)) / 2
