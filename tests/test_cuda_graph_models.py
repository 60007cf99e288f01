"""Every model the CLI trains, captured as a CUDA graph and replayed, takes the steps eager training takes.

``fit`` captures the training step by default on a real GPU, so a model whose step cannot be captured would
crash there the first time a student trains it (the char LM did: its (N, T) labels and its Embedding's read-back).
These tests run the capture in the simulator for each of the CLI's ``--model`` choices, built with the same layers
in the same order as ``train`` builds them, at a width the simulator runs in seconds: 20 replayed steps equal 20
eager steps, parameters and losses. A model added to the CLI fails here until it has a small twin below."""

import numpy as np
import pytest

import layers as L
import optim as O
from commands.train import MODEL_CHOICES
from engine import Device, Sequential
from engine.charlm import SequenceCrossEntropy
from engine.cuda_graph import CapturedStep
from engine.models import char_lm, gru_classifier, lstm_classifier, mlp, rnn_classifier
from engine.recipes import build_model, load_data

pytestmark = pytest.mark.gpu

STEPS, BATCH, CLASSES = 20, 2, 3


def small_lenet(dev, conv_algorithm="im2col"):
    """LeNet-5's layers in LeNet-5's order, on 1x8x8 images with two and three channels."""
    return Sequential(L.Conv2D(1, 2, 3, padding=1, device=dev, seed=0, algorithm=conv_algorithm), L.ReLU(),
                      L.MaxPool2D(2), L.Conv2D(2, 3, 3, device=dev, seed=1, algorithm=conv_algorithm), L.ReLU(),
                      L.MaxPool2D(2), L.Flatten(), L.Dense(3, 5, device=dev, seed=2), L.ReLU(),
                      L.Dense(5, 4, device=dev, seed=3), L.ReLU(), L.Dense(4, CLASSES, device=dev, seed=4))


# name -> (small model builder, one input sample's shape, labels per sample: () a class, (T,) one per step)
SMALL = {
    "mlp": (lambda dev: mlp(dev, in_features=6, hidden=5, classes=CLASSES), (6,), ()),
    "lenet": (small_lenet, (1, 8, 8), ()),
    "rnn": (lambda dev: rnn_classifier(dev, input_size=3, hidden=4, classes=CLASSES), (4, 3), ()),
    "lstm": (lambda dev: lstm_classifier(dev, input_size=3, hidden=4, classes=CLASSES), (4, 3), ()),
    "gru": (lambda dev: gru_classifier(dev, input_size=3, hidden=4, classes=CLASSES), (4, 3), ()),
    "charlm": (lambda dev: char_lm(dev, vocab_size=CLASSES + 2, embedding_dim=3, hidden=4), (4,), (4,)),
}
# layers no CLI model uses, in a model of their own
EXTRA = {
    "batchnorm+dropout": (lambda dev: Sequential(
        L.Conv2D(1, 2, 3, padding=1, device=dev, seed=0), L.BatchNorm2D(2, device=dev), L.ReLU(), L.MaxPool2D(2),
        L.Flatten(), L.Dropout(0.3, seed=4), L.Dense(32, CLASSES, device=dev, seed=1)), (1, 8, 8), ()),
    "implicit_gemm_conv": (lambda dev: small_lenet(dev, "implicit_gemm"), (1, 8, 8), ()),
}


@pytest.fixture(scope="module")
def dev():
    return Device("cuda")


def batches(sample_shape, label_shape, vocab, seed=0):
    rng = np.random.default_rng(seed)
    ids = label_shape != ()  # the char LM reads ids and predicts one per time step
    return [((rng.integers(0, vocab, (BATCH, *sample_shape)) if ids
              else rng.standard_normal((BATCH, *sample_shape)).astype(np.float32)),
             rng.integers(0, vocab, (BATCH, *label_shape))) for _ in range(STEPS)]


def run(dev, build, data, captured: bool):
    model = build(dev)
    loss_layer = SequenceCrossEntropy() if isinstance(model.layers[0], L.Embedding) else L.SoftmaxCrossEntropy()
    opt = O.Adam(model.parameters(), lr=0.05)
    if captured:
        step = CapturedStep(model, loss_layer, opt)
        losses = [step.step(xb, yb) for xb, yb in data]
        assert step.replays == STEPS - 1 and len(step.graphs) == 1
    else:
        losses = []
        for xb, yb in data:
            x = dev.asarray(xb.astype(np.float32))  # as fit stages a batch
            losses.append(loss_layer.forward(model.forward(x), yb))
            model.backward(loss_layer.backward())
            opt.step()
    accuracy = loss_layer.take_accuracy() if isinstance(loss_layer, SequenceCrossEntropy) else None
    return dev.to_numpy(model.flat.data).copy(), losses, accuracy


def test_every_cli_model_has_a_small_twin_with_its_layers():
    """The small twins are the CLI's models: the same layer types in the same order as ``train`` builds."""
    assert set(SMALL) == set(MODEL_CHOICES), "give each --model choice a small twin in SMALL"
    cpu = Device("cpu")
    for name, (build, _, _) in SMALL.items():
        dataset = "sonnets" if name == "charlm" else "digits"
        full = build_model(name, cpu, load_data(name, dataset)[0].x[:1])
        assert [type(x) for x in build(cpu).layers] == [type(x) for x in full.layers], name


@pytest.mark.parametrize("name", list(SMALL) + list(EXTRA))
def test_twenty_replayed_steps_equal_twenty_eager_steps(dev, name):
    build, sample_shape, label_shape = {**SMALL, **EXTRA}[name]
    vocab = CLASSES + 2 if name == "charlm" else CLASSES
    data = batches(sample_shape, label_shape, vocab)
    eager_params, eager_losses, eager_accuracy = run(dev, build, data, captured=False)
    graph_params, graph_losses, graph_accuracy = run(dev, build, data, captured=True)
    np.testing.assert_allclose(graph_params, eager_params, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(graph_losses, eager_losses, rtol=1e-5)
    assert graph_accuracy == eager_accuracy  # the char LM's per-character count, replayed steps included


def test_a_captured_char_lm_refuses_an_id_out_of_range_before_the_replay(dev):
    """The graph cannot read ids back: the step checks each batch's ids on the host before its copy."""
    build, sample_shape, label_shape = SMALL["charlm"]
    data = batches(sample_shape, label_shape, CLASSES + 2)
    model = build(dev)
    step = CapturedStep(model, SequenceCrossEntropy(), O.Adam(model.parameters(), lr=0.05))
    step.step(*data[0])
    bad = data[1][0].copy()
    bad[0, 0] = CLASSES + 2
    with pytest.raises(ValueError, match=r"Embedding.forward: ids must lie in \[0, 5\)"):
        step.step(bad, data[1][1])
