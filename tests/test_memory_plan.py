"""The memory plan, counted rather than assumed: after the first step for a batch shape, a training step
on the CUDA device allocates nothing on the device and moves only the input batch, the labels and the
optimizer's step scalars (learning rate, bias corrections: read from device memory so that a CUDA graph can
replay the step) to the device and the scalar loss back (the simulator here, the GPU in the gpu tier);
eagerly or replayed as a CUDA graph."""

import numpy as np
import pytest

import layers as L
import optim as O
from engine import Device, Sequential, fit
from engine.data import Dataset


@pytest.mark.gpu
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_steady_state_cuda_step_allocates_nothing_and_copies_only_batch_labels_loss(monkeypatch, cuda_graph):
    from numba import cuda

    events = []
    real = {name: getattr(cuda, name) for name in ("device_array", "to_device", "pinned_array")}
    for name, fn in real.items():
        monkeypatch.setattr(cuda, name, lambda *a, _fn=fn, _name=name, **k: (events.append(_name), _fn(*a, **k))[1])
    array_type = type(real["device_array"](1, np.float32))
    for name in ("copy_to_host", "copy_to_device"):
        original = getattr(array_type, name)
        monkeypatch.setattr(array_type, name,
                            lambda self, *a, _o=original, _name=name, **k: (events.append(_name), _o(self, *a, **k))[1])

    dev = Device("cuda")
    rng = np.random.default_rng(0)
    data = Dataset(rng.standard_normal((24, 5)).astype(np.float32), rng.integers(0, 3, 24), "tiny")
    model = Sequential(L.Dense(5, 4, device=dev), L.Tanh(), L.Dense(4, 3, device=dev, seed=1))
    per_step = []

    def mark(event, info):
        if event == "batch":
            per_step.append(list(events))
            events.clear()

    fit(model, L.SoftmaxCrossEntropy(), O.Adam(model.parameters(), lr=1e-2), data, epochs=1, batch_size=8,
        callbacks=[mark], cuda_graph=cuda_graph)
    assert len(per_step) == 3
    first, *steady = per_step
    assert "device_array" in first or "to_device" in first  # the first step plans the buffers
    for step in steady:
        # batch, labels, step scalars; the loss
        assert sorted(step) == ["copy_to_device"] * 3 + ["copy_to_host"], step
