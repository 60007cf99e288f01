"""Embedding: the gather and the scatter-add on every backend (Hypothesis, against float64 NumPy written here;
repeated ids, ids that never occur, both GPU versions of backward), argument errors, and the layer: PyTorch's
layout and init, ids checked on the host, no input gradient, FlattenTime, a checkpoint round trip, and
agreement with torch.nn.Embedding where PyTorch is installed."""

import numpy as np
import pytest
from hypothesis import strategies as st
from support import BACKENDS, assert_close, for_all, kernels, poisoned, random_array, simulated, straddling, to_backend

import layers as L
from engine import Device, Sequential, load, save

DEVICES = ["numpy", "cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def scatter_add64(ids, dout, vocabulary):
    dweight = np.zeros((vocabulary, dout.shape[1]))
    for m, row in enumerate(ids):
        dweight[row] += dout[m]
    return dweight


def sizes(backend):
    # the simulator's grids are at most 2 blocks of 32 threads: M*D and V*D around 32 and 64 straddle them
    if simulated(backend):
        return st.sampled_from([1, 3, 9]), st.sampled_from([1, 5, 17]), st.sampled_from([0, 1, 7, 40])
    return straddling(16, 130), straddling(32, 130), st.sampled_from([0, 1, 2, 31, 32, 33, 257, 1000])


# ------------------------------------------------------------------------------------------------
# The ops, every backend
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_gathers_the_rows_of_the_ids(backend):
    def check(c):
        rng = np.random.default_rng(c["seed"])
        weight = random_array(rng, (c["v"], c["d"]))
        ids = rng.integers(0, c["v"], c["m"]).astype(np.int32)
        out = poisoned(backend, (c["m"], c["d"]))
        kernels(backend).embedding_forward(out, to_backend(backend, weight), to_backend(backend, ids))
        assert_close(out, weight.astype(np.float64)[ids], 0, 0, f"embedding_forward {c}")

    v, d, m = sizes(backend)
    for_all(backend, st.fixed_dictionaries({"v": v, "d": d, "m": m, "seed": st.integers(0, 2**16)}), check,
            sim_examples=3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_sums_the_rows_of_repeated_ids_and_zeroes_the_rest(backend):
    versions = ["gather", "atomic"] if backend == "cuda" else [None]

    def check(c):
        rng = np.random.default_rng(c["seed"])
        # ids drawn from a few rows: most repeat, and (when v > 3) some rows never occur and must come out 0
        ids = rng.integers(0, min(c["v"], 3) if c["few"] else c["v"], c["m"]).astype(np.int32)
        dout = random_array(rng, (c["m"], c["d"]))
        for version in versions:
            dweight = poisoned(backend, (c["v"], c["d"]))
            extra = {} if version is None else {"version": version}
            kernels(backend).embedding_backward(dweight, to_backend(backend, dout), to_backend(backend, ids), **extra)
            expected = scatter_add64(ids, dout.astype(np.float64), c["v"])
            assert_close(dweight, expected, 1e-5, 1e-5, f"embedding_backward {version or backend} {c}")

    v, d, m = sizes(backend)
    case = st.fixed_dictionaries({"v": v, "d": d, "m": m, "few": st.booleans(), "seed": st.integers(0, 2**16)})
    for_all(backend, case, check, sim_examples=3)


def test_cpu_backward_is_deterministic_and_matches_the_reference_bit_for_bit():
    # each row sums in position order on one thread, as np.add.at does
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 7, 5000).astype(np.int32)
    dout = random_array(rng, (5000, 33))
    results = []
    for backend in ("cpu", "cpu", "numpy"):
        dweight = np.full((7, 33), np.nan, np.float32)
        kernels(backend).embedding_backward(dweight, dout, ids)
        results.append(dweight)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])


def test_the_gpu_launcher_picks_gather_for_a_character_vocabulary_and_atomic_for_words():
    from cuda_kernels.embedding import pick_backward_version

    assert pick_backward_version(96, 64 * 64) == "gather"
    assert pick_backward_version(50_000, 64 * 64) == "atomic"


def test_ops_name_the_wrong_argument():
    k, z = kernels("cpu"), np.float32
    w, ids = np.zeros((5, 3), z), np.array([0, 4], np.int32)
    with pytest.raises(TypeError, match="embedding_forward: argument 'ids' expects dtype int32"):
        k.embedding_forward(np.zeros((2, 3), z), w, ids.astype(np.int64))
    with pytest.raises(ValueError, match=r"embedding_forward: argument 'out' expects shape \(2, 3\)"):
        k.embedding_forward(np.zeros((2, 4), z), w, ids)
    with pytest.raises(ValueError, match=r"embedding_backward: argument 'dout' expects shape \(2, 3\)"):
        k.embedding_backward(np.zeros((5, 3), z), np.zeros((3, 3), z), ids)
    with pytest.raises(ValueError, match=r"embedding_forward: argument 'ids' must lie in \[0, 5\).*\[0, 5\]"):
        k.embedding_forward(np.zeros((2, 3), z), w, np.array([0, 5], np.int32))
    with pytest.raises(ValueError, match=r"embedding_backward: argument 'ids' must lie in \[0, 5\)"):
        kernels("numpy").embedding_backward(np.zeros((5, 3)), np.zeros((2, 3)), np.array([-1, 0], np.int32))
    with pytest.raises(TypeError, match="float arguments must share one dtype"):
        kernels("numpy").embedding_forward(np.zeros((2, 3)), w, ids)
    with pytest.raises(TypeError, match="argument 'weight' must be a CUDA device array"):
        kernels("cuda").embedding_forward(np.zeros((2, 3), z), w, ids)
    with pytest.raises(ValueError, match="argument 'version' must be one of"):
        kernels("cuda").embedding_backward(*(to_backend("cuda", a) for a in (w, np.zeros((2, 3), z), ids)),
                                           version="sorted")


# ------------------------------------------------------------------------------------------------
# The layer
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_layer_forward_and_backward(device):
    dev = Device(device)
    layer = L.Embedding(11, 6, device=dev, seed=3)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 11, (4, 5))
    ids[0, :3] = 2  # a repeated id
    y = layer.forward(ids)
    assert tuple(y.shape) == (4, 5, 6)
    weight = layer.weight.numpy().astype(np.float64)
    assert_close(dev.to_numpy(y), weight[ids], 0, 0, "forward")
    dy = rng.standard_normal((4, 5, 6))
    assert layer.backward(dev.asarray(dy)) is None  # ids have no gradient
    expected = scatter_add64(ids.reshape(-1), dy.reshape(-1, 6), 11)
    assert_close(layer.weight.grad, expected, 1e-5, 1e-5, "weight.grad")


def test_layer_takes_ids_of_any_integer_dtype_or_integral_floats():
    layer = L.Embedding(10, 2)
    reference = np.array(layer.forward(np.array([[1, 9]], np.int64)))
    for ids in (np.array([[1, 9]], np.uint8), np.array([[1.0, 9.0]], np.float32), np.array([[1, 9]], np.int32)):
        np.testing.assert_array_equal(np.array(layer.forward(ids)), reference)
    assert np.array(layer.forward(np.array([3]))).shape == (1, 2)  # ids of any rank


@pytest.mark.gpu
def test_layer_on_a_gpu_takes_host_ids_and_the_float32_batches_fit_stages():
    cpu, cuda = L.Embedding(10, 2), L.Embedding(10, 2, device="cuda")  # the simulator without a GPU
    cuda.weight.load(cpu.weight.numpy())
    reference = np.array(cpu.forward(np.array([[1, 9]])))
    for ids in (np.array([[1, 9]]), cuda.device.asarray(np.array([[1.0, 9.0]], np.float32))):
        np.testing.assert_array_equal(cuda.device.to_numpy(cuda.forward(ids)), reference)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 10\)"):
        cuda.forward(cuda.device.asarray(np.array([[10.0]], np.float32)))


def test_layer_errors_are_one_clear_line():
    with pytest.raises(ValueError, match="Embedding: num_embeddings must be a positive integer, got 0"):
        L.Embedding(0, 3)
    with pytest.raises(ValueError, match="Embedding: embedding_dim must be a positive integer, got 2.5"):
        L.Embedding(4, 2.5)
    layer = L.Embedding(4, 3)
    with pytest.raises(ValueError, match=r"Embedding.forward: ids must lie in \[0, 4\) \(num_embeddings\), got ids "
                                         r"in \[0, 4\]"):
        layer.forward(np.array([[0, 4]]))
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 4\).*got ids in \[-1, 2\]"):
        layer.forward(np.array([[-1.0, 2.0]], np.float32))
    with pytest.raises(TypeError, match=r"Embedding.forward: expected integer ids in \[0, 4\), got non-integer"):
        layer.forward(np.array([[0.5, 1.0]], np.float32))
    with pytest.raises(TypeError, match="got dtype bool"):
        layer.forward(np.array([True, False]))
    with pytest.raises(TypeError, match="Embedding.forward: expected its input as a NumPy or CUDA device array"):
        layer.forward([[0, 1]])
    with pytest.raises(ValueError, match=r"expected ids of shape \(batch, ...\)"):
        layer.forward(np.array(1))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        L.Embedding(4, 3).backward(np.zeros((1, 3), np.float32))


def test_layer_follows_pytorch_layout_and_init():
    layer = L.Embedding(300, 200, seed=1)
    assert [(p.name, p.shape) for p in layer.parameters()] == [("weight", (300, 200))]
    values = layer.weight.numpy()
    assert abs(values.mean()) < 0.01 and abs(values.std() - 1) < 0.01  # N(0, 1), as torch.nn.Embedding
    assert repr(layer) == "Embedding(num_embeddings=300, embedding_dim=200)"


def test_flatten_time_makes_every_step_a_row():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    layer = L.FlattenTime()
    y = layer.forward(x)
    np.testing.assert_array_equal(y[4], x[1, 1])  # row n*T + t
    np.testing.assert_array_equal(layer.backward(y * 2), x * 2)
    with pytest.raises(ValueError, match=r"FlattenTime.forward: expected \(batch, time, features\)"):
        layer.forward(np.zeros((2, 3), np.float32))


def test_a_language_model_trains_end_to_end_and_round_trips_a_checkpoint(tmp_path):
    import optim as O

    model = Sequential(L.Embedding(7, 4, seed=1), L.LSTM(4, 8, seed=2), L.FlattenTime(), L.Dense(8, 7, seed=3))
    ids = np.random.default_rng(0).integers(0, 7, (3, 5))
    targets = np.roll(ids, -1, axis=1).reshape(-1)
    loss_layer, opt = L.SoftmaxCrossEntropy(), O.Adam(model.parameters(), 0.05)
    first = loss_layer.forward(model.forward(ids), targets)
    for _ in range(30):
        loss_layer.forward(model.forward(ids), targets)
        assert model.backward(loss_layer.backward()) is None
        assert np.abs(model.layers[0].weight.grad).max() > 0
        opt.step()
    assert loss_layer.forward(model.forward(ids), targets) < first / 2
    save(tmp_path / "lm.npz", model)
    restored, _ = load(tmp_path / "lm.npz")
    assert [type(layer) for layer in restored.layers] == [L.Embedding, L.LSTM, L.FlattenTime, L.Dense]
    np.testing.assert_array_equal(np.array(restored.forward(ids)), np.array(model.forward(ids)))


@pytest.mark.gpu  # in the GPU tier too: the GPU machines have torch
@pytest.mark.parametrize("device", ["numpy", "cpu"])
def test_agrees_with_pytorch(device):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Embedding(9, 5).double()
    layer = L.Embedding(9, 5, device=Device(device))
    layer.weight.load(net.weight.detach().numpy())  # PyTorch's weight loads as it is
    ids = np.random.default_rng(2).integers(0, 9, (3, 4))
    dy = np.random.default_rng(3).standard_normal((3, 4, 5))
    out = net(torch.from_numpy(ids))
    out.backward(torch.from_numpy(dy))
    tol = 0 if device == "numpy" else 1e-6
    np.testing.assert_allclose(np.array(layer.forward(ids)), out.detach().numpy(), rtol=tol, atol=tol)
    layer.backward(dy.astype(layer.device.float_dtype))
    np.testing.assert_allclose(layer.weight.grad, net.weight.grad.numpy(), rtol=1e-5, atol=1e-5)
