"""im2col / col2im, conv2d forward and backward, and max-pooling on every backend."""

import numpy as np
import pytest
from hypothesis import strategies as st
from support import BACKENDS, assert_close, for_all, kernels, poisoned, random_array, simulated, to_backend, to_host

from cuda_kernels.shapes import conv_output_size, pool_output_size


def conv_case(backend):
    sim = simulated(backend)
    return st.fixed_dictionaries({
        "n": st.sampled_from([1, 2] if sim else [1, 2, 5]),
        "c": st.sampled_from([1, 2, 3] if sim else [1, 3, 6]),
        "f": st.sampled_from([1, 2, 3] if sim else [1, 4, 16]),
        "h": st.sampled_from([3, 5, 6] if sim else [5, 7, 8, 13, 28]),
        "w": st.sampled_from([3, 4, 7] if sim else [5, 6, 9, 14]),
        "k": st.sampled_from([1, 2, 3]),
        "stride": st.sampled_from([1, 2, 3]),
        "padding": st.sampled_from([0, 1, 2]),
        "seed": st.integers(0, 2**16),
    }).filter(lambda c: conv_output_size(min(c["h"], c["w"]), c["k"], c["stride"], c["padding"]) >= 1)


def conv_numpy64(x, weight, bias, stride, padding):
    """An independent float64 direct convolution (no im2col), for checking the composition."""
    n, c, h, w = x.shape
    f, _, k, _ = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = conv_output_size(h, k, stride, padding), conv_output_size(w, k, stride, padding)
    y = np.zeros((n, f, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride:i * stride + k, j * stride:j * stride + k]
            y[:, :, i, j] = np.tensordot(patch, weight, axes=([1, 2, 3], [1, 2, 3]))
    return y + bias[None, :, None, None]


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_forward_backward_against_direct_convolution(backend):
    def check(c):
        rng = np.random.default_rng(c["seed"])
        n, C, F, H, W, k, s, p = (c[key] for key in ("n", "c", "f", "h", "w", "k", "stride", "padding"))
        oh, ow = conv_output_size(H, k, s, p), conv_output_size(W, k, s, p)
        x, weight, bias = random_array(rng, (n, C, H, W)), random_array(rng, (F, C, k, k)), random_array(rng, (F,))
        dy = random_array(rng, (n, F, oh, ow))
        B = lambda a: to_backend(backend, a)  # noqa: E731
        K = kernels(backend)
        y, cols, rows = poisoned(backend, (n, F, oh, ow)), poisoned(backend, (n * oh * ow, C * k * k)), \
            poisoned(backend, (n * oh * ow, F))
        K.conv2d_forward(y, cols, rows, B(x), B(weight), B(bias), s, p)
        x64, w64 = x.astype(np.float64), weight.astype(np.float64)
        assert_close(y, conv_numpy64(x64, w64, bias.astype(np.float64), s, p), 1e-4, 1e-5 * C * k * k, "conv y")

        dx, dw, db = poisoned(backend, x.shape), poisoned(backend, weight.shape), poisoned(backend, (F,))
        dcols, drows = poisoned(backend, (n * oh * ow, C * k * k)), poisoned(backend, (n * oh * ow, F))
        K.conv2d_backward(dx, dw, db, dcols, drows, B(dy), cols, B(weight), s, p)
        # the adjoint identities: <dy, conv(x)> is linear in x and in w
        dy64 = dy.astype(np.float64)
        zero = np.zeros(F)
        expected_db = dy64.sum(axis=(0, 2, 3))
        eps_dirs = rng.standard_normal((3,) + x.shape), rng.standard_normal((3,) + weight.shape)
        for v in eps_dirs[0]:
            assert np.isclose(np.sum(to_host(dx) * v), np.sum(dy64 * conv_numpy64(v, w64, zero, s, p)),
                              rtol=1e-3, atol=1e-3)
        for v in eps_dirs[1]:
            assert np.isclose(np.sum(to_host(dw) * v), np.sum(dy64 * conv_numpy64(x64, v, zero, s, p)),
                              rtol=1e-3, atol=1e-3)
        assert_close(db, expected_db, 1e-4, 1e-4, "conv dbias")

    for_all(backend, conv_case(backend), check, sim_examples=2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_im2col_col2im_match_the_reference(backend):
    def check(c):
        rng = np.random.default_rng(c["seed"])
        n, C, H, W, k, s, p = (c[key] for key in ("n", "c", "h", "w", "k", "stride", "padding"))
        oh, ow = conv_output_size(H, k, s, p), conv_output_size(W, k, s, p)
        x = random_array(rng, (n, C, H, W))
        cols64 = np.empty((n * oh * ow, C * k * k))
        kernels("numpy").im2col(cols64, x.astype(np.float64), k, s, p)
        cols = poisoned(backend, cols64.shape)
        kernels(backend).im2col(cols, to_backend(backend, x), k, s, p)
        assert_close(cols, cols64, 0, 0, "im2col")
        g = random_array(rng, cols64.shape)
        dx64 = np.empty(x.shape)
        kernels("numpy").col2im(dx64, g.astype(np.float64), k, s, p)
        # col2im is im2col's adjoint: <im2col(x), g> == <x, col2im(g)>
        assert np.isclose(np.sum(cols64 * g), np.sum(x * dx64), rtol=1e-6, atol=1e-6)
        dx = poisoned(backend, x.shape)
        kernels(backend).col2im(dx, to_backend(backend, g), k, s, p)
        assert_close(dx, dx64, 1e-5, 1e-5, "col2im")

    for_all(backend, conv_case(backend), check, sim_examples=2)


def pool_case(backend):
    sim = simulated(backend)
    return st.fixed_dictionaries({
        "n": st.sampled_from([1, 2]), "c": st.sampled_from([1, 3] if sim else [1, 3, 16]),
        "h": st.sampled_from([2, 3, 5] if sim else [2, 3, 8, 13, 28]),
        "w": st.sampled_from([2, 4, 5] if sim else [2, 5, 8, 14]),
        "k": st.sampled_from([1, 2, 3]), "stride": st.sampled_from([1, 2, 3]),  # stride < k: windows overlap
        "ties": st.booleans(), "seed": st.integers(0, 2**16),
    }).filter(lambda c: c["k"] <= min(c["h"], c["w"]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_maxpool_forward_backward(backend):
    for_all(backend, pool_case(backend), lambda c: check_maxpool(backend, c), sim_examples=3)


@pytest.mark.parametrize("h, w", [(28, 28), (13, 5), (2, 3)])
@pytest.mark.parametrize("ties", [False, True])
def test_maxpool_2x2_fast_path_on_the_cpu(h, w, ties):
    check_maxpool("cpu", dict(n=2, c=3, h=h, w=w, k=2, stride=2, ties=ties, seed=h * w))


def check_maxpool(backend, c):
    rng = np.random.default_rng(c["seed"])
    n, C, H, W, k, s = (c[key] for key in ("n", "c", "h", "w", "k", "stride"))
    oh, ow = pool_output_size(H, k, s), pool_output_size(W, k, s)
    x = random_array(rng, (n, C, H, W))
    if c["ties"]:
        x = np.round(x).astype(np.float32)  # many equal values: the first maximum must win everywhere
    dy = random_array(rng, (n, C, oh, ow))
    ref = kernels("numpy")
    y64, arg64 = np.empty((n, C, oh, ow)), np.empty((n, C, oh, ow), np.int32)
    ref.maxpool_forward(y64, arg64, x.astype(np.float64), k, s)
    y, arg = poisoned(backend, y64.shape), poisoned(backend, y64.shape, np.int32)
    kernels(backend).maxpool_forward(y, arg, to_backend(backend, x), k, s)
    assert_close(y, y64, 0, 0, "maxpool y")
    np.testing.assert_array_equal(to_host(arg), arg64)
    dx64 = np.empty(x.shape)
    ref.maxpool_backward(dx64, dy.astype(np.float64), arg64, k, s)
    dx = poisoned(backend, x.shape)
    kernels(backend).maxpool_backward(dx, to_backend(backend, dy), arg, k, s)
    assert_close(dx, dx64, 1e-6, 1e-6, "maxpool dx")


def test_maxpool_reference_against_a_loop():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 5, 5))
    y, arg = np.empty((1, 1, 2, 2)), np.empty((1, 1, 2, 2), np.int32)
    kernels("numpy").maxpool_forward(y, arg, x, 3, 2)
    for i in range(2):
        for j in range(2):
            assert y[0, 0, i, j] == x[0, 0, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max()


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_conv_and_pool_bad_arguments(backend):
    K = kernels(backend)
    x = to_backend(backend, np.ones((1, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"im2col: argument 'cols' expects shape \(9, 4\)"):
        K.im2col(to_backend(backend, np.ones((4, 9), np.float32)), x, 2, 1, 0)
    with pytest.raises(ValueError, match="does not fit"):
        K.im2col(to_backend(backend, np.ones((1, 1), np.float32)), x, 7, 1, 0)
    with pytest.raises(ValueError, match="'stride' must be a positive integer"):
        K.maxpool_forward(to_backend(backend, np.ones((1, 1, 2, 2), np.float32)),
                          to_backend(backend, np.ones((1, 1, 2, 2), np.int32)), x, 2, 0)
    with pytest.raises(TypeError, match="argument 'argmax' expects dtype int32"):
        K.maxpool_forward(to_backend(backend, np.ones((1, 1, 2, 2), np.float32)),
                          to_backend(backend, np.ones((1, 1, 2, 2), np.float32)), x, 2, 2)
