"""Optimizers (``import optim as O``): PyTorch's formulas, one fused kernel launch per step."""

from .algorithms import SGD, Adagrad, Adam, AdamW, RMSprop
from .optimizer import Optimizer
from .schedules import cosine_lr, step_lr

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "step_lr", "cosine_lr"]
