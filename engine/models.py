"""The models the course and the CLI train: an MLP, LeNet-5, an RNN, an LSTM and a GRU reading digits row by row,
and a character-level language model."""

from __future__ import annotations

import layers as L
from runtime.device import Device

from .sequential import Sequential


def mlp(device: Device, in_features: int = 64, hidden: int = 256, classes: int = 10, seed: int = 0) -> Sequential:
    """in -> hidden -> hidden -> classes with ReLU (784-256-256-10 on MNIST)."""
    return Sequential(L.Dense(in_features, hidden, device=device, seed=seed), L.ReLU(),
                      L.Dense(hidden, hidden, device=device, seed=seed + 1), L.ReLU(),
                      L.Dense(hidden, classes, device=device, seed=seed + 2))


def lenet(device: Device, classes: int = 10, seed: int = 0) -> Sequential:
    """LeNet-5 on 28x28 inputs: conv 1->6 5x5 pad 2, pool, conv 6->16 5x5, pool, 400-120-84-classes."""
    return Sequential(L.Conv2D(1, 6, 5, padding=2, device=device, seed=seed), L.ReLU(), L.MaxPool2D(2),
                      L.Conv2D(6, 16, 5, device=device, seed=seed + 1), L.ReLU(), L.MaxPool2D(2), L.Flatten(),
                      L.Dense(16 * 5 * 5, 120, device=device, seed=seed + 2), L.ReLU(),
                      L.Dense(120, 84, device=device, seed=seed + 3), L.ReLU(),
                      L.Dense(84, classes, device=device, seed=seed + 4))


def rnn_classifier(device: Device, input_size: int = 8, hidden: int = 64, classes: int = 10,
                   seed: int = 0) -> Sequential:
    """An Elman RNN over the rows of an image, classifying from its last hidden state."""
    return Sequential(L.RNN(input_size, hidden, device=device, seed=seed), L.LastTimeStep(),
                      L.Dense(hidden, classes, device=device, seed=seed + 1))


def lstm_classifier(device: Device, input_size: int = 8, hidden: int = 64, classes: int = 10,
                    seed: int = 0) -> Sequential:
    """An LSTM over the rows of an image, classifying from its last hidden state."""
    return Sequential(L.LSTM(input_size, hidden, device=device, seed=seed), L.LastTimeStep(),
                      L.Dense(hidden, classes, device=device, seed=seed + 1))


def gru_classifier(device: Device, input_size: int = 8, hidden: int = 64, classes: int = 10,
                   seed: int = 0) -> Sequential:
    """A GRU over the rows of an image, classifying from its last hidden state."""
    return Sequential(L.GRU(input_size, hidden, device=device, seed=seed), L.LastTimeStep(),
                      L.Dense(hidden, classes, device=device, seed=seed + 1))


def char_lm(device: Device, vocab_size: int = 96, embedding_dim: int = 32, hidden: int = 256, cell: str = "lstm",
            seed: int = 0) -> Sequential:
    """A character-level language model: ids (N, T) -> Embedding -> LSTM (or GRU, ``cell="gru"``) -> every time
    step a row (FlattenTime) -> Dense: logits (N*T, vocab_size) for the character after each one. The default
    vocabulary is ``engine.data.CHARS`` (newline and printable ASCII, 96)."""
    cells = {"lstm": L.LSTM, "gru": L.GRU}
    if cell not in cells:
        raise ValueError(f"char_lm: cell must be lstm or gru, got {cell!r}")
    return Sequential(L.Embedding(vocab_size, embedding_dim, device=device, seed=seed),
                      cells[cell](embedding_dim, hidden, device=device, seed=seed + 1), L.FlattenTime(),
                      L.Dense(hidden, vocab_size, device=device, seed=seed + 2))
