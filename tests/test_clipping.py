"""Gradient clipping: clip_grad_norm on an optimizer's flat buffer, a model, loose parameters; fit's clip_grad."""

import math

import numpy as np
import pytest

import layers as L
import optim as O
from engine import Device, Sequential, clip_grad_norm, fit, load_digits
from engine.models import mlp

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def model_with_gradients(dev, scale):
    model = Sequential(L.Dense(3, 4, device=dev), L.ReLU(), L.Dense(4, 2, device=dev))
    rng = np.random.default_rng(0)
    for p in model.parameters():
        p.grad = dev.asarray((rng.standard_normal(p.shape) * scale).astype(np.float32))
    return model


def gradients(model):
    return np.concatenate([p.device.to_numpy(p.grad).ravel() for p in model.parameters()]).astype(np.float64)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("through", ["optimizer", "model", "parameters"])
def test_clip_grad_norm_scales_to_max_norm_and_returns_the_norm_before(device, through):
    dev = Device(device)
    model = model_with_gradients(dev, scale=3.0)
    optimizer = O.SGD(model.parameters(), lr=0.1)
    before = gradients(model)
    target = {"optimizer": optimizer, "model": model, "parameters": model.parameters()}[through]
    norm = clip_grad_norm(target, 1.5)
    assert norm == pytest.approx(np.linalg.norm(before), rel=1e-5)
    after = gradients(model)
    assert np.linalg.norm(after) == pytest.approx(1.5, rel=1e-4)
    np.testing.assert_allclose(after, before * 1.5 / (norm + 1e-6), rtol=1e-5, atol=1e-7)  # same direction


def test_loose_parameters_outside_a_flat_buffer():
    dev = Device("cpu")
    params = [L.Dense(3, 2, device=dev).weight, L.Dense(2, 2, device=dev).bias]  # no flat owner
    params[0].grad = np.full((2, 3), 2.0, np.float32)
    params[1].grad = np.full((2,), 2.0, np.float32)
    assert clip_grad_norm(params, 0.5) == pytest.approx(math.sqrt(8 * 4.0), rel=1e-6)
    total = math.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum()) for p in params))
    assert total == pytest.approx(0.5, rel=1e-4)


def test_small_gradients_are_left_alone():
    model = model_with_gradients(Device("cpu"), scale=1e-3)
    before = gradients(model)
    assert clip_grad_norm(model, 10.0) == pytest.approx(np.linalg.norm(before), rel=1e-5)
    np.testing.assert_array_equal(gradients(model), before)


def test_nonfinite_gradients_are_named_or_left_alone():
    model = model_with_gradients(Device("cpu"), scale=1.0)
    model.parameters()[0].grad[0, 0] = np.inf
    before = gradients(model)
    assert math.isinf(clip_grad_norm(model, 1.0))
    np.testing.assert_array_equal(gradients(model), before)
    with pytest.raises(FloatingPointError, match="clip_grad_norm: the gradients' norm is inf"):
        clip_grad_norm(model, 1.0, error_if_nonfinite=True)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "1", True])
def test_bad_max_norm_is_one_line(bad):
    with pytest.raises(ValueError, match="clip_grad_norm: max_norm must be a positive finite number"):
        clip_grad_norm(model_with_gradients(Device("cpu"), 1.0), bad)


def test_not_parameters_is_one_line():
    with pytest.raises(TypeError, match="clip_grad_norm: expected an optimizer, a model or"):
        clip_grad_norm(3, 1.0)


def test_matches_pytorch_clip_grad_norm():
    torch = pytest.importorskip("torch")
    model = model_with_gradients(Device("cpu"), scale=3.0)
    tensors = [torch.nn.Parameter(torch.zeros(p.shape)) for p in model.parameters()]
    for t, p in zip(tensors, model.parameters()):
        t.grad = torch.from_numpy(np.array(p.grad))
    expected = float(torch.nn.utils.clip_grad_norm_(tensors, 0.7))
    assert clip_grad_norm(model, 0.7) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(gradients(model), np.concatenate([t.grad.numpy().ravel() for t in tensors]),
                               rtol=1e-5, atol=1e-7)


def test_fit_clips_every_step_and_refuses_it_with_a_cuda_graph():
    dev = Device("cpu")
    train, _ = load_digits("flat")
    train = train.head(64)
    model = mlp(dev, in_features=64)
    optimizer = O.SGD(model.parameters(), lr=0.1)
    norms = []
    real_step = optimizer.step

    def step():  # what the update sees: the clipped gradients
        norms.append(float(np.linalg.norm(gradients(model))))
        real_step()

    optimizer.step = step
    fit(model, L.SoftmaxCrossEntropy(), optimizer, train, epochs=1, batch_size=16, clip_grad=0.05)
    assert len(norms) == 4 and max(norms) <= 0.05 * (1 + 1e-4)
    with pytest.raises(ValueError, match="fit: clip_grad must be a positive finite number, got nan"):
        fit(model, L.SoftmaxCrossEntropy(), optimizer, train, epochs=1, clip_grad=float("nan"))
    with pytest.raises(ValueError, match="fit: clip_grad reads the gradient norm back every step"):
        fit(model, L.SoftmaxCrossEntropy(), optimizer, train, epochs=1, clip_grad=1.0, cuda_graph=True)


def test_train_clip_grad_flag(tmp_path, capsys):
    from cli import main

    quick = ["train", "--model", "mlp", "--epochs", "1", "--limit", "32", "--device", "cpu"]
    assert main([*quick, "--clip-grad", "nan"]) == 1
    assert "--clip-grad must be a positive number (0 turns clipping off), got nan" in capsys.readouterr().err
    out = tmp_path / "run.json"
    assert main([*quick, "--clip-grad", "0.5", "--json", str(out)]) == 0
    assert "gradients clipped to a global L2 norm of 0.5" in capsys.readouterr().err
    import json

    assert json.loads(out.read_text())["clip_grad"] == 0.5
