"""Layer normalization kernels on every backend against float64 references; the layer's gradcheck."""

import numpy as np
import pytest
from hypothesis import strategies as st
from support import (
    BACKENDS,
    assert_close,
    for_all,
    kernels,
    poisoned,
    random_array,
    simulated,
    straddling,
    to_backend,
    to_host,
)

import layers as L
from cuda_kernels.layernorm import LN_THREADS
from engine import Device, gradcheck


def ln_case(backend):
    sim = simulated(backend)
    return st.fixed_dictionaries({
        "rows": st.sampled_from([1, 2, 3] if sim else [1, 2, 7, 33]),
        "d": straddling(LN_THREADS, 2 * LN_THREADS + 1 if sim else 600),  # a row straddling the block
        "shift": st.sampled_from([0.0, 5.0]),  # a large mean: the two-pass variance must not cancel
        "seed": st.integers(0, 2**16),
    })


@pytest.mark.parametrize("backend", BACKENDS)
def test_layernorm_forward_backward(backend):
    def check(c):
        rng = np.random.default_rng(c["seed"])
        rows, d = c["rows"], c["d"]
        x = random_array(rng, (rows, d)) + np.float32(c["shift"])
        gamma, beta, dy = random_array(rng, (d,)), random_array(rng, (d,)), random_array(rng, (rows, d))
        ref, k, B = kernels("numpy"), kernels(backend), (lambda a: to_backend(backend, a))
        y64, mean64, rstd64 = np.empty((rows, d)), np.empty(rows), np.empty(rows)
        ref.layernorm_forward(y64, mean64, rstd64, x.astype(np.float64), gamma.astype(np.float64),
                              beta.astype(np.float64), 1e-5)
        y, mean, rstd = poisoned(backend, (rows, d)), poisoned(backend, (rows,)), poisoned(backend, (rows,))
        k.layernorm_forward(y, mean, rstd, B(x), B(gamma), B(beta), 1e-5)
        scale = max(1.0, float(rstd64.max()))  # d = 1: rstd = 1/sqrt(eps)
        assert_close(y, y64, 1e-4, 1e-4 * scale, "ln y")
        assert_close(mean, mean64, 1e-5, 1e-5, "ln mean")
        assert_close(rstd, rstd64, 1e-3, 1e-3, "ln rstd")

        dx64, dg64, db64 = np.empty((rows, d)), np.empty(d), np.empty(d)
        ref.layernorm_backward(dx64, dg64, db64, dy.astype(np.float64), x.astype(np.float64), mean64, rstd64,
                               gamma.astype(np.float64))
        dx, dg, db = poisoned(backend, (rows, d)), poisoned(backend, (d,)), poisoned(backend, (d,))
        k.layernorm_backward(dx, dg, db, B(dy), B(x), B(to_host(mean)), B(to_host(rstd)), B(gamma))
        assert_close(db, db64, 1e-4, 1e-5 * rows, "dbeta")
        assert_close(dg, dg64, 1e-3, 1e-4 * rows * scale, "dgamma")
        assert_close(dx, dx64, 1e-3, 1e-3 * scale, "ln dx")

    for_all(backend, ln_case(backend), check, sim_examples=3)


def test_layernorm_names_a_wrong_argument():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="layernorm_forward.*'gamma'"):
        kernels("cpu").layernorm_forward(np.zeros_like(x), np.zeros(2, np.float32), np.zeros(2, np.float32), x,
                                         np.zeros(4, np.float32), np.zeros(3, np.float32))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4)])  # (batch, features) and (batch, time, features)
def test_layernorm_layer_gradcheck(device, shape):
    layer = L.LayerNorm(shape[-1], device=Device(device))
    layer.weight.load(np.linspace(0.5, 1.5, shape[-1]))  # not all ones: dgamma and the gamma in dx both count
    layer.bias.load(np.linspace(-0.2, 0.3, shape[-1]))
    result = gradcheck(layer, shape, seed=2)
    assert result.ok, str(result)
    assert {"input", "weight", "bias"} <= set(result.worst)


def test_layernorm_layer_matches_pytorch_definition():
    dev = Device("cpu")
    layer = L.LayerNorm(4, device=dev)
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    y = dev.to_numpy(layer.forward(dev.asarray(x)))
    x64 = x.astype(np.float64)
    expected = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    layer.eval()  # no batch statistics: eval gives the same answer, and batch size 1 works
    np.testing.assert_allclose(dev.to_numpy(layer.forward(dev.asarray(x[:1]))), expected[:1], rtol=1e-4, atol=1e-5)
    assert [p.name for p in layer.parameters()] == ["weight", "bias"]


def test_layernorm_layer_errors():
    with pytest.raises(ValueError, match="LayerNorm: normalized_shape must be a positive integer"):
        L.LayerNorm(0)
    with pytest.raises(ValueError, match=r"LayerNorm.forward: expected \(\.\.\., 4\), got shape \(2, 5\)"):
        L.LayerNorm(4).forward(np.zeros((2, 5), np.float32))
