"""engine.state_dict: a tilegrad model exported under PyTorch's names and layouts, round-tripped through
load_state_dict, and (with torch installed) loaded strictly into the equivalent torch model: same outputs."""

import numpy as np
import pytest

import layers as L
from engine import Add, Device, Graph, Sequential, load_state_dict, state_dict
from engine.models import char_lm, gru_classifier, lenet, lstm_classifier, mlp, rnn_classifier

MAKERS = {"mlp": mlp, "lenet": lenet, "rnn": rnn_classifier, "lstm": lstm_classifier, "gru": gru_classifier,
          "charlm": lambda d: char_lm(d, hidden=16)}


def parameters_of(model):
    return [p.numpy() for p in model.parameters()]


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_export_then_load_gives_equal_parameters(name):
    dev = Device("cpu")
    source, target = MAKERS[name](dev), MAKERS[name](dev)
    for p in source.parameters():  # values the target cannot already have (both start from seed 0)
        p.load(p.numpy() * 1.5 + 0.25)
    exported = state_dict(source)
    assert all(isinstance(v, np.ndarray) for v in exported.values())
    load_state_dict(target, exported)
    for mine, theirs in zip(parameters_of(target), parameters_of(source)):
        np.testing.assert_array_equal(mine, theirs)


def test_names_are_pytorchs():
    dev = Device("cpu")
    assert list(state_dict(mlp(dev))) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert list(state_dict(rnn_classifier(dev))) == ["0.weight_ih_l0", "0.weight_hh_l0", "0.bias_ih_l0",
                                                     "0.bias_hh_l0", "2.weight", "2.bias"]
    bn = Sequential(L.Conv2D(1, 2, 3, device=dev), L.BatchNorm2D(2, device=dev), L.LayerNorm(4, device=dev))
    assert list(state_dict(bn)) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                                    "1.num_batches_tracked", "2.weight", "2.bias"]
    graph = Graph(inputs=["x"])
    graph.add("fc", L.Dense(3, 3, device=dev), "x").add("sum", Add(), "fc", "x").output("sum")
    assert list(state_dict(graph)) == ["fc.weight", "fc.bias"]


def test_a_cuda_model_exports_host_arrays():
    dev = Device("cuda")  # the simulator without a GPU
    exported = state_dict(mlp(dev, hidden=4))
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in exported.values())


# -- with PyTorch (skipped without it) --------------------------------------------------------------------------------
def _check_same_outputs(torch, model, reference, x, dev):
    reference.load_state_dict(state_dict(model, tensors=True))  # strict: every name and shape must match
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.forward(dev.asarray(x)), expected, rtol=1e-4, atol=1e-5)


def test_torch_lenet_and_mlp_take_the_export_strictly():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    dev = Device("cpu")
    reference = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                              nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                              nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)).eval()
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    _check_same_outputs(torch, lenet(dev, seed=5), reference, x, dev)
    reference = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    _check_same_outputs(torch, mlp(dev, seed=3), reference, x.reshape(3, -1)[:, :64].copy(), dev)


@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
def test_torch_recurrent_classifiers_take_the_export_strictly(cell):
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Reader(nn.Module):  # tilegrad's (recurrent, LastTimeStep, Dense) with nn.Sequential's indices
        def __init__(self):
            super().__init__()
            self.add_module("0", getattr(nn, cell)(8, 64, batch_first=True))
            self.add_module("2", nn.Linear(64, 10))

        def forward(self, x):
            return getattr(self, "2")(getattr(self, "0")(x)[0][:, -1])

    dev = Device("cpu")
    make = {"RNN": rnn_classifier, "LSTM": lstm_classifier, "GRU": gru_classifier}[cell]
    x = np.random.default_rng(1).standard_normal((2, 5, 8)).astype(np.float32)
    _check_same_outputs(torch, make(dev, seed=2), Reader().eval(), x, dev)


def test_torch_batchnorm_and_layernorm_take_the_export_strictly():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    dev = Device("cpu")
    model = Sequential(L.Conv2D(2, 3, 3, device=dev), L.BatchNorm2D(3, device=dev), L.ReLU(), L.Flatten(),
                       L.LayerNorm(48, device=dev), L.Dense(48, 4, device=dev))
    x = np.random.default_rng(2).standard_normal((5, 2, 6, 6)).astype(np.float32)
    model.forward(dev.asarray(x * 3 + 1))  # training mode: the running statistics move
    for layer in (model.layers[1], model.layers[4]):
        layer.weight.load(np.linspace(0.5, 1.5, layer.weight.size))
        layer.bias.load(np.linspace(-0.3, 0.3, layer.bias.size))
    model.eval()
    reference = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.LayerNorm(48),
                              nn.Linear(48, 4)).eval()
    _check_same_outputs(torch, model, reference, x, dev)


def test_tensors_without_torch_is_one_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    with pytest.raises(ImportError, match=r"state_dict\(model, tensors=True\) needs PyTorch"):
        state_dict(mlp(Device("cpu")), tensors=True)
