"""LSTM and GRU: the fused cell ops on every backend (Hypothesis, against float64 formulas written here), the
layers against a pure-NumPy float64 forward and BPTT, gradient checks in float64, initial states and their
gradients, and, where PyTorch is installed, agreement with torch.nn.LSTM / torch.nn.GRU with the same weights."""

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
from engine import Device, Sequential, gradcheck, load, save

DEVICES = ["numpy", "cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ------------------------------------------------------------------------------------------------
# float64 formulas, written out independently of the kernel layer
# ------------------------------------------------------------------------------------------------


def lstm_cell64(pre, c_prev):
    i, f, g, o = np.split(pre, 4, axis=1)
    i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
    c = f * c_prev + i * g
    return o * np.tanh(c), c, np.concatenate([i, f, g, o], axis=1)


def lstm_cell_backward64(dh, dc_next, gates, c, c_prev):
    i, f, g, o = np.split(gates, 4, axis=1)
    tc = np.tanh(c)
    dc = dc_next + dh * o * (1 - tc ** 2)
    dpre = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                           dh * tc * o * (1 - o)], axis=1)
    return dpre, dc * f


def gru_cell64(xproj, hproj, h_prev):
    xr, xz, xn = np.split(xproj, 3, axis=1)
    hr, hz, hn = np.split(hproj, 3, axis=1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return (1 - z) * n + z * h_prev, np.concatenate([r, z, n], axis=1)


def gru_cell_backward64(dh, gates, hproj, h_prev):
    r, z, n = np.split(gates, 3, axis=1)
    hn = np.split(hproj, 3, axis=1)[2]
    dn = dh * (1 - z) * (1 - n ** 2)
    dz = dh * (h_prev - n) * z * (1 - z)
    dr = dn * hn * r * (1 - r)
    return np.concatenate([dr, dz, dn], axis=1), np.concatenate([dr, dz, dn * r], axis=1), dh * z


def lstm_sequence64(x, w_ih, w_hh, b_ih, b_hh, h0, c0, dy):
    """Forward and BPTT over (N, T, I), the textbook loops; returns y, (h_T, c_T), grads."""
    n, t, _ = x.shape
    hs, cs, gs = [h0], [c0], []
    for s in range(t):
        h, c, g = lstm_cell64(x[:, s] @ w_ih.T + b_ih + hs[-1] @ w_hh.T + b_hh, cs[-1])
        hs.append(h)
        cs.append(c)
        gs.append(g)
    grads = {k: np.zeros_like(v) for k, v in (("weight_ih", w_ih), ("weight_hh", w_hh), ("bias_ih", b_ih),
                                               ("bias_hh", b_hh))}
    dx, dh_next, dc_next = np.zeros_like(x), np.zeros_like(h0), np.zeros_like(c0)
    for s in reversed(range(t)):
        dpre, dc_next = lstm_cell_backward64(dy[:, s] + dh_next, dc_next, gs[s], cs[s + 1], cs[s])
        grads["weight_ih"] += dpre.T @ x[:, s]
        grads["weight_hh"] += dpre.T @ hs[s]
        grads["bias_ih"] += dpre.sum(0)
        grads["bias_hh"] += dpre.sum(0)
        dx[:, s] = dpre @ w_ih
        dh_next = dpre @ w_hh
    return np.stack(hs[1:], axis=1), (hs[-1], cs[-1]), dx, grads, (dh_next, dc_next)


def gru_sequence64(x, w_ih, w_hh, b_ih, b_hh, h0, dy):
    n, t, _ = x.shape
    hs, gs, hps = [h0], [], []
    for s in range(t):
        hp = hs[-1] @ w_hh.T + b_hh
        h, g = gru_cell64(x[:, s] @ w_ih.T + b_ih, hp, hs[-1])
        hs.append(h)
        gs.append(g)
        hps.append(hp)
    grads = {k: np.zeros_like(v) for k, v in (("weight_ih", w_ih), ("weight_hh", w_hh), ("bias_ih", b_ih),
                                               ("bias_hh", b_hh))}
    dx, dh_next = np.zeros_like(x), np.zeros_like(h0)
    for s in reversed(range(t)):
        dxp, dhp, direct = gru_cell_backward64(dy[:, s] + dh_next, gs[s], hps[s], hs[s])
        grads["weight_ih"] += dxp.T @ x[:, s]
        grads["weight_hh"] += dhp.T @ hs[s]
        grads["bias_ih"] += dxp.sum(0)
        grads["bias_hh"] += dhp.sum(0)
        dx[:, s] = dxp @ w_ih
        dh_next = direct + dhp @ w_hh
    return np.stack(hs[1:], axis=1), hs[-1], dx, grads, dh_next


# ------------------------------------------------------------------------------------------------
# The cell ops, every backend
# ------------------------------------------------------------------------------------------------


def cell_sizes(backend):
    # the simulator's blocks are 32 threads (2 at most): N*H around 32 and 64 straddles them; elsewhere
    # around the GPU's 256-thread block as well
    if simulated(backend):
        return st.sampled_from([1, 2, 5]), st.sampled_from([1, 3, 16, 17])
    return straddling(16, 70), straddling(32, 140)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lstm_cell_forward_and_backward_match_float64(backend):
    def check(c):
        rng = np.random.default_rng(c["seed"])
        n, hid = c["n"], c["h"]
        pre, c_prev = random_array(rng, (n, 4 * hid), c["scale"]), random_array(rng, (n, hid))
        dh_out, dh_next, dc_next = (random_array(rng, (n, hid)) for _ in range(3))
        k, B = kernels(backend), (lambda a: to_backend(backend, a))
        h, cc = poisoned(backend, (n, hid)), poisoned(backend, (n, hid))
        PRE = B(pre.copy())  # on the host backends to_backend returns the array itself: keep pre
        gates = PRE if c["in_place"] else poisoned(backend, (n, 4 * hid))
        k.lstm_cell_forward(h, cc, gates, PRE, B(c_prev))
        h64, c64, g64 = lstm_cell64(pre.astype(np.float64), c_prev.astype(np.float64))
        assert_close(h, h64, 1e-5, 1e-6, "h")
        assert_close(cc, c64, 1e-5, 1e-6, "c")
        assert_close(gates, g64, 1e-5, 1e-6, "gates")
        dpre, dc_prev = poisoned(backend, (n, 4 * hid)), poisoned(backend, (n, hid))
        k.lstm_cell_backward(dpre, dc_prev, B(dh_out), B(dh_next), B(dc_next), gates, cc, B(c_prev))
        # from the float32 gates and c the kernel saw, so that only the backward's own rounding is measured
        dpre64, dc_prev64 = lstm_cell_backward64((dh_out + dh_next).astype(np.float64), dc_next.astype(np.float64),
                                                 to_host(gates).astype(np.float64), to_host(cc).astype(np.float64),
                                                 c_prev.astype(np.float64))
        assert_close(dpre, dpre64, 1e-5, 1e-5, "dpre")
        assert_close(dc_prev, dc_prev64, 1e-5, 1e-5, "dc_prev")

    n, h = cell_sizes(backend)
    case = st.fixed_dictionaries({"n": n, "h": h, "scale": st.sampled_from([0.5, 3.0]), "in_place": st.booleans(),
                                  "seed": st.integers(0, 2**16)})
    for_all(backend, case, check, sim_examples=3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gru_cell_forward_and_backward_match_float64(backend):
    def check(c):
        rng = np.random.default_rng(c["seed"])
        n, hid = c["n"], c["h"]
        xproj, hproj = random_array(rng, (n, 3 * hid), c["scale"]), random_array(rng, (n, 3 * hid), c["scale"])
        h_prev, dh_out, dh_next = (random_array(rng, (n, hid)) for _ in range(3))
        k, B = kernels(backend), (lambda a: to_backend(backend, a))
        h, XP = poisoned(backend, (n, hid)), B(xproj.copy())
        gates = XP if c["in_place"] else poisoned(backend, (n, 3 * hid))
        HP, HPREV = B(hproj), B(h_prev)
        k.gru_cell_forward(h, gates, XP, HP, HPREV)
        h64, g64 = gru_cell64(xproj.astype(np.float64), hproj.astype(np.float64), h_prev.astype(np.float64))
        assert_close(h, h64, 1e-5, 1e-6, "h")
        assert_close(gates, g64, 1e-5, 1e-6, "gates")
        dxp, dhp, dh_prev = (poisoned(backend, s) for s in ((n, 3 * hid), (n, 3 * hid), (n, hid)))
        k.gru_cell_backward(dxp, dhp, dh_prev, B(dh_out), B(dh_next), gates, HP, HPREV)
        dxp64, dhp64, direct64 = gru_cell_backward64((dh_out + dh_next).astype(np.float64),
                                                     to_host(gates).astype(np.float64), hproj.astype(np.float64),
                                                     h_prev.astype(np.float64))
        assert_close(dxp, dxp64, 1e-5, 1e-5, "dxproj")
        assert_close(dhp, dhp64, 1e-5, 1e-5, "dhproj")
        assert_close(dh_prev, direct64, 1e-5, 1e-5, "dh_prev (direct part)")

    n, h = cell_sizes(backend)
    case = st.fixed_dictionaries({"n": n, "h": h, "scale": st.sampled_from([0.5, 3.0]), "in_place": st.booleans(),
                                  "seed": st.integers(0, 2**16)})
    for_all(backend, case, check, sim_examples=3)


# the simulator computes exp in Python floats and warns when it casts exp(100) to a float32 inf
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("backend", BACKENDS)
def test_saturated_gates_stay_finite_and_exact(backend):
    # sigmoid(-100) = 1/(1 + exp(100)), exp overflowing to inf in float32, must still give 0; tanh(+-100) = +-1
    # (to the CPU twin's rational tanh: 3 ulp)
    big = np.array([[-100.0, 100.0, -60.0, 60.0]], np.float32)
    k, B = kernels(backend), (lambda a: to_backend(backend, a))
    pre = np.tile(big, (1, 4))  # every gate sees the four extremes
    h, c, gates = poisoned(backend, (1, 4)), poisoned(backend, (1, 4)), poisoned(backend, (1, 16))
    c_prev = np.array([[1.0, -2.0, 0.5, 0.0]], np.float32)
    k.lstm_cell_forward(h, c, gates, B(pre), B(c_prev))
    h64, c64, g64 = lstm_cell64(pre.astype(np.float64), c_prev.astype(np.float64))
    assert_close(gates, g64, 0, 3e-7, "saturated LSTM gates")
    assert_close(c, c64, 1e-6, 3e-7, "LSTM c")
    assert_close(h, h64, 1e-6, 3e-7, "LSTM h")
    xproj, hproj = np.tile(big, (1, 3)), np.tile(big[:, ::-1], (1, 3)) * 0.5
    hg, g = poisoned(backend, (1, 4)), poisoned(backend, (1, 12))
    k.gru_cell_forward(hg, g, B(xproj), B(hproj), B(c_prev))
    h64, g64 = gru_cell64(xproj.astype(np.float64), hproj.astype(np.float64), c_prev.astype(np.float64))
    assert_close(g, g64, 0, 3e-7, "saturated GRU gates")
    assert_close(hg, h64, 1e-6, 3e-7, "GRU h")


SEQUENCE_VERSIONS = [pytest.param(("numpy", None, None), id="numpy"),
                     pytest.param(("cpu", "fused", False), id="cpu-fused"),
                     pytest.param(("cpu", "fused", True), id="cpu-fused-k-pieces"),
                     pytest.param(("cpu", "steps", True), id="cpu-steps-k-pieces"),
                     pytest.param(("cuda", None, None), id="cuda-sim" if simulated("cuda") else "cuda",
                                  marks=pytest.mark.gpu)]


@pytest.mark.parametrize("version", SEQUENCE_VERSIONS)
def test_lstm_sequence_ops_match_the_cell_step_by_step_in_float64(version, monkeypatch):
    # the whole recurrence (forward and BPTT) against the float64 cell formulas looped here; on the CPU both
    # versions, with and without the Haswell kernels' K in pieces of 128 (backward's K = 4H = 132 straddles it)
    backend, cpu_version, blocked = version
    if blocked is not None:
        import cuda_kernels.blas_calls as blas_calls

        monkeypatch.setattr(blas_calls, "_HASWELL_KERNELS", [blocked])
    k, B = kernels(backend), (lambda a: to_backend(backend, a))
    kw = {"version": cpu_version} if cpu_version else {}
    sizes = [(2, 2, 3)] if simulated(backend) else [(3, 5, 33), (1, 1, 1), (4, 2, 40)]
    for t, n, hid in sizes:
        rng = np.random.default_rng(t * 100 + n * 10 + hid)
        xproj, w = random_array(rng, (t, n, 4 * hid)), random_array(rng, (4 * hid, hid), 0.3)
        b = random_array(rng, (4 * hid,))
        h0, c0, dys = random_array(rng, (n, hid)), random_array(rng, (n, hid)), random_array(rng, (t, n, hid))
        hs64, cs64, gates64 = [h0.astype(np.float64)], [c0.astype(np.float64)], []
        for step in range(t):
            h, c, g = lstm_cell64(xproj[step] + hs64[-1] @ w.T + b, cs64[-1])
            hs64, cs64, gates64 = hs64 + [h], cs64 + [c], gates64 + [g]
        hs, cs = np.full((t + 1, n, hid), np.nan, np.float32), np.full((t + 1, n, hid), np.nan, np.float32)
        hs[0], cs[0] = h0, c0  # the initial states; every later row must be written
        hs, cs = B(hs), B(cs)
        gates = B(xproj.copy())
        k.lstm_sequence_forward(hs, cs, gates, B(w), B(b), **kw)
        assert_close(hs, np.stack(hs64), 2e-5, 2e-5, "hs")
        assert_close(cs, np.stack(cs64), 2e-5, 2e-5, "cs")
        assert_close(gates, np.stack(gates64), 2e-5, 2e-5, "gates")
        for initial_h_grad in (True, False):
            dh, dc, dpre = poisoned(backend, (n, hid)), poisoned(backend, (n, hid)), poisoned(backend, (t, n, 4 * hid))
            k.lstm_sequence_backward(dpre, dh, dc, B(dys), gates, cs, B(w), initial_h_grad, **kw)
            # from the float32 gates and states the kernels saw, as the cell test does
            g32, c32 = to_host(gates).astype(np.float64), to_host(cs).astype(np.float64)
            dh64, dc64, dpre64 = np.zeros((n, hid)), np.zeros((n, hid)), np.zeros((t, n, 4 * hid))
            for step in reversed(range(t)):
                dpre64[step], dc64 = lstm_cell_backward64(dys[step] + dh64, dc64, g32[step], c32[step + 1], c32[step])
                dh64 = dpre64[step] @ w
            assert_close(dpre, dpre64, 2e-5, 2e-5, "dpre")
            assert_close(dc, dc64, 2e-5, 2e-5, "dc (c0's gradient)")
            if initial_h_grad:
                assert_close(dh, dh64, 2e-5, 2e-5, "dh (h0's gradient)")


def test_sequence_ops_name_the_wrong_argument():
    k, z = kernels("cpu"), np.float32
    f = np.zeros
    with pytest.raises(ValueError, match=r"lstm_sequence_forward: argument 'gates' expects a last axis of 4 \* hidden"):
        k.lstm_sequence_forward(f((3, 2, 3), z), f((3, 2, 3), z), f((2, 2, 10), z), f((12, 3), z), f((12,), z))
    with pytest.raises(ValueError, match=r"lstm_sequence_forward: argument 'hs' expects shape \(3, 2, 3\)"):
        k.lstm_sequence_forward(f((2, 2, 3), z), f((3, 2, 3), z), f((2, 2, 12), z), f((12, 3), z), f((12,), z))
    with pytest.raises(ValueError, match=r"lstm_sequence_backward: argument 'weight_hh' expects shape \(12, 3\)"):
        k.lstm_sequence_backward(f((2, 2, 12), z), f((2, 3), z), f((2, 3), z), f((2, 2, 3), z), f((2, 2, 12), z),
                                 f((3, 2, 3), z), f((3, 12), z))
    with pytest.raises(ValueError, match=r"lstm_sequence: argument 'version' .*fused"):
        k.lstm_sequence_forward(f((3, 2, 3), z), f((3, 2, 3), z), f((2, 2, 12), z), f((12, 3), z), f((12,), z),
                                version="fast")


def test_cell_ops_name_the_wrong_argument():
    k = kernels("cpu")
    f = np.zeros
    z = np.float32
    with pytest.raises(ValueError, match=r"lstm_cell_forward: argument 'pre' expects shape \(2, 12\)"):
        k.lstm_cell_forward(f((2, 3), z), f((2, 3), z), f((2, 12), z), f((2, 9), z), f((2, 3), z))
    with pytest.raises(TypeError, match=r"lstm_cell_forward: argument 'c_prev' expects dtype float32"):
        k.lstm_cell_forward(f((2, 3), z), f((2, 3), z), f((2, 12), z), f((2, 12), z), f((2, 3)))
    with pytest.raises(ValueError, match=r"lstm_cell_backward: argument 'dc_next' expects shape \(2, 3\)"):
        k.lstm_cell_backward(f((2, 12), z), f((2, 3), z), f((2, 3), z), f((2, 3), z), f((3, 3), z), f((2, 12), z),
                             f((2, 3), z), f((2, 3), z))
    with pytest.raises(ValueError, match=r"gru_cell_forward: argument 'hproj' expects shape \(2, 9\)"):
        k.gru_cell_forward(f((2, 3), z), f((2, 9), z), f((2, 9), z), f((2, 12), z), f((2, 3), z))
    with pytest.raises(ValueError, match=r"gru_cell_backward: argument 'h_prev' expects a 2-D array"):
        k.gru_cell_backward(f((2, 9), z), f((2, 9), z), f((2, 3), z), f((2, 3), z), f((2, 3), z), f((2, 9), z),
                            f((2, 9), z), f((6,), z))
    with pytest.raises(TypeError, match="float arguments must share one dtype"):
        kernels("numpy").gru_cell_forward(f((2, 3)), f((2, 9)), f((2, 9)), f((2, 9), z), f((2, 3)))
    with pytest.raises(TypeError, match="argument .c_prev. must be a CUDA device array"):
        kernels("cuda").lstm_cell_forward(f((2, 3), z), f((2, 3), z), f((2, 12), z), f((2, 12), z), f((2, 3), z))


# ------------------------------------------------------------------------------------------------
# The layers
# ------------------------------------------------------------------------------------------------


def host_params(layer):
    return [p.numpy().astype(np.float64) for p in layer.parameters()]


def layer_case(cls, device, n, t, i_size, hid, seed, with_initial):
    rng = np.random.default_rng(seed)
    layer = cls(i_size, hid, device=device, seed=seed)
    x, dy = rng.standard_normal((n, t, i_size)), rng.standard_normal((n, t, hid))
    states = [rng.standard_normal((n, hid)) * 0.5 for _ in range(2 if cls is L.LSTM else 1)] if with_initial else None
    return layer, x, dy, states


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("with_initial", [False, True], ids=["zero-state", "initial-state"])
def test_lstm_layer_matches_numpy_float64(device, with_initial):
    dev = Device(device)
    sizes = [(2, 3, 3, 4)] if dev.simulator else [(2, 3, 3, 4), (5, 7, 6, 33)]
    for n, t, i_size, hid in sizes:
        layer, x, dy, states = layer_case(L.LSTM, dev, n, t, i_size, hid, 7, with_initial)
        h0, c0 = states if with_initial else (np.zeros((n, hid)), np.zeros((n, hid)))
        y64, (hT, cT), dx64, grads64, (dh0_64, dc0_64) = lstm_sequence64(x, *host_params(layer), h0, c0, dy)
        kwargs = {"h0": dev.asarray(h0), "c0": dev.asarray(c0)} if with_initial else {}
        tol = 1e-12 if device == "numpy" else 2e-5
        y = layer.forward(dev.asarray(x), **kwargs)
        assert tuple(y.shape) == (n, t, hid)
        assert_close(dev.to_numpy(y), y64, tol, tol, "y")
        h_last, c_last = layer.last_state
        assert_close(dev.to_numpy(h_last), hT, tol, tol, "h_T")
        assert_close(dev.to_numpy(c_last), cT, tol, tol, "c_T")
        dx = layer.backward(dev.asarray(dy))
        assert_close(dev.to_numpy(dx), dx64, tol, tol, "dx")
        for p in layer.parameters():
            assert_close(dev.to_numpy(p.grad), grads64[p.name], tol, tol * n * t, p.name)
        dh0, dc0 = layer.initial_state_grad
        if with_initial:
            assert_close(dev.to_numpy(dh0), dh0_64, tol, tol, "dh0")
            assert_close(dev.to_numpy(dc0), dc0_64, tol, tol, "dc0")
        else:
            assert dh0 is None and dc0 is None


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("with_initial", [False, True], ids=["zero-state", "initial-state"])
def test_gru_layer_matches_numpy_float64(device, with_initial):
    dev = Device(device)
    sizes = [(2, 3, 3, 4)] if dev.simulator else [(2, 3, 3, 4), (5, 7, 6, 33)]
    for n, t, i_size, hid in sizes:
        layer, x, dy, states = layer_case(L.GRU, dev, n, t, i_size, hid, 8, with_initial)
        h0 = states[0] if with_initial else np.zeros((n, hid))
        y64, hT, dx64, grads64, dh0_64 = gru_sequence64(x, *host_params(layer), h0, dy)
        tol = 1e-12 if device == "numpy" else 2e-5
        y = layer.forward(dev.asarray(x), h0=dev.asarray(h0) if with_initial else None)
        assert_close(dev.to_numpy(y), y64, tol, tol, "y")
        assert_close(dev.to_numpy(layer.last_state), hT, tol, tol, "h_T")
        dx = layer.backward(dev.asarray(dy))
        assert_close(dev.to_numpy(dx), dx64, tol, tol, "dx")
        for p in layer.parameters():
            assert_close(dev.to_numpy(p.grad), grads64[p.name], tol, tol * n * t, p.name)
        if with_initial:
            assert_close(dev.to_numpy(layer.initial_state_grad), dh0_64, tol, tol, "dh0")
        else:
            assert layer.initial_state_grad is None


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("cls", [L.LSTM, L.GRU], ids=["lstm", "gru"])
def test_layer_gradcheck_float64(device, cls):
    result = gradcheck(cls(3, 4, device=Device(device)), (2, 3, 3), seed=1)
    assert result.ok, str(result)
    assert set(result.worst) == {"input", "weight_ih", "weight_hh", "bias_ih", "bias_hh"}


@pytest.mark.parametrize("cls", [L.LSTM, L.GRU], ids=["lstm", "gru"])
def test_initial_state_gradients_match_central_differences(cls):
    # float64, on the reference device: f = sum(forward(x, states) * r), nudged one state element at a time
    dev = Device("numpy")
    layer, x, r, states = layer_case(cls, dev, 2, 3, 3, 4, 5, True)

    def f():
        return float(np.sum(layer.forward(x, *states) * r))

    f()
    layer.backward(r)
    analytic = layer.initial_state_grad if cls is L.LSTM else (layer.initial_state_grad,)
    analytic = [np.array(a) for a in analytic]
    eps = 1e-6
    for state, grad in zip(states, analytic):
        numeric = np.zeros_like(state)
        for index in np.ndindex(state.shape):
            old = state[index]
            state[index] = old + eps
            up = f()
            state[index] = old - eps
            down = f()
            state[index] = old
            numeric[index] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-8)


def test_layers_follow_pytorch_shapes_and_init():
    lstm, gru = L.LSTM(5, 7, seed=1), L.GRU(5, 7, seed=1)
    for layer, gates in ((lstm, 4), (gru, 3)):
        names = [p.name for p in layer.parameters()]
        assert names == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
        assert [p.shape for p in layer.parameters()] == [(gates * 7, 5), (gates * 7, 7), (gates * 7,), (gates * 7,)]
        bound = 1 / np.sqrt(7)
        for p in layer.parameters():
            values = p.numpy()
            assert np.abs(values).max() <= bound and np.abs(values).max() > 0.8 * bound
        assert layer.config() == {"input_size": 5, "hidden_size": 7}
        assert repr(layer) == f"{type(layer).__name__}(input_size=5, hidden_size=7)"


def test_layer_errors_name_the_argument():
    with pytest.raises(ValueError, match="LSTM: hidden_size must be a positive integer, got 0"):
        L.LSTM(3, 0)
    with pytest.raises(ValueError, match="GRU: input_size must be a positive integer, got -1"):
        L.GRU(-1, 3)
    lstm, gru = L.LSTM(3, 4), L.GRU(3, 4)
    x = np.zeros((2, 5, 3), np.float32)
    with pytest.raises(ValueError, match=r"LSTM.forward: expected \(batch, time, 3\), got shape \(2, 5, 4\)"):
        lstm.forward(np.zeros((2, 5, 4), np.float32))
    with pytest.raises(ValueError, match=r"LSTM.forward: expected c0 of shape \(2, 4\) \(batch, hidden_size\)"):
        lstm.forward(x, c0=np.zeros((1, 2, 4), np.float32))
    with pytest.raises(TypeError, match="GRU.forward: expected h0 of dtype float32"):
        gru.forward(x, h0=np.zeros((2, 4)))
    with pytest.raises(TypeError, match="GRU.forward: expected h0 as an array"):
        gru.forward(x, h0=[[0.0] * 4] * 2)
    with pytest.raises(RuntimeError, match="run forward first"):
        _ = L.GRU(3, 4).last_state
    with pytest.raises(RuntimeError, match="backward called before forward"):
        L.LSTM(3, 4).backward(np.zeros((2, 5, 4), np.float32))
    assert L.LSTM(3, 4).initial_state_grad == (None, None)


def test_buffers_are_allocated_once_per_batch_shape():
    layer = L.LSTM(3, 4)
    x, dy = np.ones((2, 5, 3), np.float32), np.ones((2, 5, 4), np.float32)
    layer.forward(x, h0=np.zeros((2, 4), np.float32))
    layer.backward(dy)
    before = {name: id(buf) for name, buf in layer._buffers.items()}
    layer.forward(x * 0.5, h0=np.ones((2, 4), np.float32))
    layer.backward(dy)
    assert {name: id(buf) for name, buf in layer._buffers.items()} == before
    layer.forward(np.ones((3, 5, 3), np.float32))  # a new batch size: new buffers, and no initial-state grads
    layer.backward(np.ones((3, 5, 4), np.float32))
    assert layer._buffers["xs"].shape == (5, 3, 3) and layer.initial_state_grad == (None, None)


@pytest.mark.parametrize("cls", [L.LSTM, L.GRU], ids=["lstm", "gru"])
def test_in_a_sequential_model_with_a_checkpoint(cls, tmp_path):
    # the first layer of a model computes no input gradient; its parameters live in the flat buffer
    model = Sequential(cls(3, 5, seed=2), L.LastTimeStep(), L.Dense(5, 2, seed=3))
    x = np.random.default_rng(0).standard_normal((4, 6, 3)).astype(np.float32)
    y = np.array(model.forward(x))
    assert model.backward(np.ones((4, 2), np.float32)) is None
    assert np.abs(model.layers[0].weight_hh.grad).max() > 0
    save(tmp_path / "m.npz", model)
    restored, _ = load(tmp_path / "m.npz")
    assert type(restored.layers[0]) is cls
    np.testing.assert_array_equal(np.array(restored.forward(x)), y)


# ------------------------------------------------------------------------------------------------
# PyTorch, where installed: the same weights give the same outputs and gradients
# ------------------------------------------------------------------------------------------------


@pytest.mark.gpu  # in the GPU tier too: the GPU machines have torch
@pytest.mark.parametrize("device", ["numpy", "cpu"])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_agrees_with_pytorch(kind, device):
    torch = pytest.importorskip("torch")
    n, t, i_size, hid = 3, 5, 4, 6
    rng = np.random.default_rng(11)
    x, dy = rng.standard_normal((n, t, i_size)), rng.standard_normal((n, t, hid))
    states = [rng.standard_normal((n, hid)) for _ in range(2 if kind == "lstm" else 1)]
    torch.manual_seed(0)
    net = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(i_size, hid, batch_first=True).double()
    dev = Device(device)
    layer = (L.LSTM if kind == "lstm" else L.GRU)(i_size, hid, device=dev)
    for p in layer.parameters():  # PyTorch's weights load as they are
        p.load(getattr(net, f"{p.name}_l0").detach().numpy())

    xt = torch.tensor(x, requires_grad=True)
    st_ = [torch.tensor(s[None], requires_grad=True) for s in states]  # PyTorch's (num_layers, N, H)
    yt, final = net(xt, tuple(st_) if kind == "lstm" else st_[0])
    yt.backward(torch.tensor(dy))

    tol = 1e-10 if device == "numpy" else 2e-5
    y = layer.forward(dev.asarray(x), *(dev.asarray(s) for s in states))
    assert_close(dev.to_numpy(y), yt.detach().numpy(), tol, tol, "y")
    ours_final = layer.last_state if kind == "lstm" else (layer.last_state,)
    theirs_final = final if kind == "lstm" else (final,)
    for a, b in zip(ours_final, theirs_final):
        assert_close(dev.to_numpy(a), b.detach().numpy()[0], tol, tol, "final state")
    dx = layer.backward(dev.asarray(dy))
    assert_close(dev.to_numpy(dx), xt.grad.numpy(), tol, tol, "dx")
    for p in layer.parameters():
        assert_close(dev.to_numpy(p.grad), getattr(net, f"{p.name}_l0").grad.numpy(), tol, tol * n * t, p.name)
    ours_initial = layer.initial_state_grad if kind == "lstm" else (layer.initial_state_grad,)
    for a, b in zip(ours_initial, st_):
        assert_close(dev.to_numpy(a), b.grad.numpy()[0], tol, tol, "initial state gradient")
