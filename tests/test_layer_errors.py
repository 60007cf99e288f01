"""Careless input to a layer gives one clear error naming the layer and what it expected (never a
ZeroDivisionError from deep inside, never a silent wrong answer)."""

import numpy as np
import pytest

import layers as L
from engine import Sequential


@pytest.mark.parametrize("make, message", [
    (lambda: L.Dense(0, 3), "Dense: in_features must be a positive integer, got 0"),
    (lambda: L.Dense(-1, 3), "Dense: in_features must be a positive integer, got -1"),
    (lambda: L.Dense(4, 2.5), "Dense: out_features must be a positive integer, got 2.5"),
    (lambda: L.Conv2D(1, 6, 0), "Conv2D: kernel_size must be a positive integer, got 0"),
    (lambda: L.Conv2D(1, 6, 3, padding=-1), "Conv2D: padding must be a non-negative integer, got -1"),
    (lambda: L.MaxPool2D(2, stride=0), "MaxPool2D: stride must be a positive integer, got 0"),
    (lambda: L.RNN(8, 0), "RNN: hidden_size must be a positive integer, got 0"),
    (lambda: L.BatchNorm2D(0), "BatchNorm2D: channels must be a positive integer, got 0"),
])
def test_constructors_validate_their_sizes(make, message):
    with pytest.raises(ValueError) as error:
        make()
    assert str(error.value) == message


def test_backward_before_forward_names_the_layer():
    with pytest.raises(RuntimeError) as error:
        L.Dense(4, 3).backward(np.zeros((2, 3), np.float32))
    assert str(error.value) == "Dense.backward called before forward: run forward on a batch first"


def test_a_wrong_dy_shape_names_the_layer_and_the_expected_shape():
    layer = L.Dense(4, 3)
    layer.forward(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError) as error:
        layer.backward(np.zeros((2, 4), np.float32))
    assert str(error.value) == "Dense.backward: expected dy of shape (2, 3) (the shape forward returned), got (2, 4)"


@pytest.mark.parametrize("value, kind", [([[1.0, 2.0, 3.0, 4.0]], "list"), (3.0, "float")])
def test_a_non_array_input_says_what_it_got(value, kind):
    with pytest.raises(TypeError) as error:
        L.Dense(4, 3).forward(value)
    assert str(error.value) == ("Dense.forward: expected its input as a NumPy or CUDA device array (move data with "
                                f"device.asarray), got {kind}")


def test_fused_activations_still_run_backward():
    """Sequential fuses ReLU into the Dense epilogue: the ReLU's forward never runs, its backward must (the same
    gradients as the unfused model; some pre-activations are negative, so a skipped mask shows)."""
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    grads = []
    for fuse in (True, False):
        model = Sequential(L.Dense(4, 3, seed=1), L.ReLU(), L.Dense(3, 2, seed=2), fuse=fuse)
        hidden = model.layers[0].forward(x) if not fuse else None
        model.forward(x)
        model.backward(np.ones((5, 2), np.float32))
        grads.append(np.array(model.flat.grad))
    assert (hidden < 0).any() and (hidden > 0).any()  # the mask zeroes some of the gradient
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6, atol=1e-7)


def test_check_finite_names_the_first_layer_that_produced_nan():
    model = Sequential(L.Dense(4, 3), L.ReLU(), L.Dense(3, 2), fuse=False)
    x = np.ones((2, 4), np.float32)
    x[0, 0] = np.nan
    model.forward(x)  # off by default: no host copies, NaN flows on
    with L.check_finite(), pytest.raises(FloatingPointError) as error:
        model.forward(x)
    assert str(error.value) == "Dense.forward produced 3 NaN and 0 inf values in its output (shape (2, 3))"


def test_check_finite_checks_gradients_too():
    model = Sequential(L.Dense(4, 3), L.Tanh(), L.Dense(3, 2), fuse=False)
    model.forward(np.ones((2, 4), np.float32))
    dy = np.ones((2, 2), np.float32)
    dy[1, 1] = np.inf
    with L.check_finite(), pytest.raises(FloatingPointError) as error:
        model.backward(dy)
    assert str(error.value) == ("Dense.backward produced 0 NaN and 3 inf values in its gradient for input 0 "
                                "(shape (2, 3))")
