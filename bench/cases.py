"""The bench's cases: what each op family runs, how many FLOPs and bytes that is, and how its result is
checked against the float64 reference after timing.

Each ``<op>_cases(quick)`` yields ``Case`` objects. A case prepares its inputs once per device
(``setup(device) -> run``), knows its work (``flops``, ``bytes``) and validates the output of the last
run (``check() -> max relative error``). Inputs are random, never zeros.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from cuda_kernels import get_backend
from cuda_kernels.shapes import conv_output_size

REF = get_backend("numpy")


@dataclass
class Case:
    op: str
    case: str
    impls: dict[str, list[str]]  # device -> implementation names
    setup: Callable  # (device, impl) -> (run, check)
    flops: float = 0.0
    bytes: float = 0.0
    blas_threaded: tuple = ()  # CPU impls that may give BLAS every thread (nothing else runs beside them)
    extra: dict = field(default_factory=dict)
    peer: dict | None = None  # what a peer library needs to run the same case


def rel_error(out, ref) -> float:
    out = np.asarray(out, np.float64)
    return float(np.abs(out - ref).max() / max(1e-12, np.abs(ref).max()))


def _host(dev, array):
    return dev.to_numpy(array)


# ------------------------------------------------------------------------------------------------
NUMPY_BLAS = "numpy matmul"


def gemm_cases(quick: bool) -> Iterator[Case]:
    shapes = [("256^3", 256, 256, 256, False), ("512^3", 512, 512, 512, False)]
    if not quick:
        shapes += [("1024^3", 1024, 1024, 1024, False), ("2048^3", 2048, 2048, 2048, False),
                   ("4096^3", 4096, 4096, 4096, False)]
    shapes += [("lenet fc1 b64 (64x400 @ 400x120)", 64, 120, 400, True),
               ("mlp fc1 b256 (256x784 @ 784x256)", 256, 256, 784, True)]
    for name, m, n, k, trans_b in shapes:
        rng = np.random.default_rng(m * 7 + n)
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
        ref = a.astype(np.float64) @ (b.T if trans_b else b).astype(np.float64)
        # NUMPY_BLAS is the yardstick, not ours: np.matmul on all of BLAS's threads (the "vs BLAS" ratio)
        cpu_impls = ["blas_split", "blas_bands", "blas"] + (["prange"] if m * n * k <= 1024**3 else []) + [NUMPY_BLAS]
        # every rung of the ladder (cuda_kernels/gemm.py, gemm_cuda_c.py: CUDA C twin and TF32 tensor cores)
        cuda_impls = ["warp_tiled", "double_buffered", "register_blocked_transposed_a", "register_blocked_8x8",
                      "register_blocked", "split_k", "shared_tiled"] + (["naive"] if m * n * k <= 2048**3 else []) + [
                      "cuda_c_double_buffered", "wmma_tf32"]

        def setup(dev, impl, a=a, b=b, ref=ref, m=m, n=n, trans_b=trans_b):
            A, B, C = dev.asarray(a), dev.asarray(b), dev.empty((m, n))
            if impl == NUMPY_BLAS:
                run = lambda: np.matmul(A, B.T if trans_b else B, out=C)  # noqa: E731
            else:
                run = lambda: dev.kernels.gemm(C, A, B, trans_b=trans_b, version=impl)  # noqa: E731
            return run, lambda: rel_error(_host(dev, C), ref)

        yield Case("gemm", name, {"cpu": cpu_impls, "cuda": cuda_impls}, setup, flops=2.0 * m * n * k,
                   bytes=4.0 * (m * k + k * n + m * n), blas_threaded=("blas", NUMPY_BLAS),
                   peer={"kind": "gemm", "a": a, "b": b, "trans_b": trans_b})


# ------------------------------------------------------------------------------------------------
CONV_SHAPES = [("lenet c1 1->6 5x5 pad2 28x28 b64", 64, 1, 28, 6, 5, 2),
               ("lenet c2 6->16 5x5 14x14 b64", 64, 6, 14, 16, 5, 0),
               ("32->64 3x3 pad1 32x32 b64", 64, 32, 32, 64, 3, 1)]


def conv_cases(quick: bool) -> Iterator[Case]:
    from layers import Conv2D

    for name, n, c, hw, f, k, p in CONV_SHAPES:
        o = conv_output_size(hw, k, 1, p)
        rng = np.random.default_rng(hw + f)
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        dy = rng.standard_normal((n, f, o, o)).astype(np.float32)
        macs = n * o * o * f * c * k * k
        for direction in ("forward", "forward+backward"):
            def setup(dev, impl, x=x, dy=dy, c=c, f=f, k=k, p=p, direction=direction):
                layer = Conv2D(c, f, k, padding=p, device=dev, seed=1, algorithm=impl)
                X, DY = dev.asarray(x), dev.asarray(dy)
                twin = Conv2D(c, f, k, padding=p, device=_reference(), seed=1)
                y_ref = twin.forward(x.astype(np.float64))
                dx_ref = twin.backward(dy.astype(np.float64)) if direction != "forward" else None

                def run():
                    y = layer.forward(X)
                    return layer.backward(DY) if direction != "forward" else y

                def check():
                    out = run()  # y, or dx after backward: the same buffers the timed calls wrote
                    if direction == "forward":
                        return rel_error(_host(dev, out), y_ref)
                    return max(rel_error(_host(dev, out), dx_ref),
                               rel_error(_host(dev, layer.weight.grad), twin.weight.grad))
                return run, check

            work = 1 if direction == "forward" else 3  # backward: dW and dx GEMMs, each as big as forward
            impls = {"cpu": ["image_gemm", "im2col"], "cuda": ["im2col", "implicit_gemm"]}
            yield Case("conv", f"{name} {direction}", impls, setup,
                       flops=2.0 * macs * work,
                       bytes=4.0 * work * (x.size + n * o * o * f + f * c * k * k + n * o * o * c * k * k * 2),
                       peer={"kind": "conv", "x": x, "dy": dy, "f": f, "k": k, "p": p, "direction": direction})


_REFERENCE = {}


def _reference():
    from runtime.device import Device

    if "dev" not in _REFERENCE:
        _REFERENCE["dev"] = Device("numpy")
    return _REFERENCE["dev"]


# ------------------------------------------------------------------------------------------------
def pool_cases(quick: bool) -> Iterator[Case]:
    for name, shape in [("2x2 on 64x6x28x28", (64, 6, 28, 28)), ("2x2 on 64x64x32x32", (64, 64, 32, 32))]:
        rng = np.random.default_rng(shape[1])
        x = rng.standard_normal(shape).astype(np.float32)
        n, c, h, w = shape
        out_shape = (n, c, h // 2, w // 2)
        dy = rng.standard_normal(out_shape).astype(np.float32)
        y64, arg64, dx64 = np.empty(out_shape), np.empty(out_shape, np.int32), np.empty(shape)
        REF.maxpool_forward(y64, arg64, x.astype(np.float64), 2, 2)
        REF.maxpool_backward(dx64, dy.astype(np.float64), arg64, 2, 2)
        for direction, ref in (("forward", y64), ("backward", dx64)):
            def setup(dev, impl, x=x, dy=dy, out_shape=out_shape, direction=direction, ref=ref, shape=shape):
                X, DY = dev.asarray(x), dev.asarray(dy)
                Y, ARG, DX = dev.empty(out_shape), dev.empty(out_shape, np.int32), dev.empty(shape)
                dev.kernels.maxpool_forward(Y, ARG, X, 2, 2)
                if direction == "forward":
                    run = lambda: dev.kernels.maxpool_forward(Y, ARG, X, 2, 2)  # noqa: E731
                    return run, lambda: rel_error(_host(dev, Y), ref)
                run = lambda: dev.kernels.maxpool_backward(DX, DY, ARG, 2, 2)  # noqa: E731
                return run, lambda: rel_error(_host(dev, DX), ref)

            moved = x.size * 4 + int(np.prod(out_shape)) * 8  # x (or dx) once, y (or dy) and argmax once
            yield Case("pool", f"{name} {direction}", {"cpu": ["prange"], "cuda": ["gather"]}, setup, flops=0.0,
                       bytes=float(moved), peer={"kind": "pool", "x": x, "dy": dy, "direction": direction})


# ------------------------------------------------------------------------------------------------
def elementwise_cases(quick: bool) -> Iterator[Case]:
    """Memory-bound passes: their yardstick is the copy ceiling (ReLU and tanh read 4 and write 4 bytes per
    element, add reads 8 and writes 4)."""
    sizes = [1 << 20] + ([] if quick else [1 << 24])
    for size in sizes:
        rng = np.random.default_rng(size % 997)
        x = rng.standard_normal(size).astype(np.float32)
        y = rng.standard_normal(size).astype(np.float32)
        for name, moved in (("relu", 8), ("tanh", 8), ("add", 12)):
            x64 = x.astype(np.float64)
            ref = {"relu": np.maximum(x64, 0.0), "tanh": np.tanh(x64), "add": x64 + y}[name]

            def setup(dev, impl, name=name, ref=ref, x=x, y=y):
                X, Y, out = dev.asarray(x), dev.asarray(y), dev.empty(x.shape)
                if name == "add":
                    run = lambda: dev.kernels.add(out, X, Y)  # noqa: E731
                else:
                    run = lambda: dev.kernels.activation_forward(out, X, name)  # noqa: E731
                return run, lambda: rel_error(_host(dev, out), ref)

            yield Case("elementwise", f"{name} {size / (1 << 20):g}M floats",
                       {"cpu": ["prange"], "cuda": ["grid-stride"]}, setup, bytes=float(moved * size),
                       peer={"kind": "elementwise", "name": name, "x": x, "y": y})
    # the one-block sum behind every loss (cuda_kernels/reductions.py): a shared-memory tree against warp shuffles
    x = np.random.default_rng(5).standard_normal(1 << 16).astype(np.float32)
    total = x.astype(np.float64).sum()

    def setup_sum(dev, impl, x=x, ref=total):
        X, out = dev.asarray(x), dev.empty((1,))
        extra = {} if impl == "serial" else {"version": impl}
        return lambda: dev.kernels.scaled_sum(out, X, 1.0, **extra), lambda: rel_error(_host(dev, out), [ref])

    yield Case("elementwise", "sum 64K floats (one block)",
               {"cpu": ["serial"], "cuda": ["shared_tree", "warp_shuffle"]}, setup_sum, flops=float(x.size),
               bytes=4.0 * x.size)


# ------------------------------------------------------------------------------------------------
def rnn_cases(quick: bool) -> Iterator[Case]:
    """The Elman RNN, then the LSTM and the GRU (one input GEMM for all steps, then per step a GEMM and one
    fused cell kernel; BPTT the same way back), forward + BPTT over a sequence, dx checked against float64."""
    from layers import GRU, LSTM, RNN

    n, t, i, h = 64, 32, 64, 128
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, t, i)).astype(np.float32)
    dy = rng.standard_normal((n, t, h)).astype(np.float32)

    def setup_for(cls, x, dy):
        def setup(dev, impl):
            layer, twin = cls(i, h, device=dev, seed=2), cls(i, h, device=_reference(), seed=2)
            X, DY = dev.asarray(x), dev.asarray(dy)
            twin.forward(x.astype(np.float64))
            dx_ref = twin.backward(dy.astype(np.float64))

            def run():
                layer.forward(X)
                return layer.backward(DY)

            return run, lambda: rel_error(_host(dev, run()), dx_ref)
        return setup

    flops = 3 * 2.0 * n * t * h * (i + h)
    yield Case("rnn", f"forward+BPTT b{n} T{t} {i}->{h}", {"cpu": ["gemm+fused tanh"], "cuda": ["gemm+fused tanh"]},
               setup_for(RNN, x, dy), flops=flops, bytes=4.0 * 3 * t * (n * (i + 3 * h) + h * (i + h)),
               peer={"kind": "rnn", "x": x, "dy": dy, "h": h})
    # The gated cells: G gate blocks each, so G times the Elman cell's GEMM FLOPs; per step the weights
    # (G*H x (I+H)) and, per row, x_t, the G*H pre-activations/gates written and read back, and a few (N, H)
    # states. --quick runs a shorter sequence.
    t_gated = 8 if quick else t
    x_g, dy_g = x[:, :t_gated].copy(), dy[:, :t_gated].copy()
    for name, cls, gates in (("lstm", LSTM, 4), ("gru", GRU, 3)):
        yield Case("rnn", f"{name} forward+BPTT b{n} T{t_gated} {i}->{h}",
                   {"cpu": ["gemm+fused cell"], "cuda": ["gemm+fused cell"]}, setup_for(cls, x_g, dy_g),
                   flops=gates * 3 * 2.0 * n * t_gated * h * (i + h),
                   bytes=4.0 * 3 * t_gated * (n * (i + 2 * gates * h + 4 * h) + gates * h * (i + h)),
                   peer={"kind": name, "x": x_g, "dy": dy_g, "h": h})


# ------------------------------------------------------------------------------------------------
def optim_cases(quick: bool, gpu: bool) -> Iterator[Case]:
    sizes = [1_000_000] + ([] if quick else [10_000_000]) + ([100_000_000] if gpu and not quick else [])
    for size in sizes:
        rng = np.random.default_rng(size % 1000)
        p0 = rng.standard_normal(size).astype(np.float32)
        g = rng.standard_normal(size).astype(np.float32)
        for name, moved in (("sgd-momentum", 20), ("adam", 28)):
            p64, s1, s2 = p0.astype(np.float64), np.zeros(size), np.zeros(size)
            if name == "adam":
                REF.adam_step(p64, s1, s2, g.astype(np.float64), lr=1e-3, step=1)
            else:
                REF.sgd_step(p64, s1, g.astype(np.float64), lr=1e-2, momentum=0.9, first_step=True)

            def setup(dev, impl, name=name, p0=p0, g=g, p64=p64, size=size):
                P, G = dev.asarray(p0.copy()), dev.asarray(g)  # a copy: the steps below write P in place
                S1, S2 = dev.zeros((size,)), dev.zeros((size,))
                if name == "adam":
                    run = lambda: dev.kernels.adam_step(P, S1, S2, G, lr=1e-3, step=1)  # noqa: E731
                else:
                    run = lambda: dev.kernels.sgd_step(P, S1, G, lr=1e-2, momentum=0.9, first_step=True)  # noqa: E731

                def check():  # re-run once on fresh state, then compare with one reference step
                    dev.copy(P, dev.asarray(p0.copy()))
                    dev.kernels.fill(S1, 0.0)
                    dev.kernels.fill(S2, 0.0)
                    run()
                    return rel_error(_host(dev, P), p64)
                return run, check

            label = f"{size / 1e6:g}M params"
            yield Case("optim", f"{name} {label}", {"cpu": ["fused prange"], "cuda": ["fused kernel"]}, setup,
                       flops=(12.0 if name == "adam" else 4.0) * size, bytes=float(moved * size),
                       peer={"kind": "optim", "name": name, "p": p0, "g": g})


# ------------------------------------------------------------------------------------------------
TRAIN_CASES = [("lenet-5 b64", "lenet", 64), ("lenet-5 b256", "lenet", 256), ("mlp 784-256-256-10 b256", "mlp", 256),
               ("mlp 784-256-256-10 b1024", "mlp", 1024)]  # --quick runs every other one
# `train`'s own steps on the bundled digits (its recipes: batch 32; LeNet-5 on 28x28, the MLP on 64 pixels, the
# LSTM and GRU over 8 rows of 8): small steps of many small loops, where threads help least. Run by --quick too.
DIGITS_TRAIN_CASES = [("lenet-5 digits b32", "lenet", 32), ("mlp 64-256-256-10 digits b32", "mlp", 32),
                      ("lstm 8->64 digits b32", "lstm", 32), ("gru 8->64 digits b32", "gru", 32)]
DIGITS_INPUT_SHAPES = {"lenet": (1, 28, 28), "mlp": (64,), "lstm": (8, 8), "gru": (8, 8)}


TRAIN_CPU_IMPL = "fwd+bwd+adam"
# On a GPU: "eager", one Python launch per kernel (the batch copied over, the loss read back), and "graph", the
# same step captured once as a CUDA graph and replayed (engine.cuda_graph.CapturedStep: the batch staged, one
# graph launch, the loss read back). The PyTorch peers run the same two ways (bench/peers.py).
TRAIN_CUDA_IMPLS = ["eager", "graph"]
TRAIN_PEER_IMPLS_BY_DEVICE = {"cpu": ["eager"], "cuda": ["eager", "graph"]}


def train_cases(quick: bool) -> Iterator[Case]:
    import layers as L
    import optim as O
    from engine.models import gru_classifier, lenet, lstm_classifier, mlp

    builders = {"lenet": lambda d, x: lenet(d), "mlp": lambda d, x: mlp(d, in_features=x.shape[1]),
                "lstm": lambda d, x: lstm_classifier(d, input_size=x.shape[2]),
                "gru": lambda d, x: gru_classifier(d, input_size=x.shape[2])}
    digits = [(name, model, batch, DIGITS_INPUT_SHAPES[model]) for name, model, batch in DIGITS_TRAIN_CASES]
    mnist_sized = [(name, model, batch, (1, 28, 28) if model == "lenet" else (784,))
                   for name, model, batch in (TRAIN_CASES if not quick else TRAIN_CASES[::2])]
    for name, model_name, batch, sample_shape in mnist_sized + digits:
        rng = np.random.default_rng(batch)
        x = rng.random((batch, *sample_shape)).astype(np.float32)
        y = rng.integers(0, 10, batch)

        def setup(dev, impl, model_name=model_name, x=x, y=y):
            def build(d):
                return builders[model_name](d, x)
            model, ce = build(dev), L.SoftmaxCrossEntropy()
            opt = O.Adam(model.parameters(), lr=1e-3)
            twin = build(_reference())
            loss_ref = L.SoftmaxCrossEntropy().forward(twin.forward(x.astype(np.float64)), y)
            X = dev.asarray(x)
            state = {}

            if impl == "graph":
                from engine.cuda_graph import CapturedStep

                captured = CapturedStep(model, ce, opt, count_correct=False)
                captured.step(x, y)  # the first batch runs eagerly and is captured: outside the timed calls

                def run():
                    state["loss"] = captured.step(x, y)
            elif impl == "eager":
                def run():  # as the graph step does: the batch over from the host, the loss back
                    dev.copy_from_host(X, x)
                    state["loss"] = ce.forward(model.forward(X), y)
                    model.backward(ce.backward())
                    opt.step()
            else:
                def run():
                    state["loss"] = ce.forward(model.forward(X), y)
                    model.backward(ce.backward())
                    opt.step()

            def check():  # the first step's loss, from the untouched initial weights, against float64
                fresh, fresh_ce = build(dev), L.SoftmaxCrossEntropy()
                err = abs(fresh_ce.forward(fresh.forward(X), y) - loss_ref) / abs(loss_ref)
                if impl == "graph":  # and the replayed step against eager steps: the same parameters after N
                    err = max(err, graph_against_eager(dev, build, x, y))
                return err
            return run, check

        yield Case("train", name, {"cpu": [TRAIN_CPU_IMPL], "cuda": list(TRAIN_CUDA_IMPLS)}, setup,
                   extra={"batch": batch}, peer={"kind": "train", "model": model_name, "x": x, "y": y,
                                                 "impls": TRAIN_PEER_IMPLS_BY_DEVICE})


GRAPH_CHECK_STEPS = 3  # the first runs eagerly and is captured; the others replay the graph
GRAPH_CHECK_TOLERANCE = 1e-4  # float32 parameters: replays and eager steps run the same kernels on the same data


class RowFailed(Exception):
    """A row's check found a wrong answer: the runner reports the row as failed, with this message."""


def graph_against_eager(dev, build, x, y, steps: int = GRAPH_CHECK_STEPS) -> float:
    """Max relative difference between the parameters after ``steps`` captured-and-replayed steps and after as
    many eager steps, from the same initial weights; ``RowFailed`` beyond ``GRAPH_CHECK_TOLERANCE``."""
    import layers as L
    import optim as O
    from engine.cuda_graph import CapturedStep

    params = []
    for graph in (False, True):
        model, ce = build(dev), L.SoftmaxCrossEntropy()
        opt = O.Adam(model.parameters(), lr=1e-3)
        captured = CapturedStep(model, ce, opt, count_correct=False) if graph else None
        for _ in range(steps):
            if graph:
                captured.step(x, y)
            else:
                ce.forward(model.forward(dev.asarray(x)), y)
                model.backward(ce.backward())
                opt.step()
        params.append(np.asarray(dev.to_numpy(model.flat.data), np.float64))
        if graph and captured.replays != steps - 1:
            raise RowFailed(f"the graph step replayed {captured.replays} of {steps - 1} steps")
    eager, replayed = params
    err = float(np.max(np.abs(replayed - eager)) / max(np.max(np.abs(eager)), 1e-30))
    if not err <= GRAPH_CHECK_TOLERANCE:
        raise RowFailed(f"after {steps} steps the replayed graph's parameters differ from eager ones by {err:.1e} "
                        f"(relative; tolerance {GRAPH_CHECK_TOLERANCE:.0e})")
    return err


# ------------------------------------------------------------------------------------------------
ALLREDUCE_IMPL = "MPI_Allreduce"


def allreduce_cases(quick: bool) -> Iterator[Case]:
    """MPI_Allreduce (sum of float32) over message sizes, 4 B to 16 MiB. Not timed in this process: the
    runner measures the whole family in one ``mpiexec`` job per rank count (bench/scaling.py, the OSU
    micro-benchmarks' loop) and checks every result against the expected sum."""
    from .scaling import ALLREDUCE_SIZES, ALLREDUCE_SIZES_QUICK

    for size in ALLREDUCE_SIZES_QUICK if quick else ALLREDUCE_SIZES:
        label = f"{size // 2**20} MiB" if size >= 2**20 else f"{size // 2**10} KiB" if size >= 2**10 else f"{size} B"
        yield Case("allreduce", label, {"cpu": [ALLREDUCE_IMPL]}, setup=None, bytes=float(size),
                   extra={"mpi": True, "message_bytes": size})


def all_cases(ops: list[str], quick: bool, gpu: bool) -> Iterator[Case]:
    makers = {"gemm": gemm_cases, "conv": conv_cases, "pool": pool_cases, "elementwise": elementwise_cases,
              "rnn": rnn_cases,
              "optim": lambda q: optim_cases(q, gpu), "train": train_cases, "allreduce": allreduce_cases}
    for op in ops:
        yield from makers[op](quick)
