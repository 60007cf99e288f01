"""A training step captured as a CUDA graph and replayed gives the parameters eager steps give: everything that
changes between steps (the batch and labels, the scheduled learning rate, Adam's step-dependent scalars,
dropout's seed) is read from device memory inside the graph. In the simulator the graph is an emulation with
CUDA graph semantics (each recorded launch replays with its arguments as recorded, buffers fixed), so these
tests run in CI; on a GPU (`pytest -m gpu`) the same tests run the driver's stream capture."""

import numpy as np
import pytest

import layers as L
import optim as O
from cuda_kernels import SIMULATOR
from engine import Device, Sequential, fit
from engine.cuda_graph import CapturedStep
from engine.data import Dataset

pytestmark = pytest.mark.gpu

FEATURES, HIDDEN, CLASSES, BATCH = 6, 8, 3, 4


def make(dev, optimizer="adam", schedule=True, steps=20):
    model = Sequential(L.Dense(FEATURES, HIDDEN, device=dev, seed=1), L.ReLU(), L.Dropout(0.3, seed=5),
                       L.Dense(HIDDEN, CLASSES, device=dev, seed=2))
    if optimizer == "adam":
        opt = O.Adam(model.parameters(), lr=0.05)
    elif optimizer == "adamw":
        opt = O.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    else:
        opt = O.SGD(model.parameters(), lr=0.1, momentum=0.9)
    if schedule:
        opt.schedule = O.cosine_lr(opt.base_lr, steps, min_lr=0.005)
    return model, L.SoftmaxCrossEntropy(), opt


def data(steps, batch=BATCH, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((batch, FEATURES)).astype(np.float32), rng.integers(0, CLASSES, batch))
            for _ in range(steps)]


def eager_run(dev, batches, **kw):
    model, loss_layer, opt = make(dev, steps=len(batches), **kw)
    losses = []
    for xb, yb in batches:
        logits = model.forward(dev.asarray(xb))
        losses.append(loss_layer.forward(logits, yb))
        model.backward(loss_layer.backward())
        opt.step()
    return dev.to_numpy(model.flat.data).copy(), losses


def graph_run(dev, batches, **kw):
    model, loss_layer, opt = make(dev, steps=len(batches), **kw)
    step = CapturedStep(model, loss_layer, opt)
    losses = [step.step(xb, yb) for xb, yb in batches]
    return dev.to_numpy(model.flat.data).copy(), losses, step


@pytest.fixture(scope="module")
def dev():
    return Device("cuda")


_EAGER: dict = {}  # eager runs shared by the tests that compare with the same one (the simulator is slow)


def eager_cached(dev, steps, seed=0, **kw):
    key = (steps, seed, tuple(sorted(kw.items())))
    if key not in _EAGER:
        _EAGER[key] = eager_run(dev, data(steps, seed=seed), **kw)
    return _EAGER[key]


@pytest.fixture(scope="module")
def eager20(dev):
    return eager_cached(dev, 20)


@pytest.fixture(scope="module")
def graph20(dev):
    return graph_run(dev, data(20))


def test_twenty_replayed_steps_equal_twenty_eager_steps(dev, eager20, graph20):
    """Cosine schedule, dropout, Adam: the first step runs eagerly and is captured, the other 19 replay."""
    params, losses, step = graph20
    assert step.replays == 19 and len(step.graphs) == 1
    np.testing.assert_allclose(params, eager20[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(losses, eager20[1], rtol=1e-6)


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_replayed_steps_equal_eager_steps_for_other_optimizers(dev, optimizer):
    np.testing.assert_allclose(graph_run(dev, data(4, seed=1), optimizer=optimizer)[0],
                               eager_cached(dev, 4, seed=1, optimizer=optimizer)[0], rtol=1e-6, atol=1e-7)


# Freezing one per-step value into the graph, as a kernel argument captured by value would: at capture, the
# launches that read the chosen device buffer get a copy of it instead, which no later step updates. Each of
# these must change the parameters; if one did not, the equivalence test above could not catch it frozen.
def _frozen_buffer(step, which):
    model, opt = step.model, step.optimizer
    if which == "step scalars":
        return opt.step_scalars
    if which == "dropout seed":
        return model.layers[2]._buffers["seed"]
    entry = next(iter(step._shapes.values()))
    return entry.x if which == "batch" else entry.y


@pytest.mark.skipif(not SIMULATOR, reason="freezes a buffer by copying it inside the capture: the emulation only")
@pytest.mark.parametrize("which, kw", [
    ("step scalars", {"optimizer": "adam", "schedule": False}),  # Adam's bias corrections alone
    ("step scalars", {"optimizer": "sgd", "schedule": True}),  # the scheduled learning rate alone
    ("dropout seed", {}),
    ("batch", {}),
    ("labels", {}),
])
def test_freezing_any_per_step_value_is_caught(dev, monkeypatch, which, kw):
    from numba import cuda

    from cuda_kernels import capture

    batches = data(4)
    model, loss_layer, opt = make(dev, steps=len(batches), **kw)
    step = CapturedStep(model, loss_layer, opt)
    frozen = []
    original = capture._Capture.record

    def record(self, name, fn, config, args):
        target = _frozen_buffer(step, which)
        if any(a is target for a in args):
            issuing, capture._ISSUING[0] = capture._ISSUING[0], True  # past the capture's guards, as a test may
            try:
                copy = cuda.to_device(target.copy_to_host())
            finally:
                capture._ISSUING[0] = issuing
            args = tuple(copy if a is target else a for a in args)
            frozen.append(name)
        return original(self, name, fn, config, args)

    monkeypatch.setattr(capture._Capture, "record", record)
    for xb, yb in batches:
        step.step(xb, yb)
    assert frozen, f"no captured launch read the {which} buffer"
    params = dev.to_numpy(model.flat.data)
    reference = eager_cached(dev, len(batches), **kw)[0]
    assert np.abs(params - reference).max() > 1e-4, f"freezing the {which} went unnoticed"


def test_nothing_allocates_or_reads_back_during_capture(dev, monkeypatch):
    from numba import cuda

    from cuda_kernels import launch

    allocations = []
    for name in ("device_array", "to_device", "pinned_array"):
        real = getattr(cuda, name)
        monkeypatch.setattr(cuda, name, lambda *a, _r=real, _n=name, **k: (
            allocations.append((_n, launch.capturing())), _r(*a, **k))[1])
    *_, step = graph_run(dev, data(3))
    assert step.replays == 2 and allocations and not any(during for _, during in allocations)
    existing = dev.zeros((3,))
    launch.begin_capture()
    try:
        for attempt in (lambda: dev.empty((3,)), lambda: dev.zeros((3,)), lambda: dev.to_numpy(existing),
                        lambda: dev.asarray(np.ones(3))):
            with pytest.raises(RuntimeError, match="during a CUDA graph capture"):
                attempt()
    finally:
        launch.abort_capture()
    assert not launch.capturing()


def test_a_batch_of_another_shape_gets_its_own_graph(dev):
    batches = data(3) + data(2, batch=2, seed=3) + data(2)
    params, losses, step = graph_run(dev, batches, schedule=False)
    assert len(step.graphs) == 2 and step.replays == 7 - 2
    np.testing.assert_allclose(params, eager_run(dev, batches, schedule=False)[0], rtol=1e-6, atol=1e-7)


def test_the_launches_go_on_the_devices_stream_and_the_graph_records_the_step(dev, graph20):
    *_, step = graph20
    graph = next(iter(step.graphs.values()))
    names = [name for name, _, _ in graph.launches]
    assert "adam_kernel" in names and "dropout_forward_kernel" in names and names[-1] == "adam_kernel"
    assert all(config[2] is dev.stream for _, _, config, _ in graph.records)


def test_fit_with_cuda_graph_matches_fit_without(dev):
    rng = np.random.default_rng(4)
    dataset = Dataset(rng.standard_normal((10, FEATURES)).astype(np.float32), rng.integers(0, CLASSES, 10), "tiny")
    results = []
    for cuda_graph in (False, True):
        model, loss_layer, opt = make(dev, schedule=False)
        history = fit(model, loss_layer, opt, dataset, epochs=2, batch_size=4, cuda_graph=cuda_graph)
        results.append((dev.to_numpy(model.flat.data).copy(), history))
    (p0, h0), (p1, h1) = results
    np.testing.assert_allclose(p1, p0, rtol=1e-6, atol=1e-7)  # 4, 4 and a last batch of 2: two graphs
    for a, b in zip(h0, h1):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
        assert a["train_accuracy"] == b["train_accuracy"]


def test_fit_refuses_a_cuda_graph_on_the_cpu():
    model, loss_layer, opt = make(Device("cpu"), schedule=False)
    dataset = Dataset(np.zeros((4, FEATURES), np.float32), np.zeros(4, np.int64), "zeros")
    with pytest.raises(ValueError, match="cuda_graph=True needs a cuda device"):
        fit(model, loss_layer, opt, dataset, epochs=1, batch_size=4, cuda_graph=True)
