"""The engine: layers (gradcheck on cpu and cuda), optimizers through models, Sequential and Graph,
checkpoints, data readers, and a short training run."""

import gzip
import struct

import numpy as np
import pytest

import layers as L
import optim as O
from engine import Add, Device, Graph, Sequential, evaluate, fit, gradcheck, load, load_digits, read_idx, save
from engine.data import Dataset, load_mnist

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def small_layers(dev):
    return {
        "dense": (L.Dense(5, 3, device=dev), (4, 5)),
        "conv": (L.Conv2D(2, 3, 3, stride=2, padding=1, device=dev), (2, 2, 5, 5)),
        "conv_nobias": (L.Conv2D(1, 2, 2, bias=False, device=dev), (1, 1, 4, 3)),
        "maxpool": (L.MaxPool2D(2), (2, 2, 4, 4)),
        "maxpool_overlap": (L.MaxPool2D(3, stride=1), (1, 2, 4, 5)),
        "relu": (L.ReLU(), (3, 7)), "tanh": (L.Tanh(), (3, 7)), "sigmoid": (L.Sigmoid(), (3, 7)),
        "flatten": (L.Flatten(), (2, 3, 2, 2)),
        "dropout": (L.Dropout(0.4, seed=3), (4, 9)),
        "rnn": (L.RNN(3, 4, device=dev), (2, 3, 3)),
        "batchnorm": (L.BatchNorm2D(3, device=dev), (2, 3, 2, 3)),
        "last_step": (L.LastTimeStep(), (2, 3, 4)),
    }


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(small_layers("cpu")))
def test_layer_gradcheck(device, name):
    dev = Device(device)
    layer, shape = small_layers(dev)[name]
    result = gradcheck(layer, shape, seed=1)
    assert result.ok, str(result)
    assert result.worst, "gradcheck compared nothing"


def test_gradcheck_catches_a_wrong_backward():
    class BrokenTanh(L.Tanh):
        def backward(self, dy):
            dx = super().backward(dy)
            dx[0, 0] *= 1.5  # a planted bug in one element
            return dx

    result = gradcheck(BrokenTanh(), (2, 3))
    assert not result.ok and "input" in str(result) and "(0, 0)" in str(result)


def test_layer_forward_against_numpy():
    dev = Device("cpu")
    dense = L.Dense(4, 2, device=dev)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    expected = x @ dense.weight.numpy().T + dense.bias.numpy()
    np.testing.assert_allclose(dense.forward(dev.asarray(x)), expected, rtol=1e-5)


def test_bad_inputs_give_clear_errors():
    dev = Device("cpu")
    with pytest.raises(ValueError, match=r"Dense.forward: expected \(batch, 4\), got shape \(3, 5\)"):
        L.Dense(4, 2, device=dev).forward(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\), got \[0, 2\]"):
        L.SoftmaxCrossEntropy().forward(np.zeros((2, 2), np.float32), np.array([0, 2]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\), got \[-1, 1\]"):
        L.SoftmaxCrossEntropy().forward(np.zeros((2, 2), np.float32), np.array([1, -1], np.int32))
    with pytest.raises(ValueError, match=r"labels must be 2 integers, got float64 \(2,\)"):
        L.SoftmaxCrossEntropy().forward(np.zeros((2, 2), np.float32), np.array([0.0, 1.0]))
    loss = L.SoftmaxCrossEntropy()
    for labels in (np.array([1, 0], np.uint8), np.array([1, 0], np.int64)):  # any integer dtype, converted
        assert loss.forward(np.array([[0, 9], [9, 0]], np.float32), labels) < 1e-3
    with pytest.raises(TypeError, match="expected an array on Device\\('cpu'\\)"):
        L.Dense(4, 2, device=dev).forward(Device("cuda").asarray(np.zeros((3, 4))))
    with pytest.raises(ValueError, match="expected shape \\(2, 4\\)"):
        L.Dense(4, 2, device=dev).weight.load(np.zeros((4, 2)))


def reference_step(name, hyper, w, g, state, step):
    from cuda_kernels import get_backend

    ref = get_backend("numpy")
    if name == "SGD":
        ref.sgd_step(w, state[0], g, first_step=step == 1, **hyper)
    elif name == "Adam":
        ref.adam_step(w, state[0], state[1], g, step=step, **hyper)


@pytest.mark.parametrize("device", DEVICES)
def test_optimizers_update_the_model_through_the_flat_buffer(device):
    dev = Device(device)
    model = Sequential(L.Dense(3, 4, device=dev), L.Tanh(), L.Dense(4, 2, device=dev, seed=1))
    w0 = [p.numpy().astype(np.float64) for p in model.parameters()]
    opt = O.Adam(model.parameters(), lr=0.01, betas=(0.9, 0.99), weight_decay=0.1)
    rng = np.random.default_rng(0)
    flat_w = np.concatenate([w.ravel() for w in w0])
    m, v = np.zeros_like(flat_w), np.zeros_like(flat_w)
    for step in (1, 2, 3):
        grads = [rng.standard_normal(p.shape) for p in model.parameters()]
        for p, g in zip(model.parameters(), grads):
            p.grad = dev.asarray(g)  # assigning a gradient is allowed; the step uses it
        opt.step()
        reference_step("Adam", {"lr": 0.01, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "weight_decay": 0.1},
                       flat_w, np.concatenate([g.ravel() for g in grads]), (m, v), step)
    got = np.concatenate([p.numpy().ravel() for p in model.parameters()])
    np.testing.assert_allclose(got, flat_w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("optimizer", [lambda ps: O.Adam(ps, lr=0.1, weight_decay=0.1),
                                       lambda ps: O.AdamW(ps, lr=0.1), lambda ps: O.SGD(ps, lr=0.1, momentum=0.9),
                                       lambda ps: O.RMSprop(ps, momentum=0.5), lambda ps: O.Adagrad(ps)])
def test_parameter_slices_start_on_cache_lines_and_the_padding_stays_zero(optimizer):
    from runtime.parameters import SLICE_FLOATS, padded_size

    dev = Device("cpu")
    model = Sequential(L.Dense(3, 5, device=dev), L.Tanh(), L.Dense(5, 2, device=dev, seed=1))  # 15, 5, 10, 2 floats
    opt = optimizer(model.parameters())
    assert model.flat.size == sum(padded_size(p.size) for p in model.parameters()) == 4 * SLICE_FLOATS
    for p in model.parameters():
        assert p.data.ctypes.data % 64 == 0 and p.grad.ctypes.data % 64 == 0, p.name
    used = np.zeros(model.flat.size, bool)
    for p in model.parameters():
        start = (p.data.ctypes.data - model.flat.data.ctypes.data) // 4
        used[start:start + p.size] = True
    ce, rng = L.SoftmaxCrossEntropy(), np.random.default_rng(0)
    for _ in range(3):
        ce.forward(model.forward(dev.asarray(rng.standard_normal((4, 3)))), rng.integers(0, 2, 4))
        model.backward(ce.backward())
        opt.step()
    for buf in [model.flat.data, model.flat.grad, *opt.state.values()]:
        assert np.all(buf[~used] == 0)
    assert np.any(model.flat.data[used] != 0)


def test_cpu_buffers_are_64_byte_aligned():
    dev = Device("cpu")
    for shape in [(1,), (3,), (5, 7), (2, 3, 4), 13]:
        for make in (dev.empty, dev.zeros):
            buf = make(shape)
            assert buf.ctypes.data % 64 == 0 and buf.flags.c_contiguous and buf.dtype == np.float32
        assert not dev.zeros(shape).any()
    assert dev.empty((4,), np.int32).dtype == np.int32


def test_schedules_and_state_dict_round_trip():
    model = Sequential(L.Dense(2, 2))
    opt = O.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt.schedule = O.step_lr(0.1, step_size=2, gamma=0.5)
    for _ in range(3):
        opt.step()
    assert opt.lr == pytest.approx(0.05)
    state = opt.state_dict()
    other = O.SGD(Sequential(L.Dense(2, 2)).parameters(), lr=0.1, momentum=0.9)
    other.load_state_dict(state)
    assert other.step_count == 3 and other.lr == pytest.approx(0.05)
    assert O.cosine_lr(1.0, 10)(10) == pytest.approx(0.0) and O.cosine_lr(1.0, 10)(0) == pytest.approx(1.0)


@pytest.mark.parametrize("device", DEVICES)
def test_graph_residual_block_matches_sequential_arithmetic(device):
    dev = Device(device)
    dense = L.Dense(3, 3, device=dev)
    g = Graph(inputs=["x"])
    g.add("dense", dense, "x").add("act", L.Tanh(), "dense").add("sum", Add(), "act", "x").output("sum")
    x = np.random.default_rng(0).standard_normal((2, 3))
    y = dev.to_numpy(g.forward(dev.asarray(x)))
    w, b = dense.weight.numpy().astype(np.float64), dense.bias.numpy()
    np.testing.assert_allclose(y, np.tanh(x @ w.T + b) + x, rtol=1e-5, atol=1e-6)
    dy = np.ones((2, 3))
    dx = dev.to_numpy(g.backward(dev.asarray(dy)))
    # d/dx [tanh(xW^T+b) + x] = (1 - t^2) W + identity (the fan-out of x)
    t = np.tanh(x @ w.T + b)
    np.testing.assert_allclose(dx, ((1 - t * t) * dy) @ w + dy, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("activation", [L.ReLU, L.Tanh, L.Sigmoid])
def test_fused_dense_activation_gives_the_unfused_numbers(device, activation):
    # Sequential computes ReLU/Tanh in the Dense GEMM's epilogue (Sigmoid has none: it stays a layer); the
    # outputs, every gradient and the input gradient must be what the layer-by-layer run gives
    dev = Device(device)
    rng = np.random.default_rng(1)
    x, dy = rng.standard_normal((5, 7)), rng.standard_normal((5, 3))
    runs = []
    for fuse in (True, False):
        model = Sequential(L.Dense(7, 4, device=dev, seed=2), activation(), L.Dense(4, 3, device=dev, seed=3),
                           activation(), fuse=fuse)
        model.layers[0].needs_input_grad = True  # also the input gradient, through both activations
        y = dev.to_numpy(model.forward(dev.asarray(x)))
        dx = dev.to_numpy(model.backward(dev.asarray(dy)))
        runs.append((model, y, dx, [p.grad for p in model.parameters()]))
    (fused, y1, dx1, g1), (plain, y0, dx0, g0) = runs
    expect_fused = activation is not L.Sigmoid
    assert [Sequential.stage_name(s) for s in fused.stages] == (
        ["0:Dense+" + activation.__name__, "2:Dense+" + activation.__name__] if expect_fused
        else ["0:Dense", "1:Sigmoid", "2:Dense", "3:Sigmoid"])
    assert len(plain.stages) == 4
    fused.layers.append(L.Dense(3, 2, device=dev, seed=4))  # an edited model is replanned, never stale
    assert fused.forward(dev.asarray(x)).shape == (5, 2) and len(fused.stages) == (3 if expect_fused else 5)
    np.testing.assert_allclose(y1, y0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx1, dx0, rtol=1e-5, atol=1e-6)
    for a, b in zip(g1, g0):
        np.testing.assert_allclose(dev.to_numpy(a), dev.to_numpy(b), rtol=1e-5, atol=1e-6)


def tiny_problem(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return Dataset(x, y, "tiny")


def make_mlp(dev):
    return Sequential(L.Dense(6, 16, device=dev), L.ReLU(), L.Dropout(0.1, seed=1), L.Dense(16, 2, device=dev, seed=1))


def test_checkpoint_resume_is_bit_identical(tmp_path):
    data = tiny_problem()
    dev = Device("cpu")
    model, ce = make_mlp(dev), L.SoftmaxCrossEntropy()
    opt = O.Adam(model.parameters(), lr=0.01)
    fit(model, ce, opt, data, epochs=2, batch_size=16, seed=3, checkpoint=str(tmp_path / "a.npz"))
    fit(model, ce, opt, data, epochs=2, batch_size=16, seed=3, start_epoch=2)
    straight = [p.numpy() for p in model.parameters()]

    resumed, meta = load(tmp_path / "a.npz", device=dev)
    opt2 = O.Adam(resumed.parameters(), lr=0.01)
    load(tmp_path / "a.npz", model=resumed, optimizer=opt2)
    fit(resumed, ce, opt2, data, epochs=2, batch_size=16, seed=3, start_epoch=meta["extra"]["epoch"])
    for a, b in zip(straight, (p.numpy() for p in resumed.parameters())):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_mismatch_names_the_parameter(tmp_path):
    save(tmp_path / "m.npz", Sequential(L.Dense(6, 16), L.ReLU(), L.Dense(16, 2)))
    with pytest.raises(ValueError, match="architecture differs"):
        load(tmp_path / "m.npz", model=Sequential(L.Dense(6, 8), L.ReLU(), L.Dense(8, 2)))
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left behind"


def test_nan_loss_stops_training_and_keeps_the_last_checkpoint(tmp_path):
    data = tiny_problem()
    model, ce = make_mlp(Device("cpu")), L.SoftmaxCrossEntropy()
    opt = O.SGD(model.parameters(), lr=0.1)
    fit(model, ce, opt, data, epochs=1, batch_size=16, checkpoint=str(tmp_path / "c.npz"))
    before = (tmp_path / "c.npz").read_bytes()
    model.parameters()[0].load(np.full(model.parameters()[0].shape, np.nan))
    with pytest.raises(FloatingPointError, match="loss is nan"):
        fit(model, ce, opt, data, epochs=1, batch_size=16, checkpoint=str(tmp_path / "c.npz"))
    assert (tmp_path / "c.npz").read_bytes() == before


def write_idx(path, array, type_code):
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    (gzip.open if str(path).endswith(".gz") else open)(path, "wb").write(data)


def test_idx_reader_and_mnist_folder(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    labels = np.array([0, 1, 2, 3, 9], np.uint8)
    for prefix in ("train", "t10k"):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images, 0x08)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", labels, 0x08)
    np.testing.assert_array_equal(read_idx(tmp_path / "train-images-idx3-ubyte.gz"), images)
    train, test = load_mnist(tmp_path)
    assert train.x.shape == (5, 1, 28, 28) and train.x.max() <= 1.0 and list(test.y) == [0, 1, 2, 3, 9]
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", images, 0x08)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-10])
    with pytest.raises(ValueError, match="promises"):
        read_idx(tmp_path / "short")
    with pytest.raises(FileNotFoundError, match="missing t10k"):
        (tmp_path / "t10k-labels-idx1-ubyte").unlink()
        load_mnist(tmp_path)


def test_short_digits_training_beats_chance_by_far():
    train, test = load_digits("flat")
    dev = Device("cpu")
    model = Sequential(L.Dense(64, 64, device=dev), L.ReLU(), L.Dense(64, 10, device=dev, seed=1))
    ce = L.SoftmaxCrossEntropy()
    history = fit(model, ce, O.Adam(model.parameters(), lr=3e-3), train, epochs=5, batch_size=32, eval_data=test)
    assert history[-1]["test_accuracy"] > 0.85
    assert evaluate(model, ce, test)["accuracy"] == pytest.approx(history[-1]["test_accuracy"])


@pytest.mark.gpu
def test_training_on_cuda_matches_cpu_closely():
    data = tiny_problem(64)
    results = []
    for name in ("cpu", "cuda"):
        dev = Device(name)
        model = Sequential(L.Dense(6, 8, device=dev), L.Tanh(), L.Dense(8, 2, device=dev, seed=1))
        fit(model, L.SoftmaxCrossEntropy(), O.SGD(model.parameters(), lr=0.1, momentum=0.9), data, epochs=1,
            batch_size=32)
        results.append(np.concatenate([p.numpy().ravel() for p in model.parameters()]))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_batchnorm_running_statistics_eval_mode_and_checkpoint(device, tmp_path):
    dev = Device(device)
    bn = L.BatchNorm2D(2, momentum=0.5, device=dev)
    x = np.random.default_rng(0).standard_normal((4, 2, 3, 3)) * 3 + 1
    bn.forward(dev.asarray(x))
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(dev.to_numpy(bn.running_mean), 0.5 * mean, rtol=1e-5)
    np.testing.assert_allclose(dev.to_numpy(bn.running_var), 0.5 + 0.5 * var, rtol=1e-5)
    bn.eval()
    expected = (x - 0.5 * mean[None, :, None, None]) / np.sqrt(0.5 + 0.5 * var + 1e-5)[None, :, None, None]
    np.testing.assert_allclose(dev.to_numpy(bn.forward(dev.asarray(x))), expected, rtol=1e-4, atol=1e-5)
    model = Sequential(bn, L.Flatten())
    save(tmp_path / "bn.npz", model)
    restored, _ = load(tmp_path / "bn.npz", device=dev)
    np.testing.assert_allclose(dev.to_numpy(restored.layers[0].running_var), dev.to_numpy(bn.running_var))


def test_graph_checkpoint_round_trip(tmp_path):
    dev = Device("cpu")
    g = Graph(inputs=["x"])
    g.add("dense", L.Dense(3, 3, device=dev), "x").add("act", L.ReLU(), "dense").add("sum", Add(), "act", "x")
    g.output("sum")
    save(tmp_path / "g.npz", g)
    restored, _ = load(tmp_path / "g.npz", device=dev)
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_array_equal(restored.forward(x.copy()), g.forward(x.copy()))
    assert isinstance(restored, Graph) and list(restored.nodes) == ["dense", "act", "sum"]


def test_same_seed_same_numbers_on_cpu():
    data = tiny_problem()
    runs = []
    for _ in range(2):
        model = make_mlp(Device("cpu"))
        history = fit(model, L.SoftmaxCrossEntropy(), O.SGD(model.parameters(), lr=0.1, momentum=0.9), data,
                      epochs=2, batch_size=16, seed=11)
        runs.append(([r["loss"] for r in history], [p.numpy() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
