"""The engine's promise on digits: LeNet >= 97 %, the row-reading RNN >= 90 % and the LSTM and GRU >= 95 % test
accuracy on CPU, each in well under a minute on 2 cores (seeded, so the numbers repeat)."""

import pytest

import layers as L
import optim as O
from engine import Device, fit, load_digits
from engine.models import gru_classifier, lenet, lstm_classifier, rnn_classifier
from engine.recipes import RECIPES


def train(build, view, lr, epochs, batch_size=32):
    train_set, test_set = load_digits(view)
    model = build(Device("cpu"))
    opt = O.Adam(model.parameters(), lr=lr)
    opt.schedule = O.cosine_lr(lr, epochs * -(-len(train_set) // batch_size))
    return fit(model, L.SoftmaxCrossEntropy(), opt, train_set, epochs=epochs, batch_size=batch_size,
               eval_data=test_set)


@pytest.mark.slow
def test_lenet_on_digits_reaches_97_percent():
    history = train(lenet, "image28", 2e-3, 10)
    assert history[-1]["test_accuracy"] >= 0.97, history[-1]


@pytest.mark.slow
def test_rnn_reading_rows_reaches_90_percent():
    history = train(rnn_classifier, "sequence", 5e-3, 15)
    assert history[-1]["test_accuracy"] >= 0.90, history[-1]


@pytest.mark.slow
@pytest.mark.parametrize("name, build", [("lstm", lstm_classifier), ("gru", gru_classifier)])
def test_lstm_and_gru_reading_rows_reach_95_percent_with_their_recipes(name, build):
    recipe = RECIPES[name]  # what `cli.py train --model lstm|gru` runs: a few seconds on 2 cores
    history = train(build, recipe.view, recipe.lr, recipe.epochs, recipe.batch_size)
    assert history[-1]["test_accuracy"] >= 0.95, history[-1]
