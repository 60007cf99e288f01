"""The course's graders (docs/tutorials/): Hypothesis properties and gradient checks run on the student's
version of each exercise. `python cli.py check --only NAME` runs them.

The student's files live in docs/tutorials/exercises/ (stubs until written); set
TILEGRAD_EXERCISES=docs/tutorials/solutions to grade the reference solutions instead. An exercise
that still raises NotImplementedError is skipped with a note, not failed.
"""

import ast
import importlib.util
import inspect
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st
from support import for_all, mismatch, sanitizer_finding, simulated

ROOT = Path(__file__).resolve().parent.parent
FOLDER = Path(os.environ.get("TILEGRAD_EXERCISES", ROOT / "docs" / "tutorials" / "exercises"))
if not FOLDER.is_absolute():
    FOLDER = ROOT / FOLDER
pytestmark = pytest.mark.exercise


def student(name: str):
    path = FOLDER / f"{name}.py"
    if not path.exists():
        pytest.skip(f"{path} does not exist")
    spec = importlib.util.spec_from_file_location(f"exercise_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def attempt(fn, *args):
    # an untouched @njit stub is recognised by its source, not compiled: compiling it would print Numba's
    # "parallel=True but no prange" warning for a function the student has not written yet
    if hasattr(fn, "py_func") and _is_stub(fn.py_func):
        pytest.skip(f"not attempted yet ({fn.py_func.__name__} still raises NotImplementedError)")
    try:
        return fn(*args)
    except NotImplementedError as exc:
        pytest.skip(f"not attempted yet ({exc})")


def attempt_kernel(kernel, grid, block, *args) -> str:
    """Launch the student's CUDA kernel, ``kernel[grid, block](*args)``, or skip if it is still the stub, and
    return the launch shape in words for a failure message (an error the launch raises carries it as a note).

    On a real GPU a kernel's ``raise`` is compiled away (CUDA kernels cannot raise unless compiled with
    debug=True), so the stub would run, write nothing and fail as "never written": recognise it by its
    source instead."""
    if _is_stub(kernel.py_func):
        pytest.skip(f"not attempted yet ({kernel.py_func.__name__} still raises NotImplementedError)")
    shape = launch_shape(kernel, grid, block)
    try:
        attempt(lambda: kernel[grid, block](*args))
    except Exception as exc:
        if hasattr(exc, "add_note"):
            exc.add_note(shape)
        else:  # Python 3.10: pytest shows __notes__ too
            exc.__notes__ = [*getattr(exc, "__notes__", []), shape]
        raise
    return shape


def launch_shape(kernel, grid, block) -> str:
    """E.g. ``launch: leaky_relu_kernel[2, 32] (2 blocks of 32 threads)``."""
    blocks, threads = int(np.prod(grid)), int(np.prod(block))
    return (f"launch: {kernel.py_func.__name__}[{grid}, {block}] ({blocks} block{'s' * (blocks != 1)} "
            f"of {threads} thread{'s' * (threads != 1)})")


def _is_stub(py_func) -> bool:
    """True when the function's body (after its docstring) is only ``raise NotImplementedError(...)``."""
    body = ast.parse(textwrap.dedent(inspect.getsource(py_func))).body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def close(got, expected, what, rtol=1e-5, atol=1e-6):
    """Fail with what `check` shows a student: ``what`` (the inputs, the launch shape), then the outputs
    never written or wrong with their first indices (``support.mismatch``)."""
    problem = mismatch(got, expected, rtol, atol)
    if problem:
        raise AssertionError(f"{what}\n{problem}")


# -- chapter 2 ---------------------------------------------------------------------------------------
SIZES = [1, 2, 31, 32, 33, 63, 64, 65, 97, 255, 256, 257, 1031]


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_leaky_relu(backend):
    module = student("leaky_relu")

    def check(c):
        rng = np.random.default_rng(c["seed"])
        x = rng.standard_normal(c["n"]).astype(np.float32)
        expected = np.where(x > 0, x, c["slope"] * x.astype(np.float64))
        out = np.full_like(x, np.nan)
        what = f"leaky_relu n={c['n']} slope={c['slope']}"
        if backend == "cpu":
            attempt(module.leaky_relu_cpu, out, x, np.float32(c["slope"]))
        else:
            from numba import cuda

            d_out = cuda.to_device(out)
            what += "\n" + attempt_kernel(module.leaky_relu_kernel, c["blocks"], c["threads"],
                                          d_out, cuda.to_device(x), np.float32(c["slope"]))
            out = d_out.copy_to_host()
        close(out, expected, what)

    sizes = [s for s in SIZES if s <= 97] if simulated(backend) else SIZES
    case = st.fixed_dictionaries({"n": st.sampled_from(sizes), "slope": st.sampled_from([0.0, 0.01, 0.3]),
                                  "blocks": st.sampled_from([1, 2]), "threads": st.sampled_from([16, 32]),
                                  "seed": st.integers(0, 999)})
    for_all(backend, case, check, sim_examples=5)


# -- chapter 3 ---------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_gemm_tiled():
    module = student("gemm_tiled")
    tile = module.TILE

    def check(c):
        from numba import cuda

        rng = np.random.default_rng(c["seed"])
        m, n, k = c["m"], c["n"], c["k"]
        a, b = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
        out = cuda.to_device(np.full((m, n), np.nan, np.float32))
        grid = ((n + tile - 1) // tile, (m + tile - 1) // tile)
        shape = attempt_kernel(module.gemm_tiled_kernel, grid, (tile, tile), out, cuda.to_device(a), cuda.to_device(b))
        close(out.copy_to_host(), a.astype(np.float64) @ b, f"gemm_tiled m={m} n={n} k={k}\n{shape}", 1e-4, 1e-4 * k)

    # sorted: Hypothesis shrinks a sampled value toward the list's start, so the reported input is the smallest
    dims = st.sampled_from(sorted({1, tile - 1, tile, tile + 1, 2 * tile + 1, 13}))
    for_all("cuda", st.fixed_dictionaries({"m": dims, "n": dims, "k": dims, "seed": st.integers(0, 999)}), check,
            sim_examples=6)


# -- chapter 4 ---------------------------------------------------------------------------------------
def test_leaky_relu_layer():
    from engine.gradient_check import gradcheck

    module = student("leaky_relu_layer")
    layer = module.LeakyReLU(0.2)
    # inputs away from 0, where LeakyReLU has no derivative, so central differences are exact
    result = attempt(gradcheck, layer, (3, 7))
    assert result.ok, str(result)


# -- chapter 5 ---------------------------------------------------------------------------------------
def test_avgpool():
    module = student("avgpool")

    def check(c):
        rng = np.random.default_rng(c["seed"])
        shape = (c["n"], c["c"], c["h"], c["w"])
        x = rng.standard_normal(shape).astype(np.float32)
        oh, ow = c["h"] // 2, c["w"] // 2
        x64 = x.astype(np.float64)[:, :, :2 * oh, :2 * ow]
        expected = x64.reshape(c["n"], c["c"], oh, 2, ow, 2).mean(axis=(3, 5))
        y = np.full((c["n"], c["c"], oh, ow), np.nan, np.float32)
        attempt(module.avgpool2_forward, y, x)
        close(y, expected, f"avgpool forward {shape}")
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dx = np.full(shape, np.nan, np.float32)
        attempt(module.avgpool2_backward, dx, dy)
        # the adjoint identity: <avgpool(x), dy> == <x, avgpool_backward(dy)>
        assert np.isclose(np.sum(expected * dy), np.sum(x * np.nan_to_num(dx, nan=1e9)), rtol=1e-4, atol=1e-4), \
            "avgpool backward is not the adjoint of forward: <y, dy> != <x, dx>"
        close(dx[:, :, 2 * oh:, :], 0.0, "avgpool backward must write 0 to a dropped trailing row")

    case = st.fixed_dictionaries({"n": st.integers(1, 3), "c": st.integers(1, 3), "h": st.integers(2, 9),
                                  "w": st.integers(2, 9), "seed": st.integers(0, 999)})
    for_all("cpu", case, check)


# -- chapter 6 ---------------------------------------------------------------------------------------
def test_rnn_step():
    module = student("rnn_step")

    def check(c):
        rng = np.random.default_rng(c["seed"])
        shape = (c["n"], c["h"])
        dh_out, dh_next = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
        h = np.tanh(rng.standard_normal(shape)).astype(np.float32)
        out = np.full(shape, np.nan, np.float32)
        attempt(module.rnn_tanh_backward, out, dh_out, dh_next, h)
        expected = (dh_out.astype(np.float64) + dh_next) * (1 - h.astype(np.float64) ** 2)
        close(out, expected, f"rnn_tanh_backward {shape}")

    case = st.fixed_dictionaries({"n": st.integers(1, 65), "h": st.integers(1, 130), "seed": st.integers(0, 999)})
    for_all("cpu", case, check)


# -- chapter 7 ---------------------------------------------------------------------------------------
def test_momentum():
    from cuda_kernels import get_backend

    module = student("momentum")

    def check(c):
        rng = np.random.default_rng(c["seed"])
        p = rng.standard_normal(c["size"]).astype(np.float32)
        buf = np.zeros_like(p)
        p64, buf64 = p.astype(np.float64), np.zeros(c["size"])
        for step in range(1, 4):
            g = rng.standard_normal(c["size"]).astype(np.float32)
            attempt(module.momentum_step, p, buf, g, np.float32(c["lr"]), np.float32(c["momentum"]), step == 1)
            get_backend("numpy").sgd_step(p64, buf64, g.astype(np.float64), c["lr"], momentum=c["momentum"],
                                          first_step=step == 1)
            close(p, p64, f"momentum step {step} (params)")
            close(buf, buf64, f"momentum step {step} (momentum buffer)")

    case = st.fixed_dictionaries({"size": st.sampled_from([1, 7, 64, 1000]), "lr": st.sampled_from([0.01, 0.1]),
                                  "momentum": st.sampled_from([0.5, 0.9]), "seed": st.integers(0, 999)})
    for_all("cpu", case, check)


# -- chapter 2: a warp-shuffle sum ---------------------------------------------------------------------
@pytest.mark.gpu
def test_warp_sum():
    module = student("warp_sum")

    def check(c):
        from numba import cuda

        rng = np.random.default_rng(c["seed"])
        n, threads = c["n"], c["threads"]
        x = rng.standard_normal(n).astype(np.float32)
        blocks = -(-n // threads)
        warps = blocks * threads // 32
        expected = np.pad(x.astype(np.float64), (0, warps * 32 - n)).reshape(warps, 32).sum(axis=1)
        out = cuda.to_device(np.full(warps, np.nan, np.float32))
        shape = attempt_kernel(module.warp_sum_kernel, blocks, threads, out, cuda.to_device(x))
        close(out.copy_to_host(), expected, f"warp_sum n={n} ({warps} warps, one sum each)\n{shape}", 1e-5, 1e-5)

    case = st.fixed_dictionaries({"n": st.sampled_from([1, 5, 31, 32, 33, 63, 64, 65, 100]),
                                  "threads": st.sampled_from([32, 64]), "seed": st.integers(0, 999)})
    for_all("cuda", case, check, sim_examples=5)


# -- chapter 10 --------------------------------------------------------------------------------------
# The stub of fix_racy is a racy kernel that runs, not a NotImplementedError: it is recognised by the
# fingerprint of its body (its code, comments and docstring aside). If you change the stub, print the
# new one with: python -c "from tests.test_exercises import *; print(_body_fingerprint(student('fix_racy')
# .block_sum_kernel.py_func))" (from the repository root, with NUMBA_ENABLE_CUDASIM=1).
FIX_RACY_STUB = "29feec570e7157ed"


def _body_fingerprint(py_func) -> str:
    import hashlib

    body = ast.parse(textwrap.dedent(inspect.getsource(py_func))).body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return hashlib.sha256("".join(ast.dump(node) for node in body).encode()).hexdigest()[:16]


def sanitized(launch):
    """Run ``launch()`` under the sanitizer when kernels run in the simulator (on a GPU: plainly) and return
    its result and the first error or warning found, in the two lines every grader's failure leads with
    (``support.sanitizer_finding``: the finding, then "fix? ..."), or None."""
    import sanitizer
    from cuda_kernels import SIMULATOR

    if not (SIMULATOR and hasattr(sanitizer, "sanitize")):
        return launch(), None
    with sanitizer.sanitize(tools="all") as report:
        result = launch()
    return result, sanitizer_finding(report)


@pytest.mark.gpu
def test_fix_racy():
    module = student("fix_racy")
    kernel, threads = module.block_sum_kernel, module.THREADS
    if _body_fingerprint(kernel.py_func) == FIX_RACY_STUB:
        pytest.skip("not attempted yet (block_sum_kernel is still the racy kernel as given)")

    def check(c):
        from numba import cuda

        x = np.random.default_rng(c["seed"]).standard_normal(c["n"]).astype(np.float32)
        blocks = (c["n"] + threads - 1) // threads
        expected = np.pad(x.astype(np.float64), (0, blocks * threads - c["n"])).reshape(blocks, threads).sum(1)
        out = cuda.to_device(np.full(blocks, np.nan, np.float32))
        shape, first = sanitized(lambda: attempt_kernel(kernel, blocks, threads, out, cuda.to_device(x)))
        what = f"fix_racy n={c['n']}\n{shape}"
        if first is not None:
            raise AssertionError(f"{first}\n{what}")
        close(out.copy_to_host(), expected, what, 1e-5, 1e-4 * threads)

    sizes = [1, threads - 1, threads, threads + 1, 2 * threads + 3]
    for_all("cuda", st.fixed_dictionaries({"n": st.sampled_from(sizes), "seed": st.integers(0, 999)}), check,
            sim_examples=3)


# -- chapter 5: im2col and max-pooling backward --------------------------------------------------------
def _launch_or_call(module, backend, name, out, *args, blocks=1, threads=32):
    """Run the student's ``NAME_cpu`` on the CPU, or ``NAME_kernel[blocks, threads]`` in CUDA; return the
    output on the host and the launch shape in words ('' on the CPU)."""
    if backend == "cpu":
        attempt(getattr(module, f"{name}_cpu"), out, *args)
        return out, ""
    from numba import cuda

    d_out = cuda.to_device(out)
    device_args = [cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in args]
    shape = attempt_kernel(getattr(module, f"{name}_kernel"), blocks, threads, d_out, *device_args)
    return d_out.copy_to_host(), "\n" + shape


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_im2col(backend):
    from hypothesis import assume

    from cuda_kernels import get_backend

    module = student("im2col")

    def check(c):
        k, s, p = c["k"], c["stride"], c["padding"]
        assume(c["h"] + 2 * p >= k and c["w"] + 2 * p >= k)
        rng = np.random.default_rng(c["seed"])
        x = rng.standard_normal((c["n"], c["c"], c["h"], c["w"])).astype(np.float32)
        oh, ow = (c["h"] + 2 * p - k) // s + 1, (c["w"] + 2 * p - k) // s + 1
        expected = np.empty((c["n"] * oh * ow, c["c"] * k * k))
        get_backend("numpy").im2col(expected, x.astype(np.float64), k, s, p)
        cols = np.full(expected.shape, np.nan, np.float32)
        got, shape = _launch_or_call(module, backend, "im2col", cols, x, k, s, p, blocks=c["blocks"],
                                     threads=c["threads"])
        close(got, expected, f"im2col x={x.shape} k={k} stride={s} padding={p} -> cols {cols.shape}{shape}")

    small = simulated(backend)  # every simulated thread costs ~0.1 ms: tiny images, one or two blocks
    sides = st.integers(1, 5) if small else st.integers(1, 11)
    case = st.fixed_dictionaries({
        "n": st.integers(1, 1 if small else 3), "c": st.integers(1, 2 if small else 4), "h": sides, "w": sides,
        "k": st.integers(1, 3), "stride": st.integers(1, 2), "padding": st.integers(0, 1),
        "blocks": st.sampled_from([1, 2]), "threads": st.sampled_from([16, 32]), "seed": st.integers(0, 999)})
    for_all(backend, case, check, sim_examples=5)


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_maxpool_backward(backend):
    from cuda_kernels import get_backend

    module = student("maxpool_backward")
    ref = get_backend("numpy")

    def check(c):
        k, s = c["k"], c["stride"]
        n, ch, h, w = c["n"], c["c"], k + c["extra_h"], k + c["extra_w"]
        rng = np.random.default_rng(c["seed"])
        # distinct values: every window has one maximum, so the argmax is unambiguous
        x = rng.permutation(n * ch * h * w).reshape(n, ch, h, w).astype(np.float64)
        oh, ow = (h - k) // s + 1, (w - k) // s + 1
        y, argmax = np.empty((n, ch, oh, ow)), np.empty((n, ch, oh, ow), np.int32)
        ref.maxpool_forward(y, argmax, x, k, s)
        dy = rng.standard_normal(y.shape)
        expected = np.empty(x.shape)
        ref.maxpool_backward(expected, dy, argmax, k, s)
        dx = np.full(x.shape, np.nan, np.float32)
        got, shape = _launch_or_call(module, backend, "maxpool_backward", dx, dy.astype(np.float32), argmax, k, s,
                                     blocks=c["blocks"], threads=c["threads"])
        overlap = " (overlapping windows)" if s < k else ""
        close(got, expected, f"maxpool_backward x={x.shape} k={k} stride={s}{overlap}{shape}")

    small = simulated(backend)
    extra = st.integers(0, 3 if small else 8)
    case = st.fixed_dictionaries({
        "n": st.integers(1, 1 if small else 2), "c": st.integers(1, 1 if small else 3), "k": st.integers(2, 3),
        "stride": st.integers(1, 3), "extra_h": extra, "extra_w": extra, "blocks": st.sampled_from([1, 2]),
        "threads": st.sampled_from([16, 32]), "seed": st.integers(0, 999)})
    for_all(backend, case, check, sim_examples=5)


# -- chapter 7: Adam -----------------------------------------------------------------------------------
def test_adam():
    from cuda_kernels import get_backend

    module = student("adam")

    def check(c):
        rng = np.random.default_rng(c["seed"])
        beta1, beta2 = c["betas"]
        p = rng.standard_normal(c["size"]).astype(np.float32)
        m, v = np.zeros_like(p), np.zeros_like(p)
        p64, m64, v64 = p.astype(np.float64), np.zeros(c["size"]), np.zeros(c["size"])
        for step in range(1, 4):
            g = rng.standard_normal(c["size"]).astype(np.float32)
            g[::5] = 0.0  # a zero gradient: v stays tiny there and eps matters
            attempt(module.adam_step, p, m, v, g, np.float32(c["lr"]), np.float32(beta1), np.float32(beta2),
                    np.float32(1e-8), step)
            get_backend("numpy").adam_step(p64, m64, v64, g.astype(np.float64), c["lr"], beta1, beta2, 1e-8,
                                           step=step)
            what = f"adam size={c['size']} lr={c['lr']} betas={c['betas']} step {step}"
            close(m, m64, f"{what} (m, the first moment)")
            close(v, v64, f"{what} (v, the second moment)")
            close(p, p64, f"{what} (params)")

    case = st.fixed_dictionaries({"size": st.sampled_from([1, 7, 64, 1000]), "lr": st.sampled_from([1e-3, 1e-2]),
                                  "betas": st.sampled_from([(0.9, 0.999), (0.5, 0.9)]), "seed": st.integers(0, 999)})
    for_all("cpu", case, check)


# -- chapter 8: the LSTM cell's backward ---------------------------------------------------------------
def test_lstm_backward():
    from cuda_kernels import get_backend

    module = student("lstm_backward")
    ref = get_backend("numpy")

    def check(c):
        rng = np.random.default_rng(c["seed"])
        n, hidden = c["n"], c["hidden"]
        pre = (2 * rng.standard_normal((n, 4 * hidden))).astype(np.float32)
        c_prev = rng.standard_normal((n, hidden)).astype(np.float32)
        h, cell, gates = np.empty((n, hidden)), np.empty((n, hidden)), np.empty((n, 4 * hidden))
        ref.lstm_cell_forward(h, cell, gates, pre.astype(np.float64), c_prev.astype(np.float64))
        gates, cell = gates.astype(np.float32), cell.astype(np.float32)
        dh_out, dh_next, dc_next = (rng.standard_normal((n, hidden)).astype(np.float32) for _ in range(3))
        expected_dpre, expected_dc_prev = np.empty((n, 4 * hidden)), np.empty((n, hidden))
        ref.lstm_cell_backward(expected_dpre, expected_dc_prev, *(a.astype(np.float64) for a in (
            dh_out, dh_next, dc_next, gates, cell, c_prev)))
        dpre, dc_prev = np.full((n, 4 * hidden), np.nan, np.float32), np.full((n, hidden), np.nan, np.float32)
        attempt(module.lstm_cell_backward, dpre, dc_prev, dh_out, dh_next, dc_next, gates, cell, c_prev)
        what = f"lstm_cell_backward n={n} hidden={hidden}"
        close(dc_prev, expected_dc_prev, f"{what} (dc_prev)", 1e-4, 1e-5)
        for gate, name in enumerate("ifgo"):
            cols = slice(gate * hidden, (gate + 1) * hidden)
            close(dpre[:, cols], expected_dpre[:, cols], f"{what} (dpre, gate {name}: columns {cols.start}:"
                  f"{cols.stop})", 1e-4, 1e-5)

    case = st.fixed_dictionaries({"n": st.integers(1, 9), "hidden": st.sampled_from([1, 2, 7, 8, 9, 31, 32, 33]),
                                  "seed": st.integers(0, 999)})
    for_all("cpu", case, check)
