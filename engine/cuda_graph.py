"""A whole training step captured as one CUDA graph and replayed: forward, loss, backward and the optimizer's
update in one ``cuGraphLaunch`` instead of one Python launch per kernel.

Why. A small model's GPU step is bound by the host: LeNet-5's step is 44 launches, and one numba-cuda launch
costs 17-80 µs of Python (docs/benchmarks.md), far more than the kernels run. Captured into a graph, the 44
launches replay in about 41 µs (H200, shared/anchors/gpu_graph_probe.py).

How. ``CapturedStep(model, loss_layer, optimizer).step(xb, yb)`` for each batch:

1. The batch and its labels go into pinned host staging (labels, of any shape, checked against the class
   count on the host; a model that reads ids, an Embedding first, has them checked by that layer's
   ``check_ids`` and staged as int32), then into static device buffers with asynchronous copies on the
   device's stream. One set of buffers per batch shape.
2. The first batch of a shape runs eagerly: it allocates every layer buffer, compiles every kernel and
   checks the shapes. Then the same step is captured (``cuda_kernels.launch.begin_capture``: the driver's
   stream capture on a GPU; a recording of every launch, with its arguments by value, in the simulator)
   with nothing allocated and nothing read back (``Device.empty``/``zeros`` raise during a capture).
3. Every later batch of that shape: the host's per-step work first, outside the graph (the optimizer's
   ``begin_step``: step count, schedule, bias corrections copied into its ``step_scalars``; each Dropout's
   ``begin_step``: the next seed copied into its seed buffer; a loss with a ``begin_step``, such as the
   character model's per-character count), then one replay, then the loss back as one 4-byte copy (and the
   same finiteness check as an eager step).

Everything that changes between steps is read by the kernels from device memory (the staged batch, the
step scalars, the seeds), never frozen into a captured argument: replayed steps give the parameters eager
steps give (tests/test_cuda_graph.py). A batch of another shape (the short last batch of an epoch) gets its
own graph, up to ``max_graphs`` shapes; beyond that, steps run eagerly (still on the static buffers).

The design choice for the per-step scalars: the host computes them (a schedule is any Python function of
the step, which a kernel cannot run) and copies them over with one small asynchronous copy per stateful
object before each replay, rather than a kernel inside the graph deriving them from a step counter.
"""

from __future__ import annotations

import numpy as np

from layers.losses import check_loss
from runtime.device import host_device

from .staging import BatchStager


def _first_layer(model):
    """The layer that reads the model's input: the first leaf under ``model``'s ``layers``."""
    while isinstance(getattr(model, "layers", None), (list, tuple)) and model.layers:
        model = model.layers[0]
    return model


def _stateful_layers(model) -> list:
    """Every layer under ``model`` whose training forward draws per-step state (a Dropout's mask seed)."""
    found, stack = [], [model]
    while stack:
        obj = stack.pop()
        children = getattr(obj, "layers", None)
        if isinstance(children, (list, tuple)):
            stack.extend(reversed(children))
        elif hasattr(obj, "begin_step") and getattr(obj, "draws_per_step", False):
            found.append(obj)
    return found


class _ShapeStep:
    """The static buffers, the graph and the loss read-back of one batch shape."""

    def __init__(self, dev, stager: BatchStager, x_shape, y_shape, integer_labels: bool, id_input: bool):
        self.x_host, self.x = stager.buffers("batch", x_shape, np.int32 if id_input else None)
        self.y_host, self.y = stager.buffers("labels", y_shape, np.int32 if integer_labels else None)
        self.loss_host = dev.pinned_empty((1,))
        self.integer_labels = integer_labels
        # correct predictions are counted per sample: one integer label per row of the batch
        self.pred = dev.empty((x_shape[0],), np.int32) if integer_labels and len(y_shape) == 1 else None
        self.classes = None  # known after the first forward
        self.graph = None
        self.loss = None  # the loss layer's (1,) device buffer the graph writes
        self.stateful = []  # the layers whose begin_step runs before each replay
        self.counts = False  # the step counts correct predictions


class CapturedStep:
    """A training step (forward, loss, backward, optimizer update) captured as a CUDA graph once per batch
    shape and replayed: ``step(xb, yb)`` returns the batch's mean loss as a float.

    ``model`` must live on a cuda device (a real GPU, or the simulator, where the graph is emulated: each
    recorded launch replays with its recorded arguments). ``loss_layer`` needs ``forward_device``
    (SoftmaxCrossEntropy, MSELoss). With integer labels and ``count_correct``, the step also counts correct
    predictions on the device (``reset_correct``/``read_correct``). Single-process training only.
    """

    def __init__(self, model, loss_layer, optimizer, count_correct: bool = True, max_graphs: int = 4):
        dev = model.device
        if dev.name != "cuda":
            raise ValueError(f"CapturedStep: CUDA graphs need a cuda device, the model is on {dev!r}")
        if not hasattr(loss_layer, "forward_device"):
            raise TypeError(f"CapturedStep: {type(loss_layer).__name__} has no forward_device (the loss must stay "
                            "on the device inside a graph)")
        self.model, self.loss_layer, self.optimizer, self.dev = model, loss_layer, optimizer, dev
        self.count_correct, self.max_graphs = bool(count_correct), int(max_graphs)
        self._shapes: dict[tuple, _ShapeStep] = {}
        self.stager = BatchStager(dev)  # fit's eager path stages through the same class
        self._check_ids = getattr(_first_layer(model), "check_ids", None)  # an Embedding reads the input
        self.correct = dev.zeros((1,), np.int32)
        self._counted = False
        self.replays = 0  # steps replayed from a graph (the others ran eagerly: first of a shape, or over max)

    # -- the step ------------------------------------------------------------------------------------------
    def step(self, xb, yb) -> float:
        """One training step on a host batch ``xb`` with labels (or targets) ``yb``; the mean loss."""
        xb, yb = np.asarray(xb), np.asarray(yb)
        key = (xb.shape, yb.shape, bool(self.model.training))
        entry = self._shapes.get(key)
        if entry is None:
            entry = self._shapes[key] = _ShapeStep(self.dev, self.stager, xb.shape, yb.shape, yb.dtype.kind in "iub",
                                                   self._check_ids is not None)
        if self._check_ids is not None:  # ids checked on the host, since the graph reads nothing back
            entry.x_host.reshape(-1)[...] = self._check_ids(xb)
        else:
            np.copyto(entry.x_host, xb, casting="same_kind")  # the last step's copies are done: it read its loss
        self.stager.send(entry.x_host, entry.x)
        if entry.graph is None:
            return self._eager(entry, yb, capture=len(self.graphs) < self.max_graphs)
        self._stage_labels(entry, yb)
        self.optimizer.begin_step()  # host work outside the graph: step scalars, then dropout seeds
        for layer in entry.stateful:
            layer.begin_step()
        entry.graph.launch()
        self.replays += 1
        self._counted = self._counted or entry.counts
        return self._read_loss(entry, entry.loss)

    def _stage_labels(self, entry: _ShapeStep, yb) -> None:
        if entry.integer_labels:
            flat = np.ascontiguousarray(yb).reshape(-1)  # (N,) per sample or (N, T) per time step
            if host_device().kernels.copy_labels_checked(entry.y_host.reshape(-1), flat, entry.classes):
                raise ValueError(f"SoftmaxCrossEntropy: labels must lie in [0, {entry.classes}), "
                                 f"got [{yb.min()}, {yb.max()}]")
        else:
            np.copyto(entry.y_host, yb, casting="same_kind")
        self.stager.send(entry.y_host, entry.y)

    def _body(self, entry: _ShapeStep, yb=None):
        """The step's launches: what the graph captures (yb given: the eager first step, labels staged once the
        class count is known)."""
        logits = self.model.forward(entry.x)
        if yb is not None:
            entry.classes = int(logits.shape[1]) if len(logits.shape) == 2 else None
            self._stage_labels(entry, yb)
        loss = self.loss_layer.forward_device(logits, entry.y)
        self.model.backward(self.loss_layer.backward())
        if self.count_correct and entry.pred is not None and len(logits.shape) == 2:
            self.dev.kernels.argmax_rows(entry.pred, logits)
            self.dev.kernels.count_equal(self.correct, entry.pred, entry.y, accumulate=True)
            self._counted = entry.counts = True
        self.optimizer.step()  # under capture: the launch only (begin_step runs before each replay)
        return loss

    def _eager(self, entry: _ShapeStep, yb, capture: bool) -> float:
        loss = self._body(entry, yb)
        value = self._read_loss(entry, loss)
        if capture:
            entry.stateful = _stateful_layers(self.model)
            if hasattr(self.loss_layer, "begin_step"):
                entry.stateful.append(self.loss_layer)
            from cuda_kernels import launch

            launch.begin_capture(self.dev.stream)
            try:
                entry.loss = self._body(entry)
            except BaseException:
                launch.abort_capture()
                raise
            entry.graph = launch.end_capture()
        return value

    def _read_loss(self, entry: _ShapeStep, loss) -> float:
        """The loss back: one 4-byte copy on the stream, then wait for it (and so for the whole step)."""
        self.dev.copy_to_host_async(entry.loss_host, loss)
        self.dev.synchronize_stream()
        return check_loss(type(self.loss_layer).__name__, float(entry.loss_host[0]))

    # -- bookkeeping ------------------------------------------------------------------------------------
    @property
    def graphs(self) -> dict:
        """{(batch shape, label shape, training): the captured graph} for every shape captured so far."""
        return {key: entry.graph for key, entry in self._shapes.items() if entry.graph is not None}

    def reset_correct(self) -> None:
        """Start counting correct predictions from zero (a copy on the stream, outside any graph)."""
        self.dev.copy_from_host(self.correct, np.zeros(1, np.int32))
        self._counted = False

    def read_correct(self) -> int:
        """Correct predictions since ``reset_correct`` (one 4-byte read; 0 when nothing was counted)."""
        return int(self.dev.to_numpy(self.correct)[0]) if self._counted else 0
