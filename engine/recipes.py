"""Training recipes: which data view, model and defaults ``cli.py train`` uses for each model, chosen
so that every model trains to high accuracy on digits in well under a minute on two CPU cores."""

from __future__ import annotations

from dataclasses import dataclass

import optim as O

from .data import load_digits, load_mnist
from .models import lenet, mlp, rnn_classifier


@dataclass(frozen=True)
class Recipe:
    view: str  # the load_digits view
    epochs: int
    batch_size: int
    lr: float  # for Adam; other optimizers use their own default below


RECIPES = {
    "mlp": Recipe("flat", 20, 32, 1e-3),
    "lenet": Recipe("image28", 10, 32, 2e-3),
    "rnn": Recipe("sequence", 15, 32, 5e-3),
}
OPTIMIZER_LR = {"sgd": 0.05, "momentum": 0.02, "adagrad": 0.02, "rmsprop": 1e-3}
OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw")


def load_data(model: str, dataset: str, data_dir=None):
    """(train, test) shaped for ``model``."""
    if dataset == "digits":
        return load_digits(RECIPES[model].view)
    if data_dir is None:
        raise ValueError("--dataset mnist needs --data-dir DIR holding the four MNIST IDX files")
    train, test = load_mnist(data_dir)
    for ds in (train, test):
        n = len(ds)
        if model == "mlp":
            ds.x = ds.x.reshape(n, -1)
        elif model == "rnn":
            ds.x = ds.x.reshape(n, 28, 28)
    return train, test


def build_model(model: str, device, train_x):
    if model == "lenet":
        if train_x.shape[1:] != (1, 28, 28):
            raise ValueError(f"lenet expects 1x28x28 images, got {train_x.shape[1:]}")
        return lenet(device)
    if model == "mlp":
        return mlp(device, in_features=train_x.shape[1])
    return rnn_classifier(device, input_size=train_x.shape[2])


def build_optimizer(name: str, params, lr: float | None, model: str):
    lr = lr if lr is not None else OPTIMIZER_LR.get(name, RECIPES[model].lr)
    if name == "sgd":
        return O.SGD(params, lr)
    if name == "momentum":
        return O.SGD(params, lr, momentum=0.9)
    if name == "adagrad":
        return O.Adagrad(params, lr)
    if name == "rmsprop":
        return O.RMSprop(params, lr)
    if name == "adam":
        return O.Adam(params, lr)
    if name == "adamw":
        return O.AdamW(params, lr)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
