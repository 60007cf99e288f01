"""Reductions and losses on every backend against float64 references."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st
from support import BACKENDS, assert_close, for_all, kernels, poisoned, random_array, simulated, to_backend, to_host

from cuda_kernels import reductions as R

WARP_KERNELS = ["scaled_sum_warp_shuffle_kernel", "softmax_cross_entropy_warp_per_row_kernel"]


def case(backend):
    sim = simulated(backend)
    return st.fixed_dictionaries({
        "n": st.sampled_from([1, 2, 31, 32, 33, 65] if sim else [1, 7, 31, 32, 33, 255, 257, 1031]),
        "c": st.sampled_from([1, 2, 10, 31, 33] if sim else [1, 2, 10, 31, 32, 33, 100]),
        "scale": st.sampled_from([1.0, 10.0, 300.0]),  # 300: logits that overflow exp without the max shift
        "seed": st.integers(0, 2**16),
    })


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_cross_entropy_forward_backward(backend):
    def check(c):
        rng = np.random.default_rng(c["seed"])
        n, C = c["n"], c["c"]
        logits = random_array(rng, (n, C), c["scale"])
        labels = rng.integers(0, C, n).astype(np.int32)
        ref = kernels("numpy")
        loss64, rows64, probs64 = np.empty(1), np.empty(n), np.empty((n, C))
        ref.softmax_cross_entropy_forward(loss64, rows64, probs64, logits.astype(np.float64), labels)
        k = kernels(backend)
        loss, rows, probs = poisoned(backend, (1,)), poisoned(backend, (n,)), poisoned(backend, (n, C))
        k.softmax_cross_entropy_forward(loss, rows, probs, to_backend(backend, logits), to_backend(backend, labels))
        tol = 2e-6 * max(1.0, c["scale"])
        assert_close(probs, probs64, 1e-4, 1e-6, "probs")
        assert_close(rows, rows64, 1e-4, tol, "row losses")
        assert_close(loss, loss64, 1e-4, tol, "mean loss")
        dlogits = poisoned(backend, (n, C))
        k.softmax_cross_entropy_backward(dlogits, to_backend(backend, to_host(probs)), to_backend(backend, labels),
                                         1 / n)
        d64 = np.empty((n, C))
        ref.softmax_cross_entropy_backward(d64, to_host(probs).astype(np.float64), labels, 1 / n)
        assert_close(dlogits, d64, 1e-5, 1e-7, "dlogits")

    for_all(backend, case(backend), check, sim_examples=3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_column_sums_of_tall_narrow_matrices(backend):
    # a convolution's bias gradient: few columns, many rows; on the GPU past ROW_CHUNK rows in two passes
    chunk = R.ROW_CHUNK

    def check(c):
        rng = np.random.default_rng(c["seed"])
        x = random_array(rng, (c["rows"], c["cols"]))
        start = random_array(rng, (c["cols"],))
        expected = x.astype(np.float64).sum(0) + (start if c["accumulate"] else 0)  # before: sums may be start
        k = kernels(backend)
        sums = to_backend(backend, start) if c["accumulate"] else poisoned(backend, (c["cols"],))
        k.column_sums(sums, to_backend(backend, x), accumulate=c["accumulate"])
        assert_close(sums, expected, 1e-5, 1e-5 * c["rows"] ** 0.5, f"column_sums {c}")

    for_all(backend, st.fixed_dictionaries({
        "rows": st.sampled_from([chunk - 1, chunk, chunk + 1, 2 * chunk + 7]), "cols": st.sampled_from([1, 6, 33]),
        "accumulate": st.booleans(), "seed": st.integers(0, 999)}), check, sim_examples=3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_column_sums_of_wide_matrices(backend):
    # a Dense layer's bias gradient; on the CPU, column counts straddle its 64-column blocks and row counts
    # its 1,024-row bands (the two ways it splits the work)
    def check(c):
        rng = np.random.default_rng(c["seed"])
        x = random_array(rng, (c["rows"], c["cols"]))
        start = random_array(rng, (c["cols"],))
        expected = x.astype(np.float64).sum(0) + (start if c["accumulate"] else 0)
        k = kernels(backend)
        sums = to_backend(backend, start) if c["accumulate"] else poisoned(backend, (c["cols"],))
        k.column_sums(sums, to_backend(backend, x), accumulate=c["accumulate"])
        assert_close(sums, expected, 1e-5, 1e-5 * c["rows"] ** 0.5, f"column_sums {c}")

    for_all(backend, st.fixed_dictionaries({
        "rows": st.sampled_from([1, 7, 1023, 1025]), "cols": st.sampled_from([63, 64, 65, 127, 128, 129, 200]),
        "accumulate": st.booleans(), "seed": st.integers(0, 999)}), check, sim_examples=2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_column_sums_argmax_count_mse(backend):
    def check(c):
        rng = np.random.default_rng(c["seed"])
        n, C = c["n"], c["c"]
        x = random_array(rng, (n, C))
        k = kernels(backend)
        X = to_backend(backend, x)
        sums = poisoned(backend, (C,))
        k.column_sums(sums, X)
        assert_close(sums, x.astype(np.float64).sum(0), 1e-5, 1e-5 * n, "column_sums")
        arg = poisoned(backend, (n,), np.int32)
        k.argmax_rows(arg, X)
        np.testing.assert_array_equal(to_host(arg), x.argmax(1))
        labels = rng.integers(0, C, n).astype(np.int32)
        count = poisoned(backend, (1,), np.int32)
        k.count_equal(count, arg, to_backend(backend, labels))
        assert to_host(count)[0] == np.count_nonzero(x.argmax(1) == labels)
        k.count_equal(count, arg, to_backend(backend, labels), accumulate=True)
        assert to_host(count)[0] == 2 * np.count_nonzero(x.argmax(1) == labels)
        target = random_array(rng, (n, C))
        loss, sq = poisoned(backend, (1,)), poisoned(backend, (n, C))
        k.mse_forward(loss, sq, X, to_backend(backend, target))
        assert_close(loss, [((x.astype(np.float64) - target) ** 2).mean()], 1e-5, 1e-7, "mse")
        dpred = poisoned(backend, (n, C))
        k.mse_backward(dpred, X, to_backend(backend, target))
        assert_close(dpred, 2 * (x.astype(np.float64) - target) / x.size, 1e-5, 1e-9, "mse backward")

    for_all(backend, case(backend), check, sim_examples=3)


def test_out_of_range_labels_are_rejected_on_the_cpu():
    logits = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"'labels' must lie in \[0, 3\)"):
        kernels("cpu").softmax_cross_entropy_forward(np.zeros(1, np.float32), np.zeros(2, np.float32),
                                                     np.zeros((2, 3), np.float32), logits, np.array([0, 3], np.int32))


@pytest.mark.gpu
def test_out_of_range_labels_make_the_gpu_loss_nan():
    k = kernels("cuda")
    loss = poisoned("cuda", (1,))
    k.softmax_cross_entropy_forward(loss, poisoned("cuda", (2,)), poisoned("cuda", (2, 3)),
                                    to_backend("cuda", np.zeros((2, 3), np.float32)),
                                    to_backend("cuda", np.array([0, 5], np.int32)))
    assert np.isnan(to_host(loss)[0])


def versions(backend, all_versions):
    return list(all_versions) if backend == "cuda" else [None]  # the ladder's rungs are CUDA kernels


@pytest.mark.parametrize("backend", BACKENDS)
def test_scaled_sum_every_version(backend):
    # sizes straddle a warp (32) and the block (32 threads in the simulator, 256 on a GPU)
    def check(c):
        rng = np.random.default_rng(c["seed"])
        x = random_array(rng, (c["n"],))
        k = kernels(backend)
        for version in versions(backend, R.SUM_VERSIONS):
            out = poisoned(backend, (1,))
            extra = {} if version is None else {"version": version}
            k.scaled_sum(out, to_backend(backend, x), c["scale"], **extra)
            assert_close(out, [c["scale"] * x.astype(np.float64).sum()], 1e-5, 1e-5 * c["n"] ** 0.5,
                         f"scaled_sum {version} {c}")

    for_all(backend, st.fixed_dictionaries({
        "n": st.sampled_from([1, 2, 31, 32, 33, 63, 65, 255, 256, 257]), "scale": st.sampled_from([1.0, 0.25]),
        "seed": st.integers(0, 999)}), check, sim_examples=4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_every_version_on_rows_around_a_warp(backend):
    # classes straddle a warp: the warp-per-row rung's lanes stride the row 32 logits at a time
    def check(c):
        rng = np.random.default_rng(c["seed"])
        n, C = c["n"], c["c"]
        logits = random_array(rng, (n, C), 10.0)
        labels = rng.integers(0, C, n).astype(np.int32)
        loss64, rows64, probs64 = np.empty(1), np.empty(n), np.empty((n, C))
        kernels("numpy").softmax_cross_entropy_forward(loss64, rows64, probs64, logits.astype(np.float64), labels)
        k = kernels(backend)
        for version in versions(backend, R.SOFTMAX_VERSIONS):
            loss, rows, probs = poisoned(backend, (1,)), poisoned(backend, (n,)), poisoned(backend, (n, C))
            extra = {} if version is None else {"version": version}
            k.softmax_cross_entropy_forward(loss, rows, probs, to_backend(backend, logits),
                                            to_backend(backend, labels), **extra)
            assert_close(probs, probs64, 1e-4, 1e-6, f"probs {version}")
            assert_close(rows, rows64, 1e-4, 2e-5, f"row losses {version}")
            assert_close(loss, loss64, 1e-4, 2e-5, f"mean loss {version}")

    for_all(backend, st.fixed_dictionaries({
        "n": st.sampled_from([1, 3, 5]), "c": st.sampled_from([1, 31, 32, 33, 65]),
        "seed": st.integers(0, 999)}), check, sim_examples=3)


def test_the_warp_rungs_reject_a_version_or_block_they_cannot_run():
    k = kernels("cuda")
    with pytest.raises(ValueError, match=r"'version' must be one of \['shared_tree', 'warp_shuffle'\]"):
        k.scaled_sum(poisoned("cuda", (1,)), to_backend("cuda", np.ones(3, np.float32)), version="atomics")
    x = to_backend("cuda", np.zeros((2, 40), np.float32))
    with pytest.raises(ValueError, match=r"'block' must be a positive multiple of 32 \(whole warps\), got 48"):
        k.softmax_cross_entropy_forward(poisoned("cuda", (1,)), poisoned("cuda", (2,)), poisoned("cuda", (2, 40)), x,
                                        to_backend("cuda", np.zeros(2, np.int32)), block=48, version="warp_per_row")


@pytest.mark.compile
def test_the_warp_rungs_compile_to_warp_shuffles_without_float64():
    # compile_ptx cannot run in a simulator process: a fresh one, as tests/test_ptx.py does
    pytest.importorskip("cuda.bindings.nvjitlink", reason="the compile tier needs the cuda extra")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    result = subprocess.run([sys.executable, "-m", "cuda_kernels.ptx", "--json", "--ptx", *WARP_KERNELS],
                            cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for report in json.loads(result.stdout):
        shuffles = [line for line in report["ptx"].splitlines() if "shfl.sync" in line]
        assert len(shuffles) >= 5, f"{report['name']}: {len(shuffles)} shfl.sync in its PTX, a warp tree needs 5"
        assert report["f64_instructions"] == 0, f"{report['name']}: float64 crept in"


@pytest.mark.parametrize("backend", BACKENDS)
def test_sum_of_squares(backend):
    threads = R.REDUCE_THREADS
    sizes = [1, threads - 1, threads + 1, 2 * threads + 3] if simulated(backend) else \
        [1, 255, 257, threads * R.REDUCE_MAX_PARTIALS + 7]  # more than the partials' blocks hold: grid-stride

    def check(c):
        x = random_array(np.random.default_rng(c["seed"]), (c["n"],), scale=c["scale"])
        out = poisoned(backend, (1,))
        kernels(backend).sum_of_squares(out, to_backend(backend, x))
        expected = np.dot(x.astype(np.float64), x.astype(np.float64))
        assert_close(out, [expected], 1e-5, 1e-7, "sum_of_squares")

    strategy = st.fixed_dictionaries({"n": st.sampled_from(sizes), "scale": st.sampled_from([1e-3, 1.0, 1e3]),
                                      "seed": st.integers(0, 2**16)})
    for_all(backend, strategy, check, sim_examples=3)


@pytest.mark.gpu
def test_a_kernel_launched_with_a_smaller_grid_after_a_larger_one():
    # the simulator's kernel[config] sets the grid on the kernel object: a cached configuration must not alias it
    k = kernels("cuda")
    for n in (3 * R.REDUCE_THREADS, 1):
        x, out = random_array(np.random.default_rng(n), (n,)), poisoned("cuda", (1,))
        k.sum_of_squares(out, to_backend("cuda", x))
        assert_close(out, [np.dot(x.astype(np.float64), x)], 1e-5, 1e-7, f"sum_of_squares n={n}")


@pytest.mark.gpu
def test_a_captured_graph_replays_each_launch_with_its_own_grid():
    from cuda_kernels.launch import begin_capture, end_capture

    k = kernels("cuda")
    big, small = (random_array(np.random.default_rng(n), (n,)) for n in (3 * R.REDUCE_THREADS, 1))
    Big, Small, out_big, out_small = (to_backend("cuda", a) for a in (big, small, np.zeros(1, np.float32),
                                                                      np.zeros(1, np.float32)))
    k.sum_of_squares(out_big, Big)  # eagerly first: the scratch buffer is allocated outside the capture
    begin_capture()
    k.sum_of_squares(out_big, Big)  # two blocks of partials
    k.sum_of_squares(out_small, Small)  # then one block: the replay must not reuse it for the first launch
    graph = end_capture()
    for out in (out_big, out_small):
        out.copy_to_device(np.full(1, np.nan, np.float32))
    graph.launch()
    for out, x in ((out_big, big), (out_small, small)):
        assert_close(out, [np.dot(x.astype(np.float64), x)], 1e-5, 1e-7, f"replayed sum_of_squares n={x.size}")
