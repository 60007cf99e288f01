"""Elementwise ops on every backend against float64 references."""

import numpy as np
import pytest
from hypothesis import strategies as st
from support import BACKENDS, assert_close, for_all, kernels, poisoned, random_array, simulated, to_backend, to_host

from cuda_kernels.elementwise import dropout_mask_reference


def shape_case(backend, extra=None):
    sim = simulated(backend)
    sizes = st.sampled_from([1, 2, 31, 32, 33, 63, 65, 97] if sim else [1, 31, 32, 33, 255, 256, 257, 4099, 65537])
    fields = {"rows": st.sampled_from([1, 2, 3]), "cols": sizes, "seed": st.integers(0, 2**16),
              "block": st.sampled_from([None, 32, 64] if sim else [None, 32, 128, 256])}
    fields.update(extra or {})
    return st.fixed_dictionaries(fields)


def launch_kwargs(backend, c):
    return {"block": c["block"]} if backend == "cuda" else {}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_activation_forward_and_backward(backend, activation):
    def check(c):
        rng = np.random.default_rng(c["seed"])
        shape = (c["rows"], c["cols"])
        x, dy = random_array(rng, shape, 3.0), random_array(rng, shape)
        k = kernels(backend)
        y = poisoned(backend, shape)
        k.activation_forward(y, to_backend(backend, x), activation, **launch_kwargs(backend, c))
        y64 = np.empty(shape)
        kernels("numpy").activation_forward(y64, x.astype(np.float64), activation)
        assert_close(y, y64, rtol=2e-6, atol=2e-6, what=f"{activation} forward")
        y32 = to_host(y)
        dx = poisoned(backend, shape)
        k.activation_backward(dx, to_backend(backend, dy), to_backend(backend, y32), activation,
                              **launch_kwargs(backend, c))
        dx64 = np.empty(shape)
        kernels("numpy").activation_backward(dx64, dy.astype(np.float64), y32.astype(np.float64), activation)
        assert_close(dx, dx64, rtol=1e-5, atol=1e-6, what=f"{activation} backward")

    for_all(backend, shape_case(backend), check, sim_examples=3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fill_scale_axpy_add_multiply_bias_add(backend):
    def check(c):
        rng = np.random.default_rng(c["seed"])
        shape = (c["rows"], c["cols"])
        a, b = random_array(rng, shape), random_array(rng, shape)
        bias = random_array(rng, (c["cols"],))
        k, kw = kernels(backend), launch_kwargs(backend, c)
        A, B = to_backend(backend, a), to_backend(backend, b)
        out = poisoned(backend, shape)
        k.fill(out, 2.5, **kw)
        assert_close(out, np.full(shape, 2.5), 0, 0, "fill")
        out = poisoned(backend, shape)
        k.scale(out, A, -1.5, **kw)
        assert_close(out, -1.5 * a.astype(np.float64), 1e-6, 1e-7, "scale")
        y = to_backend(backend, b.copy())
        k.axpy(y, A, 0.25, **kw)
        assert_close(y, b + 0.25 * a.astype(np.float64), 1e-6, 1e-6, "axpy")
        out = poisoned(backend, shape)
        k.add(out, A, B, **kw)
        assert_close(out, a.astype(np.float64) + b, 1e-6, 1e-7, "add")
        out = poisoned(backend, shape)
        k.multiply(out, A, B, **kw)
        assert_close(out, a.astype(np.float64) * b, 1e-6, 1e-7, "multiply")
        out = poisoned(backend, shape)
        k.bias_add(out, A, to_backend(backend, bias), **kw)
        assert_close(out, a.astype(np.float64) + bias, 1e-6, 1e-7, "bias_add")

    for_all(backend, shape_case(backend), check, sim_examples=2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_mask_is_identical_on_every_backend(backend):
    def check(c):
        rng = np.random.default_rng(c["seed"])
        shape = (c["rows"], c["cols"])
        x = random_array(rng, shape)
        out, mask = poisoned(backend, shape), poisoned(backend, shape)
        kernels(backend).dropout_forward(out, mask, to_backend(backend, x), c["p"], c["seed"],
                                         **launch_kwargs(backend, c))
        expected_mask = dropout_mask_reference(shape, c["p"], c["seed"])
        assert_close(mask, expected_mask, 1e-6, 0, "dropout mask")
        assert_close(out, x * expected_mask, 1e-6, 1e-7, "dropout output")

    for_all(backend, shape_case(backend, {"p": st.sampled_from([0.0, 0.1, 0.5, 0.9])}), check, sim_examples=3)


def test_dropout_keeps_about_one_minus_p_and_preserves_the_mean():
    mask = dropout_mask_reference((200_000,), 0.3, seed=7)
    assert abs((mask > 0).mean() - 0.7) < 0.005
    assert abs(mask.mean() - 1.0) < 0.01
    assert not np.array_equal(mask, dropout_mask_reference((200_000,), 0.3, seed=8))


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_elementwise_bad_arguments(backend):
    k = kernels(backend)
    x = to_backend(backend, np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"add: argument 'b' expects shape \(2, 3\)"):
        k.add(to_backend(backend, np.ones((2, 3), np.float32)), x, to_backend(backend, np.ones((3, 2), np.float32)))
    with pytest.raises(ValueError, match="'activation' must be one of"):
        k.activation_forward(to_backend(backend, np.ones((2, 3), np.float32)), x, "gelu")
    with pytest.raises(ValueError, match=r"'p' must be in \[0, 1\)"):
        ones = np.ones((2, 3), np.float32)
        k.dropout_forward(to_backend(backend, ones), to_backend(backend, ones), x, 1.0, 0)
    with pytest.raises(TypeError, match="expects dtype float32"):
        k.fill(to_backend(backend, np.ones(3, np.int32)), 0.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_swap_leading_axes(backend):
    def check(c):
        rng = np.random.default_rng(c["seed"])
        x = random_array(rng, (c["rows"], 3, c["cols"] % 40 + 1))
        out = poisoned(backend, (3, c["rows"], x.shape[2]))
        kernels(backend).swap_leading_axes(out, to_backend(backend, x))
        assert_close(out, x.transpose(1, 0, 2), 0, 0, "swap_leading_axes")

    for_all(backend, shape_case(backend), check, sim_examples=2)


def test_cpu_sigmoid_is_within_its_stated_absolute_error():
    # cuda_kernels/cpu_tanh.py states an absolute 2.3e-7 for sigmoid_float32 (the LSTM and GRU CPU twins' gates):
    # check it over [-40, 40], where the tails are 0 and 1 in float32, and that it stays in [0, 1]
    from numba import njit

    from cuda_kernels.cpu_tanh import sigmoid_float32

    @njit
    def sigmoid_all(out, xs):
        for i in range(xs.size):
            out[i] = sigmoid_float32(xs[i])

    xs = np.concatenate([np.linspace(-40, 40, 2_000_001), [-100.0, 100.0, 0.0]]).astype(np.float32)
    out = np.empty_like(xs)
    sigmoid_all(out, xs)
    ref = 1 / (1 + np.exp(-xs.astype(np.float64)))
    err = np.abs(out - ref)
    assert err.max() <= 2.3e-7, (err.max(), xs[err.argmax()])
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_cpu_tanh_is_within_its_stated_error_everywhere():
    # cuda_kernels/cpu_tanh.py states 3.4e-7 relative over [-12, 12]: check it on 4 million points, both
    # directly and through the CPU twin that uses it, tails (saturation) and the tiny-x branch included
    from cuda_kernels.cpu_tanh import tanh_float32

    xs = np.concatenate([np.linspace(-12, 12, 2_000_001), np.geomspace(1e-8, 12, 1_000_000),
                         -np.geomspace(1e-8, 12, 1_000_000), [0.0, -0.0, 0.0004, -0.0004, 50.0, -50.0]])
    xs = xs.astype(np.float32)
    ref = np.tanh(xs.astype(np.float64))
    out = np.empty_like(xs)
    kernels("cpu").activation_forward(out, xs, "tanh")
    rel = np.abs(out - ref) / np.maximum(np.abs(ref), 1e-30)
    assert rel.max() <= 3.5e-7, (rel.max(), xs[rel.argmax()])
    assert all(abs(tanh_float32(np.float32(x)) - np.tanh(float(x))) <= 3.5e-7 * abs(np.tanh(float(x)))
               for x in xs[::100_003])
