"""The CPU's per-image convolution (conv_image_gemm.py) against the float64 im2col composition."""

import numba
import numpy as np
import pytest
from hypothesis import strategies as st
from support import assert_close, for_all, kernels, poisoned, random_array

from cuda_kernels import conv_image_gemm as CI
from cuda_kernels.shapes import conv_output_size

CASES = st.fixed_dictionaries({
    "n": st.sampled_from([1, 2, 3, 7]),  # fewer images than threads too: a thread with no image
    "c": st.sampled_from([1, 2, 6]),
    "f": st.sampled_from([1, 5, 16]),
    "h": st.sampled_from([1, 4, 5, 13, 28]),
    "w": st.sampled_from([2, 5, 9, 14]),
    "k": st.sampled_from([1, 2, 3, 5]),
    "stride": st.sampled_from([1, 2, 3]),
    "padding": st.sampled_from([0, 1, 2]),
    "bias": st.booleans(), "input_grad": st.booleans(),
    "seed": st.integers(0, 2**16),
}).filter(lambda c: conv_output_size(c["h"], c["k"], c["stride"], c["padding"]) >= 1
          and conv_output_size(c["w"], c["k"], c["stride"], c["padding"]) >= 1)


def run_case(c):
    rng = np.random.default_rng(c["seed"])
    n, C, F, H, W, k, s, p = (c[key] for key in ("n", "c", "f", "h", "w", "k", "stride", "padding"))
    oh, ow = conv_output_size(H, k, s, p), conv_output_size(W, k, s, p)
    x, weight, bias = random_array(rng, (n, C, H, W)), random_array(rng, (F, C, k, k)), random_array(rng, (F,))
    dy = random_array(rng, (n, F, oh, ow))

    ref = kernels("numpy")
    y64, cols64, rows64 = np.empty((n, F, oh, ow)), np.empty((n * oh * ow, C * k * k)), np.empty((n * oh * ow, F))
    ref.conv2d_forward(y64, cols64, rows64, x.astype(np.float64), weight.astype(np.float64),
                       bias.astype(np.float64) if c["bias"] else None, s, p)
    dx64, dw64, db64 = np.empty(x.shape), np.empty(weight.shape), np.empty(F)
    ref.conv2d_backward(dx64, dw64, db64, np.empty_like(cols64), np.empty_like(rows64), dy.astype(np.float64),
                        cols64, weight.astype(np.float64), s, p)

    # every buffer starts as NaN: an element the kernel reads before writing would show up
    shapes = CI.buffer_shapes(x.shape, weight.shape, s, p)
    y, padded = poisoned("cpu", (n, F, oh, ow)), poisoned("cpu", shapes["padded"])
    work = poisoned("cpu", shapes["work"])
    cpu = kernels("cpu")
    cpu.conv2d_image_gemm_forward(y, padded, work, x, weight, bias if c["bias"] else None, s, p)
    tol = 1e-5 * C * k * k
    assert_close(y, y64, 1e-4, tol, f"y {c}")

    dx = poisoned("cpu", x.shape) if c["input_grad"] else None
    dw, db = poisoned("cpu", weight.shape), poisoned("cpu", (F,))
    work[...] = np.nan
    cpu.conv2d_image_gemm_backward(dx, dw, db, work, dy, padded, weight, s, p)
    if dx is not None:
        assert_close(dx, dx64, 1e-4, 1e-5 * F * k * k, f"dx {c}")
    assert_close(dw, dw64, 1e-4, 1e-5 * n * oh * ow, f"dweight {c}")
    assert_close(db, db64, 1e-4, 1e-5 * n * oh * ow, f"dbias {c}")


def test_image_gemm_matches_the_im2col_reference():
    for_all("cpu", CASES, run_case)


@pytest.mark.parametrize("threads", [1, 2])
def test_image_gemm_on_one_and_two_threads(threads):
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        run_case(dict(n=5, c=6, f=16, h=14, w=14, k=5, stride=1, padding=0, bias=True, input_grad=True, seed=2))
        run_case(dict(n=3, c=1, f=6, h=28, w=28, k=5, stride=1, padding=2, bias=False, input_grad=False, seed=3))
    finally:
        numba.set_num_threads(before)


def test_image_gemm_rejects_a_workspace_without_a_row_per_thread():
    x, weight = np.zeros((2, 1, 6, 6), np.float32), np.zeros((3, 1, 3, 3), np.float32)
    shapes = CI.buffer_shapes(x.shape, weight.shape, threads=numba.get_num_threads())
    work = np.zeros((numba.get_num_threads() - 1, shapes["work"][1]) if numba.get_num_threads() > 1
                    else (1, shapes["work"][1] - 1), np.float32)
    with pytest.raises(ValueError, match="conv2d_image_gemm_forward: argument 'work'"):
        kernels("cpu").conv2d_image_gemm_forward(np.zeros((2, 3, 4, 4), np.float32), np.zeros(shapes["padded"],
                                                 np.float32), work, x, weight, None)


def test_conv2d_layer_picks_image_gemm_on_cpu_and_refuses_it_elsewhere():
    from layers import Conv2D
    from runtime.device import Device

    assert Conv2D(1, 2, 3, device="cpu").algorithm == "image_gemm"
    assert Conv2D(1, 2, 3, device="numpy").algorithm == "im2col"
    with pytest.raises(ValueError, match="runs on the cpu device only"):
        Conv2D(1, 2, 3, device=Device("numpy"), algorithm="image_gemm")
    with pytest.raises(ValueError, match="argument 'algorithm' must be one of"):
        Conv2D(1, 2, 3, algorithm="winograd")
