"""Training recipes: which data view, model and defaults ``cli.py train`` uses for each model, chosen
so that every classifier trains to high accuracy on digits in about a minute or less on two CPU cores, and the
character language model (``charlm``) to well under 3 bits per character on held-out sonnets in a few."""

from __future__ import annotations

from dataclasses import dataclass

import layers as L
import optim as O

from .data import TEXTS, load_digits, load_mnist, load_text
from .models import char_lm, gru_classifier, lenet, lstm_classifier, mlp, rnn_classifier


@dataclass(frozen=True)
class Recipe:
    view: str  # the load_digits view ("text": windows of a bundled text, for charlm)
    epochs: int
    batch_size: int
    lr: float  # for Adam; other optimizers use their own default below
    dataset: str = "digits"  # the --dataset it trains on when none is given
    clip_grad: float | None = None  # train --clip-grad's default (docs/benchmarks.md: gradient clipping)


RECIPES = {
    "mlp": Recipe("flat", 20, 32, 1e-3),
    "lenet": Recipe("image28", 10, 32, 2e-3),
    "rnn": Recipe("sequence", 15, 32, 5e-3),
    "lstm": Recipe("sequence", 15, 32, 1e-2),
    "gru": Recipe("sequence", 15, 32, 1e-2),
    "charlm": Recipe("text", 20, 32, 5e-3, dataset="sonnets"),
}
RECURRENT = {"rnn": rnn_classifier, "lstm": lstm_classifier, "gru": gru_classifier}
# the character model: windows of 64 characters, a new one every 16 (each character in 4 contexts an epoch)
# (hidden 128: 2.54 bits per character held out; 192 and 256 reach the same, slower, and then overfit 38 KB of text)
CHAR_LM = {"seq_len": 64, "stride": 16, "embedding_dim": 32, "hidden": 128, "cell": "lstm"}
OPTIMIZER_LR = {"sgd": 0.05, "momentum": 0.02, "adagrad": 0.02, "rmsprop": 1e-3}
OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw")


def load_data(model: str, dataset: str, data_dir=None):
    """(train, test) shaped for ``model``; for charlm, (train, held-out) windows of a bundled text."""
    if model == "charlm" or dataset in TEXTS:
        if model != "charlm":
            raise ValueError(f"--dataset {dataset} is a text: only --model charlm trains on it")
        if dataset not in TEXTS:
            raise ValueError(f"--model charlm trains on a bundled text ({', '.join(TEXTS)}), not --dataset {dataset}")
        return load_text(dataset, seq_len=CHAR_LM["seq_len"], stride=CHAR_LM["stride"])
    if dataset == "digits":
        return load_digits(RECIPES[model].view)
    if data_dir is None:
        raise ValueError("--dataset mnist needs --data-dir DIR holding the four MNIST IDX files")
    train, test = load_mnist(data_dir)
    for ds in (train, test):
        n = len(ds)
        if model == "mlp":
            ds.x = ds.x.reshape(n, -1)
        elif model in RECURRENT:
            ds.x = ds.x.reshape(n, 28, 28)
    return train, test


def build_model(model: str, device, train_x):
    """The recipe's model for inputs like ``train_x`` (its sample shape sets the input size)."""
    if model == "charlm":
        return char_lm(device, embedding_dim=CHAR_LM["embedding_dim"], hidden=CHAR_LM["hidden"],
                       cell=CHAR_LM["cell"])
    if model == "lenet":
        if train_x.shape[1:] != (1, 28, 28):
            raise ValueError(f"lenet expects 1x28x28 images, got {train_x.shape[1:]}")
        return lenet(device)
    if model == "mlp":
        return mlp(device, in_features=train_x.shape[1])
    return RECURRENT[model](device, input_size=train_x.shape[2])


def build_training(model_name: str, model, test_set):
    """(loss layer, the data ``fit`` evaluates on each epoch, extra ``fit`` callbacks) for the recipe: softmax
    cross-entropy and the test split for the classifiers; for charlm the per-character loss, and a callback
    that adds the held-out bits per character to each epoch's record (``fit``'s evaluation is per sample)."""
    if model_name == "charlm":
        from .charlm import HeldOutBitsPerChar, SequenceCrossEntropy

        loss_layer = SequenceCrossEntropy()
        return loss_layer, None, [HeldOutBitsPerChar(model, loss_layer, test_set)]
    return L.SoftmaxCrossEntropy(), test_set, []


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
