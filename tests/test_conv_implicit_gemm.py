"""The implicit-GEMM convolution (conv_implicit_gemm.py) on every backend against the float64 im2col composition."""

import numpy as np
import pytest
from hypothesis import strategies as st
from support import BACKENDS, assert_close, for_all, kernels, poisoned, random_array, simulated, to_backend

from cuda_kernels import conv_implicit_gemm as CIG
from cuda_kernels.shapes import conv_implicit_gemm_shapes, conv_output_size


def cases(backend):
    """Shapes that straddle the kernels' tiles: 64 pixels (or weights) x 16 filters (or channels) x 16 summed."""
    sim = simulated(backend)
    return st.fixed_dictionaries({
        "n": st.sampled_from([1, 2] if sim else [1, 2, 3]),
        "c": st.sampled_from([1, 2, 3] if sim else [1, 2, 6, 17]),
        "f": st.sampled_from([1, 3, 17] if sim else [1, 5, 16, 17]),
        "h": st.sampled_from([3, 5, 9] if sim else [3, 5, 9, 14]),
        "w": st.sampled_from([3, 4, 8] if sim else [3, 4, 8, 13]),
        "k": st.sampled_from([1, 2, 3] if sim else [1, 2, 3, 5]),
        "stride": st.sampled_from([1, 2]),
        "padding": st.sampled_from([0, 1, 2]),
        "splits": st.sampled_from([None, 1, 3]),  # None: the shape shapes.py asks for; 3: more slices than pixels too
        "bias": st.booleans(), "input_grad": st.booleans(),
        "seed": st.integers(0, 2**16),
    }).filter(lambda c: conv_output_size(c["h"], c["k"], c["stride"], c["padding"]) >= 1
              and conv_output_size(c["w"], c["k"], c["stride"], c["padding"]) >= 1)


def run_case(backend, c):
    rng = np.random.default_rng(c["seed"])
    n, C, F, H, W, k, s, p = (c[key] for key in ("n", "c", "f", "h", "w", "k", "stride", "padding"))
    oh, ow = conv_output_size(H, k, s, p), conv_output_size(W, k, s, p)
    x, weight, bias = random_array(rng, (n, C, H, W)), random_array(rng, (F, C, k, k)), random_array(rng, (F,))
    dy = random_array(rng, (n, F, oh, ow))

    # the float64 reference: conv.py's im2col composition on the NumPy backend (another algorithm)
    ref = kernels("numpy")
    y64, cols64, rows64 = np.empty((n, F, oh, ow)), np.empty((n * oh * ow, C * k * k)), np.empty((n * oh * ow, F))
    ref.conv2d_forward(y64, cols64, rows64, x.astype(np.float64), weight.astype(np.float64),
                       bias.astype(np.float64) if c["bias"] else None, s, p)
    dx64, dw64, db64 = np.empty(x.shape), np.empty(weight.shape), np.empty(F)
    ref.conv2d_backward(dx64, dw64, db64, np.empty_like(cols64), np.empty_like(rows64), dy.astype(np.float64),
                        cols64, weight.astype(np.float64), s, p)

    B = lambda a: to_backend(backend, a)  # noqa: E731
    K = kernels(backend)
    y = poisoned(backend, (n, F, oh, ow))
    K.conv2d_implicit_gemm_forward(y, B(x), B(weight), B(bias) if c["bias"] else None, s, p)
    assert_close(y, y64, 1e-4, 1e-5 * C * k * k, f"y {c}")

    work_shape = conv_implicit_gemm_shapes(x.shape, weight.shape, s, p)["work"]
    assert work_shape[1:] == (F, C * k * k + 1)
    if c["splits"] is not None:
        work_shape = (c["splits"], *work_shape[1:])
    work = poisoned(backend, work_shape)  # every slice is written before it is read
    dx = poisoned(backend, x.shape) if c["input_grad"] else None
    dw = poisoned(backend, weight.shape)
    db = poisoned(backend, (F,)) if c["bias"] else None
    K.conv2d_implicit_gemm_backward(dx, dw, db, work, B(dy), B(x), B(weight), s, p)
    if dx is not None:
        assert_close(dx, dx64, 1e-4, 1e-5 * F * k * k, f"dx {c}")
    assert_close(dw, dw64, 1e-4, 1e-5 * n * oh * ow, f"dweight {c}")
    if db is not None:
        assert_close(db, db64, 1e-4, 1e-5 * n * oh * ow, f"dbias {c}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_implicit_gemm_matches_the_im2col_reference(backend):
    for_all(backend, cases(backend), lambda c: run_case(backend, c), sim_examples=8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_implicit_gemm_across_tile_boundaries(backend):
    # > 64 output pixels (two pixel tiles), 17 filters and channels (two 16-wide tiles), C*K*K + 1 = 154 (three
    # weight tiles), and with stride 2 the input gradient's zero taps
    base = dict(n=2, c=17, f=17, h=7, w=7, k=3, stride=1, padding=1, splits=None, bias=True, input_grad=True, seed=5)
    if simulated(backend):
        base.update(c=3, f=17, h=6, w=6, splits=3)  # 72 pixels, 2 filter tiles: affordable in the simulator
    run_case(backend, base)
    run_case(backend, {**base, "stride": 2, "padding": 2, "bias": False, "seed": 6})


def test_the_workspace_has_enough_slices_for_the_gpu_and_none_too_short():
    # LeNet at batch 64: c2 splits its 6,400 pixels 25 ways (3 weight tiles -> 75 blocks), c1 its 50,176 196 ways
    assert conv_implicit_gemm_shapes((64, 6, 14, 14), (16, 6, 5, 5), 1, 0)["work"] == (25, 16, 151)
    assert conv_implicit_gemm_shapes((64, 1, 28, 28), (6, 1, 5, 5), 1, 2)["work"] == (196, 6, 26)
    assert conv_implicit_gemm_shapes((1, 1, 3, 3), (2, 1, 3, 3), 1, 0)["work"] == (1, 2, 10)
    assert CIG.slice_length(6400, 25, CIG.BLOCK_K) == 256


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_implicit_gemm_rejects_a_wrong_workspace(backend):
    x, weight = np.zeros((2, 1, 6, 6), np.float32), np.zeros((3, 1, 3, 3), np.float32)
    dy = np.zeros((2, 3, 4, 4), np.float32)
    with pytest.raises(ValueError, match="conv2d_implicit_gemm_backward: argument 'work'"):
        kernels(backend).conv2d_implicit_gemm_backward(None, np.zeros_like(weight), None,
                                                       np.zeros((1, 3, 9), np.float32), dy, x, weight)
    with pytest.raises(ValueError, match="conv2d_implicit_gemm_forward: argument 'y'"):
        kernels(backend).conv2d_implicit_gemm_forward(np.zeros((2, 3, 5, 5), np.float32), x, weight, None)


@pytest.mark.parametrize("device", ["numpy", "cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_conv2d_layer_runs_implicit_gemm(device):
    """Conv2D(algorithm="implicit_gemm") on every device matches the layer's im2col version."""
    from layers import Conv2D
    from runtime.device import Device

    dev = Device(device)
    rng = np.random.default_rng(3)
    x, dy = random_array(rng, (2, 2, 6, 6)), random_array(rng, (2, 3, 3, 3))
    ours = Conv2D(2, 3, 3, stride=2, padding=1, device=dev, seed=4, algorithm="implicit_gemm")
    theirs = Conv2D(2, 3, 3, stride=2, padding=1, device=Device("numpy"), seed=4, algorithm="im2col")
    assert ours.algorithm == "implicit_gemm"
    y = ours.forward(dev.asarray(x))
    assert_close(dev.to_numpy(y), theirs.forward(x.astype(np.float64)), 1e-4, 1e-4, "layer y")
    dx = ours.backward(dev.asarray(dy))
    expected_dx = theirs.backward(dy.astype(np.float64))
    assert_close(dev.to_numpy(dx), expected_dx, 1e-4, 1e-4, "layer dx")
    assert_close(dev.to_numpy(ours.weight.grad), theirs.weight.grad, 1e-4, 1e-4, "layer dweight")
    assert_close(dev.to_numpy(ours.bias.grad), theirs.bias.grad, 1e-4, 1e-4, "layer dbias")


def test_auto_stays_im2col_on_cuda_and_image_gemm_on_cpu():
    from layers import Conv2D

    assert Conv2D(1, 2, 3, device="cpu").algorithm == "image_gemm"
    assert Conv2D(1, 2, 3, device="numpy").algorithm == "im2col"
