"""Interop: Device.asarray takes other libraries' arrays (PyTorch, CuPy, the CUDA array interface, DLPack),
and load_state_dict maps a PyTorch state_dict onto a model. The NumPy tests run everywhere; those that
need PyTorch or CuPy skip without them; the zero-copy GPU paths need a real GPU (the simulator has no
CUDA array interface)."""

import numpy as np
import pytest

import layers as L
from engine import Device, Sequential, load_state_dict
from engine.models import lenet, mlp, rnn_classifier
from hardware import cuda_probe

ON_A_GPU = cuda_probe.real_gpu_count() > 0 and not cuda_probe.simulator_requested()
needs_a_gpu = pytest.mark.skipif(not ON_A_GPU, reason="zero-copy needs a real GPU: the simulator has no "
                                                      "__cuda_array_interface__")


def torch_names_for(model) -> dict:
    """A state_dict as nn.Sequential would name it for ``model`` (same layer indices), NumPy values."""
    rng = np.random.default_rng(7)
    state = {}
    for i, layer in enumerate(model.layers):
        for p in layer.parameters():
            state[f"{i}.{p.name}"] = rng.standard_normal(p.shape).astype(np.float32)
        for name, buf in layer.state_arrays().items():
            state[f"{i}.{name}"] = rng.uniform(0.5, 1.5, tuple(buf.shape)).astype(np.float32)
    return state


# -- load_state_dict with NumPy values (no torch needed) ------------------------------------------------------
@pytest.mark.parametrize("make", [lambda d: mlp(d), lambda d: lenet(d)], ids=["mlp", "lenet"])
def test_a_state_dict_loads_onto_the_parameters_in_order(make):
    dev = Device("cpu")
    model = make(dev)
    state = torch_names_for(model)
    loaded = load_state_dict(model, state)
    assert list(loaded) == list(state)
    for i, layer in enumerate(model.layers):
        for p in layer.parameters():
            np.testing.assert_array_equal(p.numpy(), state[f"{i}.{p.name}"])


def test_dense_is_linear_same_layout():
    dev = Device("cpu")
    model = Sequential(L.Dense(5, 4, device=dev), L.ReLU(), L.Dense(4, 3, device=dev))
    state = torch_names_for(model)
    load_state_dict(model, {"0.weight": state["0.weight"], "0.bias": state["0.bias"],
                            "2.weight": state["2.weight"], "2.bias": state["2.bias"]})
    x = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)
    expected = np.maximum(x @ state["0.weight"].T + state["0.bias"], 0) @ state["2.weight"].T + state["2.bias"]
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-5, atol=1e-5)


def test_rnn_bias_is_bias_ih_plus_bias_hh():
    dev = Device("cpu")
    model = rnn_classifier(dev, input_size=3, hidden=4, classes=2)
    rng = np.random.default_rng(1)
    state = {"rnn.weight_ih_l0": rng.standard_normal((4, 3)), "rnn.weight_hh_l0": rng.standard_normal((4, 4)),
             "rnn.bias_ih_l0": rng.standard_normal(4), "rnn.bias_hh_l0": rng.standard_normal(4),
             "fc.weight": rng.standard_normal((2, 4)), "fc.bias": rng.standard_normal(2)}
    loaded = load_state_dict(model, state)
    rnn = model.layers[0]
    np.testing.assert_allclose(rnn.bias.numpy(), state["rnn.bias_ih_l0"] + state["rnn.bias_hh_l0"], rtol=1e-6)
    np.testing.assert_allclose(rnn.weight_hh.numpy(), state["rnn.weight_hh_l0"], rtol=1e-6)
    assert loaded["rnn.bias_ih_l0"] == loaded["rnn.bias_hh_l0"] == "layer 0 (RNN) bias"
    # nn.RNN(bias=False): no bias entries, the bias is zero
    del state["rnn.bias_ih_l0"], state["rnn.bias_hh_l0"]
    load_state_dict(model, state)
    np.testing.assert_array_equal(rnn.bias.numpy(), np.zeros(4))


def test_batchnorm_loads_running_statistics_and_skips_the_step_counter():
    dev = Device("cpu")
    model = Sequential(L.Conv2D(1, 3, 3, device=dev), L.BatchNorm2D(3, device=dev), L.ReLU(), L.Flatten(),
                       L.Dense(3 * 4 * 4, 2, device=dev))
    state = torch_names_for(model)
    state = {**{k: v for k, v in state.items() if k.startswith(("0.", "1."))},
             "1.num_batches_tracked": np.array(12), **{k: v for k, v in state.items() if k.startswith("4.")}}
    load_state_dict(model, state)
    bn = model.layers[1]
    np.testing.assert_array_equal(dev.to_numpy(bn.running_mean), state["1.running_mean"])
    np.testing.assert_array_equal(dev.to_numpy(bn.running_var), state["1.running_var"])


def test_mismatches_are_one_line_and_load_nothing():
    dev = Device("cpu")
    model = mlp(dev, in_features=8, hidden=6, classes=3)
    before = [p.numpy() for p in model.parameters()]
    good = torch_names_for(model)
    wrong_shape = {**good, "2.weight": np.zeros((6, 7), np.float32)}
    with pytest.raises(ValueError) as info:
        load_state_dict(model, wrong_shape)
    message = str(info.value)
    assert "\n" not in message
    assert "state_dict['2.weight'] has shape (6, 7), but layer 2 (Dense) weight has shape (6, 6)" in message
    with pytest.raises(ValueError, match=r"holds 5 tensors, the model needs more: nothing for layer 4 \(Dense\) bias"):
        load_state_dict(model, {k: v for k, v in good.items() if k != "4.bias"})
    with pytest.raises(ValueError, match=r"the model takes 6: extra.weight left over"):
        load_state_dict(model, {**good, "extra.weight": np.zeros(3, np.float32)})
    swapped = {"0.bias": good["0.bias"], "0.weight": good["0.weight"], **good}
    with pytest.raises(ValueError, match=r"'0.bias'\] is a bias, but the model's next parameter is layer 0 "
                                         r"\(Dense\) weight"):
        load_state_dict(model, swapped)
    with pytest.raises(ValueError, match="holds int64 values"):
        load_state_dict(model, {**good, "0.bias": np.zeros(6, np.int64)})
    for p, value in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), value)


@pytest.mark.skipif(not hasattr(L, "LSTM"), reason="no L.LSTM in this checkout")
def test_lstm_parameters_map_generically():
    dev = Device("cpu")
    model = Sequential(L.LSTM(3, 4, device=dev), L.LastTimeStep(), L.Dense(4, 2, device=dev))
    rng = np.random.default_rng(2)
    state = {"lstm.weight_ih_l0": rng.standard_normal((16, 3)), "lstm.weight_hh_l0": rng.standard_normal((16, 4)),
             "lstm.bias_ih_l0": rng.standard_normal(16), "lstm.bias_hh_l0": rng.standard_normal(16),
             "fc.weight": rng.standard_normal((2, 4)), "fc.bias": rng.standard_normal(2)}
    load_state_dict(model, state)
    for p, value in zip(model.parameters(), state.values()):
        np.testing.assert_allclose(p.numpy(), value, rtol=1e-6)


# -- Device.asarray: DLPack and the CUDA array interface without torch -----------------------------------------
class HostDLPack:
    """A foreign host array that speaks only DLPack (as JAX's CPU arrays do)."""

    def __init__(self, array, device=(1, 0)):
        self.array, self.device = array, device

    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.device


def test_dlpack_host_arrays_are_viewed_when_float32_and_copied_otherwise():
    dev = Device("cpu")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    view = dev.asarray(HostDLPack(x))
    assert np.shares_memory(view, x)
    converted = dev.asarray(HostDLPack(x.astype(np.float64)))
    assert converted.dtype == np.float32 and converted.flags.c_contiguous
    np.testing.assert_array_equal(converted, x)
    labels = dev.asarray(HostDLPack(np.array([1, 2], np.int64)))
    assert labels.dtype == np.int64
    with pytest.raises(TypeError, match="DLPack device type 2"):
        dev.asarray(HostDLPack(x, device=(2, 0)))


def test_the_cuda_array_interface_needs_a_real_gpu():
    if ON_A_GPU:
        pytest.skip("a real GPU is present: the zero-copy tests below run instead")

    class InGpuMemory:
        __cuda_array_interface__ = {"shape": (3,), "typestr": "<f4", "data": (0, False), "version": 3}

    with pytest.raises(TypeError, match="needs a real GPU"):
        Device("cuda").asarray(InGpuMemory())


# -- PyTorch (skipped without it) ------------------------------------------------------------------------------------
@pytest.mark.gpu  # the PyTorch agreement tests run in the GPU tier too (the GPU machines have torch)
def test_torch_cpu_tensors():
    torch = pytest.importorskip("torch")
    dev = Device("cpu")
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    view = dev.asarray(t)
    assert isinstance(view, np.ndarray) and view.ctypes.data == t.data_ptr()  # no copy
    grad = torch.ones(3, requires_grad=True)
    np.testing.assert_array_equal(dev.asarray(grad), np.ones(3, np.float32))  # detached
    doubles = dev.asarray(t.double().t())  # float64 and transposed: a float32 C-contiguous copy
    assert doubles.dtype == np.float32 and doubles.flags.c_contiguous
    np.testing.assert_array_equal(doubles, t.numpy().T)
    assert dev.asarray(torch.tensor([3, 1])).dtype == np.int64
    assert dev.asarray(torch.ones(2, dtype=torch.bfloat16)).dtype == np.float32
    sim = Device("cuda")  # the simulator without a GPU: a copy to the device
    np.testing.assert_array_equal(sim.to_numpy(sim.asarray(t)), t.numpy())


def _torch_sequential_lenet(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                         nn.ReLU(), nn.Linear(84, 10))


@pytest.mark.gpu
def test_torch_lenet_state_dict_gives_the_same_logits():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    reference = _torch_sequential_lenet(torch).eval()
    model = lenet(Device("cpu"))
    loaded = load_state_dict(model, reference.state_dict())
    assert list(loaded) == list(reference.state_dict())
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        expected = reference(x).numpy()
    np.testing.assert_allclose(model.forward(model.device.asarray(x)), expected, rtol=1e-4, atol=1e-5)
    assert load_state_dict(lenet(Device("cpu")), reference) == loaded  # a module works as well as its state_dict


@pytest.mark.gpu
def test_torch_rnn_and_batchnorm_state_dicts_give_the_same_outputs():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(1)

    class Reader(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(8, 16, batch_first=True, num_layers=2)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            return self.fc(self.rnn(x)[0][:, -1])

    reference = Reader().eval()
    dev = Device("cpu")
    model = Sequential(L.RNN(8, 16, device=dev), L.RNN(16, 16, device=dev), L.LastTimeStep(),
                       L.Dense(16, 10, device=dev))
    load_state_dict(model, reference.state_dict())
    x = torch.rand(3, 5, 8)
    with torch.no_grad():
        np.testing.assert_allclose(model.forward(dev.asarray(x)), reference(x).numpy(), rtol=1e-4, atol=1e-5)

    bn_reference = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU())
    with torch.no_grad():
        bn_reference(torch.rand(8, 2, 6, 6) * 3)  # training mode: the running statistics move
    bn_reference.eval()
    bn_model = Sequential(L.Conv2D(2, 3, 3, device=dev), L.BatchNorm2D(3, device=dev), L.ReLU()).eval()
    load_state_dict(bn_model, bn_reference.state_dict())
    x = torch.rand(2, 2, 6, 6)
    with torch.no_grad():
        np.testing.assert_allclose(bn_model.forward(dev.asarray(x)), bn_reference(x).numpy(), rtol=1e-4, atol=1e-5)


# -- zero-copy on a GPU (pytest -m gpu on a machine with one) ----------------------------------------------------------
@pytest.mark.gpu
@needs_a_gpu
def test_a_cuda_array_interface_is_viewed_without_a_copy():
    dev = Device("cuda")
    owner = dev.asarray(np.arange(6, dtype=np.float32))

    class Foreign:  # another library's GPU array, speaking only the CUDA array interface
        __cuda_array_interface__ = owner.__cuda_array_interface__

    view = dev.asarray(Foreign())
    assert view.__cuda_array_interface__["data"][0] == owner.__cuda_array_interface__["data"][0]
    np.testing.assert_array_equal(Device("cpu").asarray(Foreign()), np.arange(6))  # to the host: a copy


@pytest.mark.gpu
@needs_a_gpu
def test_torch_cuda_tensors_and_device_arrays_share_memory():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this PyTorch build has no CUDA")
    dev = Device("cuda")
    t = torch.arange(6, dtype=torch.float32, device="cuda")
    view = dev.asarray(t)
    assert view.__cuda_array_interface__["data"][0] == t.data_ptr()  # no copy
    dev.kernels.fill(view, 2.0)
    dev.synchronize()
    assert torch.equal(t, torch.full((6,), 2.0, device="cuda"))  # written through the view
    converted = dev.asarray(t.double())  # float64: converted (on the GPU) to a float32 copy
    assert converted.dtype == np.float32 and converted.__cuda_array_interface__["data"][0] != t.data_ptr()
    ours = dev.zeros((4,))
    back = torch.as_tensor(ours, device="cuda")  # the other way: tilegrad's array seen by PyTorch
    assert back.data_ptr() == ours.__cuda_array_interface__["data"][0]
    model = lenet(dev)
    load_state_dict(model, _torch_sequential_lenet(torch).cuda().state_dict())  # CUDA tensors load too


@pytest.mark.gpu
@needs_a_gpu
def test_cupy_arrays_and_device_arrays_share_memory():
    cupy = pytest.importorskip("cupy")
    dev = Device("cuda")
    a = cupy.arange(6, dtype=cupy.float32)
    view = dev.asarray(a)
    assert view.__cuda_array_interface__["data"][0] == a.data.ptr
    ours = dev.zeros((3,))
    assert cupy.asarray(ours).data.ptr == ours.__cuda_array_interface__["data"][0]
    np.testing.assert_array_equal(Device("cpu").asarray(a), np.arange(6))
