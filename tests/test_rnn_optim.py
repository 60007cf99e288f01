"""The RNN step (forward + BPTT over a short sequence) and the optimizer updates, on every backend."""

import numpy as np
import pytest
from hypothesis import strategies as st
from support import BACKENDS, assert_close, for_all, kernels, poisoned, random_array, simulated, to_backend


def rnn_numpy64(xs, h0, w_ih, w_hh, b, dys):
    """Independent float64 forward and BPTT (the textbook loops)."""
    hs, h = [], h0
    for x in xs:
        h = np.tanh(x @ w_ih.T + h @ w_hh.T + b)
        hs.append(h)
    dw_ih, dw_hh, db = np.zeros_like(w_ih), np.zeros_like(w_hh), np.zeros_like(b)
    dxs, dh_next = [None] * len(xs), np.zeros_like(h0)
    for t in reversed(range(len(xs))):
        dpre = (dys[t] + dh_next) * (1 - hs[t] ** 2)
        h_prev = hs[t - 1] if t else h0
        dw_ih += dpre.T @ xs[t]
        dw_hh += dpre.T @ h_prev
        db += dpre.sum(0)
        dxs[t] = dpre @ w_ih
        dh_next = dpre @ w_hh
    return hs, dxs, dh_next, dw_ih, dw_hh, db


@pytest.mark.parametrize("backend", BACKENDS)
def test_rnn_forward_and_bptt(backend):
    def check(c):
        rng = np.random.default_rng(c["seed"])
        n, i_size, h_size, steps = c["n"], c["i"], c["h"], c["t"]
        xs = [random_array(rng, (n, i_size)) for _ in range(steps)]
        dys = [random_array(rng, (n, h_size)) for _ in range(steps)]
        h0 = random_array(rng, (n, h_size), 0.5)
        w_ih, w_hh, b = (random_array(rng, s, 0.4) for s in [(h_size, i_size), (h_size, h_size), (h_size,)])
        k, B = kernels(backend), (lambda a: to_backend(backend, a))
        X, W_ih, W_hh, Bb = [B(x) for x in xs], B(w_ih), B(w_hh), B(b)
        hs = [poisoned(backend, (n, h_size)) for _ in range(steps)]
        H0 = B(h0)
        for t in range(steps):
            k.rnn_step_forward(hs[t], X[t], hs[t - 1] if t else H0, W_ih, W_hh, Bb)
        f64 = [a.astype(np.float64) for a in (h0, w_ih, w_hh, b)]
        hs64, dxs64, dh0_64, dw_ih64, dw_hh64, db64 = rnn_numpy64([x.astype(np.float64) for x in xs], *f64,
                                                                  [d.astype(np.float64) for d in dys])
        for t in range(steps):
            assert_close(hs[t], hs64[t], 1e-4, 1e-5, f"h[{t}]")
        dw_ih, dw_hh, db = poisoned(backend, w_ih.shape), poisoned(backend, w_hh.shape), poisoned(backend, b.shape)
        dpre, dh_next, dh_prev = poisoned(backend, (n, h_size)), B(np.zeros((n, h_size), np.float32)), \
            poisoned(backend, (n, h_size))
        for t in reversed(range(steps)):
            dx = poisoned(backend, (n, i_size))
            k.rnn_step_backward(dx, dh_prev, dw_ih, dw_hh, db, dpre, B(dys[t]), dh_next, hs[t], X[t],
                                hs[t - 1] if t else H0, W_ih, W_hh, accumulate=t != steps - 1)
            assert_close(dx, dxs64[t], 1e-4, 1e-4, f"dx[{t}]")
            dh_next, dh_prev = dh_prev, dh_next
        assert_close(dh_next, dh0_64, 1e-4, 1e-4, "dh0")
        assert_close(dw_ih, dw_ih64, 1e-4, 1e-4 * n * steps, "dw_ih")
        assert_close(dw_hh, dw_hh64, 1e-4, 1e-4 * n * steps, "dw_hh")
        assert_close(db, db64, 1e-4, 1e-4 * n * steps, "dbias")

    sizes = st.sampled_from([1, 3, 17] if simulated(backend) else [1, 7, 16, 33, 64])
    case = st.fixed_dictionaries({"n": sizes, "i": sizes, "h": sizes, "t": st.integers(1, 3),
                                  "seed": st.integers(0, 2**16)})
    for_all(backend, case, check, sim_examples=2)


OPTIMIZERS = {
    "sgd": ("sgd_step", ["momentum_buf"], st.fixed_dictionaries({
        "lr": st.sampled_from([0.1, 0.01]), "momentum": st.sampled_from([0.0, 0.9]),
        "dampening": st.sampled_from([0.0, 0.1]), "weight_decay": st.sampled_from([0.0, 1e-2]),
        "nesterov": st.booleans()}).filter(lambda h: not h["nesterov"] or (h["momentum"] > 0 and h["dampening"] == 0))),
    "adagrad": ("adagrad_step", ["sum_sq"], st.fixed_dictionaries({
        "lr": st.sampled_from([0.1, 0.01]), "eps": st.sampled_from([1e-10, 1e-6]),
        "weight_decay": st.sampled_from([0.0, 1e-2]), "lr_decay": st.sampled_from([0.0, 0.01])})),
    "rmsprop": ("rmsprop_step", ["square_avg", "momentum_buf"], st.fixed_dictionaries({
        "lr": st.sampled_from([0.01, 0.001]), "alpha": st.sampled_from([0.99, 0.9]), "eps": st.sampled_from([1e-8]),
        "weight_decay": st.sampled_from([0.0, 1e-2]), "momentum": st.sampled_from([0.0, 0.9])})),
    "adam": ("adam_step", ["exp_avg", "exp_avg_sq"], st.fixed_dictionaries({
        "lr": st.sampled_from([1e-3, 1e-2]), "beta1": st.sampled_from([0.9, 0.5]),
        "beta2": st.sampled_from([0.999, 0.99]), "eps": st.sampled_from([1e-8]),
        "weight_decay": st.sampled_from([0.0, 1e-2]), "decoupled_weight_decay": st.booleans()})),
}
STEPPED = {"adagrad", "adam"}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_matches_pytorch_formulas_over_several_steps(backend, name):
    op, state_names, hyper = OPTIMIZERS[name]

    def check(c):
        rng = np.random.default_rng(c["seed"])
        size, h = c["size"], c["hyper"]
        p0 = random_array(rng, (size,))
        grads = [random_array(rng, (size,)) for _ in range(4)]
        p64, state64 = p0.astype(np.float64), [np.zeros(size) for _ in state_names]
        p, state = to_backend(backend, p0), [to_backend(backend, np.zeros(size, np.float32)) for _ in state_names]
        for step, g in enumerate(grads, start=1):
            extra = {"step": step} if name in STEPPED else ({"first_step": step == 1} if name == "sgd" else {})
            getattr(kernels("numpy"), op)(p64, *state64, g.astype(np.float64), **h, **extra)
            getattr(kernels(backend), op)(p, *state, to_backend(backend, g), **h, **extra)
        # float32 rounding of terms that cancel: the absolute error scales with the largest value
        assert_close(p, p64, 1e-5, 2e-6 * max(1.0, np.abs(p64).max()), f"{name} params")
        for s, s64, label in zip(state, state64, state_names):
            assert_close(s, s64, 1e-4, 2e-6 * max(1.0, np.abs(s64).max()), f"{name} {label}")

    sizes = [1, 31, 33, 65] if simulated(backend) else [1, 31, 32, 33, 1000, 100_003]
    for_all(backend, st.fixed_dictionaries({"size": st.sampled_from(sizes), "hyper": hyper,
                                            "seed": st.integers(0, 2**16)}), check, sim_examples=2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sgd_first_step_and_no_momentum_never_read_the_buffer(backend):
    # The momentum buffer is read only when the update uses it: on SGD's first step it becomes g whatever
    # it held (NaN here), and without momentum the kernels get params itself in its place.
    rng = np.random.default_rng(3)
    p0, g = random_array(rng, (37,)), random_array(rng, (37,))
    k = kernels(backend)
    for momentum, buffer in ((0.9, "nan"), (0.0, None)):
        p64, buf64 = p0.astype(np.float64), np.zeros(37)
        kernels("numpy").sgd_step(p64, buf64, g.astype(np.float64), lr=0.1, momentum=momentum, first_step=True)
        p = to_backend(backend, p0)
        buf = poisoned(backend, (37,)) if buffer == "nan" else None
        k.sgd_step(p, buf, to_backend(backend, g), lr=0.1, momentum=momentum, first_step=True)
        assert_close(p, p64, 1e-6, 1e-6, f"sgd params, momentum {momentum}")
        if buf is not None:
            assert_close(buf, buf64, 1e-6, 1e-6, "sgd momentum buffer after the first step")
    p64 = p0.astype(np.float64)
    kernels("numpy").rmsprop_step(p64, np.zeros(37), None, g.astype(np.float64), lr=0.01)
    p = to_backend(backend, p0)
    k.rmsprop_step(p, to_backend(backend, np.zeros(37, np.float32)), None, to_backend(backend, g), lr=0.01)
    assert_close(p, p64, 1e-5, 1e-6, "rmsprop params without momentum")


def test_adam_first_step_moves_each_weight_by_lr_against_its_gradient_sign():
    # a closed form of PyTorch's Adam: after one step, m_hat = g and v_hat = g^2, so p -= lr * g/(|g| + eps)
    p, m, v = np.zeros(3), np.zeros(3), np.zeros(3)
    kernels("numpy").adam_step(p, m, v, np.array([2.0, -0.5, 1e-3]), lr=0.1, eps=0.0, step=1)
    np.testing.assert_allclose(p, [-0.1, 0.1, -0.1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_decaying_optimizer_state_is_flushed_to_zero_not_left_subnormal(backend):
    # A weight whose gradient stays 0 (a dead ReLU's) has its momentum decay 0.9x a step into the subnormal
    # range, which Intel cores compute through microcode assists. State below the smallest normal float32
    # is stored as 0 on every backend (the GPU's fastmath flushes the same way); normal state is not touched.
    tiny = np.finfo(np.float32).tiny
    # the first two fall under tiny in one step at any decay rate used here (0.9 to 0.999), the others do not
    start = np.array([tiny * 1.0005, tiny * 1.0001, 1e-3, tiny * 100], np.float32)
    zero = np.zeros(4, np.float32)
    k = kernels(backend)
    for op, state in (("adam_step", 2), ("sgd_step", 1), ("rmsprop_step", 2)):
        buffers = [to_backend(backend, start.copy()) for _ in range(state)]
        p = to_backend(backend, np.ones(4, np.float32))
        extra = {"step": 5} if op == "adam_step" else ({"momentum": 0.9, "first_step": False} if op == "sgd_step"
                                                        else {"momentum": 0.9})
        getattr(k, op)(p, *buffers, to_backend(backend, zero), lr=1e-3, **extra)
        for buf in buffers:
            out = np.asarray(buf.copy_to_host() if backend == "cuda" else buf)
            if backend == "numpy":
                continue  # the float64-capable reference keeps exact values
            assert not np.any((out != 0) & (np.abs(out) < tiny)), (op, out)
            assert out[0] == 0 and out[1] == 0 and out[2] != 0 and out[3] != 0, (op, out)


def test_optimizer_bad_arguments():
    k = kernels("cpu")
    p = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"adam_step: argument 'grads' expects shape \(4,\)"):
        k.adam_step(p, np.zeros(4, np.float32), np.zeros(4, np.float32), np.zeros(5, np.float32), lr=0.1)
    with pytest.raises(ValueError, match="'step' counts from 1"):
        k.adam_step(p, np.zeros(4, np.float32), np.zeros(4, np.float32), np.zeros(4, np.float32), lr=0.1, step=0)
    with pytest.raises(ValueError, match="expects a 1-D array"):
        k.sgd_step(np.zeros((2, 2), np.float32), None, np.zeros((2, 2), np.float32), lr=0.1)
