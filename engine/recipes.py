"""Training recipes: which data view, model and defaults ``cli.py train`` uses for each model, chosen
so that every classifier trains to high accuracy on digits in about a minute or less on two CPU cores, and the
character language model (``charlm``) to well under 3 bits per character on held-out sonnets in a few."""

from __future__ import annotations

from dataclasses import dataclass

import layers as L
import optim as O

from .data import TEXTS, load_digits, load_mnist, load_npz, load_text, read_text_file, text_windows
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


# one sample's shape each classifier reads: its rank, and the exact shape where the model fixes it
SAMPLE_SHAPES = {"mlp": ("(features,)", 1, None), "lenet": ("(1, 28, 28)", 3, (1, 28, 28)),
                 "rnn": ("(time steps, features)", 2, None), "lstm": ("(time steps, features)", 2, None),
                 "gru": ("(time steps, features)", 2, None)}


def _own_data(model: str, dataset: str):
    """``npz:FILE`` (arrays x, y) for a classifier, ``text:FILE`` (a UTF-8 file) for charlm, checked against it."""
    kind, _, path = dataset.partition(":")
    if not path:
        raise ValueError(f"--dataset {dataset}: name the file after the colon, e.g. npz:data.npz")
    if kind == "text":
        if model != "charlm":
            raise ValueError(f"--text trains the character model: add --model charlm (not --model {model})")
        text, window = read_text_file(path), CHAR_LM["seq_len"] + 1
        if len(text) < 10 * window:  # the held-out tenth must hold one window (text_windows' own words are internal)
            raise ValueError(f"--text {path}: {len(text)} characters is too short; the model reads windows of "
                             f"{window} and holds out the last tenth: give at least {10 * window} characters")
        return text_windows(text, seq_len=CHAR_LM["seq_len"], stride=CHAR_LM["stride"], name=path)
    if model == "charlm":
        raise ValueError(f"--model charlm trains on text: give --text FILE (a UTF-8 file), not --dataset {dataset}")
    train, test = load_npz(path)
    what, rank, exact = SAMPLE_SHAPES[model]
    sample = train.x.shape[1:]
    if len(sample) != rank or (exact is not None and sample != exact):
        raise ValueError(f"--dataset {dataset}: x holds samples of shape {sample}, but --model {model} reads {what}"
                         f" samples (x shaped (N, {what[1:-1]}))")
    return train, test


def classes_of(*datasets) -> int:
    """The number of classes labels 0..max make (at least 2): a classifier's output width for its data."""
    return max(2, max(int(ds.y.max()) for ds in datasets) + 1)


def load_data(model: str, dataset: str, data_dir=None):
    """(train, test) shaped for ``model``; for charlm, (train, held-out) windows of a bundled text. Your own
    data: ``npz:FILE`` (arrays x, y; ``engine.data.load_npz``) or, for charlm, ``text:FILE`` (UTF-8)."""
    if dataset.startswith(("npz:", "text:")):
        return _own_data(model, dataset)
    if dataset not in ("digits", "mnist", *TEXTS):
        raise ValueError(f"unknown --dataset {dataset!r}; choose digits, mnist, {', '.join(TEXTS)} or npz:FILE")
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


def build_model(model: str, device, train_x, classes: int = 10):
    """The recipe's model for inputs like ``train_x`` (its sample shape sets the input size), a classifier
    with ``classes`` outputs."""
    if model == "charlm":
        return char_lm(device, embedding_dim=CHAR_LM["embedding_dim"], hidden=CHAR_LM["hidden"],
                       cell=CHAR_LM["cell"])
    if model == "lenet":
        if train_x.shape[1:] != (1, 28, 28):
            raise ValueError(f"lenet expects 1x28x28 images, got {train_x.shape[1:]}")
        return lenet(device, classes=classes)
    if model == "mlp":
        return mlp(device, in_features=train_x.shape[1], classes=classes)
    return RECURRENT[model](device, input_size=train_x.shape[2], classes=classes)


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
