"""GEMM: every version on every backend against a float64 reference."""

import numpy as np
import pytest
from hypothesis import strategies as st
from support import BACKENDS, assert_close, for_all, kernels, poisoned, random_array, simulated, to_backend, to_host

from cuda_kernels import SIMULATOR
from cuda_kernels import blas_calls as BC
from cuda_kernels import gemm as G

VERSIONS = {"numpy": [None], "cpu": list(G.CPU_VERSIONS), "cuda": list(G.CUDA_VERSIONS)}


def gemm_case(backend):
    sim = simulated(backend)
    dims = st.sampled_from([1, 3, 15, 16, 17, 31, 64, 65]) if sim else st.sampled_from(
        [1, 2, 7, 15, 16, 17, 63, 64, 65, 127, 129, 251])
    return st.fixed_dictionaries({
        "m": dims, "n": dims, "k": dims,
        "trans_a": st.booleans(), "trans_b": st.booleans(),
        "alpha": st.sampled_from([1.0, 0.5, -2.0]), "beta": st.sampled_from([0.0, 1.0, -0.5]),
        "bias": st.booleans(), "activation": st.sampled_from(["none", "relu", "tanh"]),
        "version": st.sampled_from(VERSIONS[backend]), "seed": st.integers(0, 2**16),
    }).filter(lambda c: not sim or c["m"] * c["n"] * c["k"] <= 65 * 65 * 17)


def run_gemm(backend, c):
    rng = np.random.default_rng(c["seed"])
    m, n, k = c["m"], c["n"], c["k"]
    a = random_array(rng, (k, m) if c["trans_a"] else (m, k))
    b = random_array(rng, (n, k) if c["trans_b"] else (k, n))
    bias = random_array(rng, (n,)) if c["bias"] else None
    c0 = random_array(rng, (m, n))

    expected = c0.astype(np.float64)
    kernels("numpy").gemm(expected, a.astype(np.float64), b.astype(np.float64), c["alpha"], c["beta"],
                          c["trans_a"], c["trans_b"], None if bias is None else bias.astype(np.float64),
                          c["activation"])
    # beta == 0 promises C is not read: poison it to prove that
    out = to_backend(backend, c0) if c["beta"] != 0 else poisoned(backend, (m, n))
    extra = {} if c["version"] is None else {"version": c["version"]}
    kernels(backend).gemm(out, to_backend(backend, a), to_backend(backend, b), c["alpha"], c["beta"],
                          c["trans_a"], c["trans_b"], None if bias is None else to_backend(backend, bias),
                          c["activation"], **extra)
    assert_close(out, expected, rtol=1e-4, atol=2e-5 * k * abs(c["alpha"]) + 1e-5, what=str(c))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gemm_matches_float64_reference(backend):
    for_all(backend, gemm_case(backend), lambda c: run_gemm(backend, c), sim_examples=6)


@pytest.mark.parametrize("version", G.CUDA_VERSIONS)
@pytest.mark.gpu
def test_every_cuda_version_on_a_tile_straddling_shape(version):
    run_gemm("cuda", dict(m=17, n=65, k=9, trans_a=True, trans_b=False, alpha=1.0, beta=0.0, bias=True,
                          activation="relu", version=version, seed=3))


@pytest.mark.gpu
def test_split_k_sums_its_slices_in_order(monkeypatch):
    # Small slices (8 k each) make several at test sizes, with K straddling the slice and the 64x64 tile,
    # every epilogue, and a second run that must give the same bits (no atomics: a fixed summation order).
    monkeypatch.setattr(G, "SPLIT_K_MIN_SLICE", 8)
    sim = simulated("cuda")
    dims = st.sampled_from([1, 7, 63, 65] if sim else [1, 7, 63, 64, 65, 129])
    case = st.fixed_dictionaries({
        "m": dims, "n": dims, "k": st.sampled_from([8, 9, 31, 57] if sim else [8, 9, 57, 250, 1031]),
        "trans_a": st.booleans(), "trans_b": st.booleans(), "alpha": st.sampled_from([1.0, -2.0]),
        "beta": st.sampled_from([0.0, 1.0]), "bias": st.booleans(),
        "activation": st.sampled_from(["none", "relu", "tanh"]), "version": st.just("split_k"),
        "seed": st.integers(0, 2**16)}).filter(lambda c: not sim or c["m"] * c["n"] <= 65 * 7)

    def check(c):
        assert G.split_k_slices(c["m"], c["n"], c["k"]) >= min(2, c["k"] // 8)
        run_gemm("cuda", c)
        rng = np.random.default_rng(c["seed"])
        a, b = random_array(rng, (c["m"], c["k"])), random_array(rng, (c["k"], c["n"]))
        k = kernels("cuda")
        first, second = poisoned("cuda", (c["m"], c["n"])), poisoned("cuda", (c["m"], c["n"]))
        for out in (first, second):
            k.gemm(out, to_backend("cuda", a), to_backend("cuda", b), version="split_k")
        assert np.array_equal(first.copy_to_host(), second.copy_to_host())

    for_all("cuda", case, check, sim_examples=3)


@pytest.mark.slow
@pytest.mark.parametrize("version", G.CPU_VERSIONS)
def test_cpu_twins_at_realistic_size(version):
    run_gemm("cpu", dict(m=513, n=1024, k=769, trans_a=False, trans_b=True, alpha=1.0, beta=0.5, bias=True,
                         activation="none", version=version, seed=1))


@pytest.mark.parametrize("small_kernels", [True, False], ids=["small-tiles", "thread-bands"])
def test_blas_split_is_right_however_it_cuts_c(monkeypatch, small_kernels):
    # The engine's CPU GEMM cuts C by OpenBLAS's small-kernel rules where the library has those kernels, by
    # thread otherwise: both cuts, whatever this machine's BLAS is, on shapes whose bands come out uneven
    monkeypatch.setattr(BC, "_SMALL_KERNELS", [small_kernels])
    monkeypatch.setattr(BC, "_SPLITS", {})
    dims = st.sampled_from([1, 5, 63, 64, 65, 120, 257, 400])
    case = st.fixed_dictionaries({
        "m": dims, "n": dims, "k": st.sampled_from([1, 31, 32, 33, 120, 400]),
        "trans_a": st.booleans(), "trans_b": st.booleans(), "alpha": st.sampled_from([1.0, -2.0]),
        "beta": st.sampled_from([0.0, 1.0]), "bias": st.booleans(),
        "activation": st.sampled_from(["none", "relu", "tanh"]),
        "version": st.just("blas_split"), "seed": st.integers(0, 2**16)})
    for_all("cpu", case, lambda c: run_gemm("cpu", c))


def test_small_tiles_follow_openblas_rules_and_re_read_the_least():
    def permitted_grids(m, n, k, ta, tb):
        return [(r, c) for r in range(1, min(m, BC.MAX_SMALL_TILES) + 1)
                for c in range(1, min(n, BC.MAX_SMALL_TILES // r) + 1)
                if BC.small_kernel_permits(-(-m // r), -(-n // c), k, ta, tb)]

    def check(c):
        m, n, k, ta, tb = c["m"], c["n"], c["k"], c["trans_a"], c["trans_b"]
        grid = BC.small_tile_grid(m, n, k, ta, tb)
        fits_l2 = 4 * (m * k + k * n) <= BC.L2_BYTES
        candidates = permitted_grids(m, n, k, ta, tb)
        if fits_l2:
            candidates = [g for g in candidates if min(g) == 1]  # bands of rows or of columns
        if grid is None:  # then no grid of at most MAX_SMALL_TILES tiles passes
            assert not candidates
            return
        rows, cols = grid
        assert grid in candidates and rows * cols <= BC.MAX_SMALL_TILES
        tile = (-(-m // rows), -(-n // cols))
        assert tile[0] * tile[1] * k <= BC.SMALL_MNK and not (ta and tb)
        if fits_l2:  # the fewest bands
            assert rows * cols == min(r * c for r, c in candidates)
        else:  # the grid that re-reads the fewest operand floats
            assert m * cols + n * rows == min(m * c_ + n * r for r, c_ in candidates)

    dims = st.integers(1, 1100)
    for_all("cpu", st.fixed_dictionaries({"m": dims, "n": dims, "k": dims, "trans_a": st.booleans(),
                                           "trans_b": st.booleans()}), check)
    # the measured cases (blas_calls.py, on a 1 MiB L2): LeNet fc1 forward in seven 9-row bands; the MLP's
    # first-layer forward and weight gradient (1.6 and 1.06 MiB of operands) in 2-D grids
    if BC.L2_BYTES == 1 << 20:
        assert BC.small_tile_grid(64, 120, 400, False, True) == (7, 1)
        assert BC.small_tile_grid(256, 256, 784, False, True) == (7, 8)
        assert BC.small_tile_grid(256, 784, 256, True, False) == (4, 13)
    assert BC.small_tile_grid(1024, 1024, 1024, False, False) is None


def test_blas_writes_into_the_callers_buffer():
    rng = np.random.default_rng(0)
    a, b = random_array(rng, (5, 3)), random_array(rng, (3, 4))
    out = np.full((5, 4), np.nan, np.float32)
    before = out.__array_interface__["data"][0]
    kernels("cpu").gemm(out, a, b)
    assert out.__array_interface__["data"][0] == before
    np.testing.assert_allclose(out, a @ b, rtol=1e-5)


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_gemm_rejects_bad_arguments(backend):
    k = kernels(backend)
    a, b = to_backend(backend, np.ones((4, 3), np.float32)), to_backend(backend, np.ones((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"gemm: argument 'out' expects shape \(4, 5\)"):
        k.gemm(to_backend(backend, np.ones((5, 4), np.float32)), a, b)
    with pytest.raises(ValueError, match="inner dimensions differ"):
        k.gemm(to_backend(backend, np.ones((4, 5), np.float32)), a, a)
    with pytest.raises(TypeError, match="argument 'a' expects dtype float32"):
        k.gemm(to_backend(backend, np.ones((4, 5), np.float32)), to_backend(backend, np.ones((4, 3))), b)
    with pytest.raises(ValueError, match="'version' must be one of"):
        k.gemm(to_backend(backend, np.ones((4, 5), np.float32)), a, b, version="turbo")
    with pytest.raises(ValueError, match="'activation' must be one of"):
        k.gemm(to_backend(backend, np.ones((4, 5), np.float32)), a, b, activation="gelu")


def test_gemm_rejects_views_and_arrays_on_the_wrong_device():
    a = np.ones((4, 6), np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels("cpu").gemm(np.ones((4, 4), np.float32), a[:, ::2], np.ones((3, 4), np.float32))
    with pytest.raises(TypeError, match="must be a CUDA device array"):
        kernels("cuda").gemm(np.ones((4, 4), np.float32), a, np.ones((6, 4), np.float32))
    with pytest.raises(TypeError, match="must be a NumPy array"):
        kernels("cpu").gemm(np.ones((4, 4), np.float32), to_backend("cuda", a), np.ones((6, 4), np.float32))
    with pytest.raises(ValueError, match="overlaps an input"):
        kernels("cpu").gemm(a, a, np.ones((6, 6), np.float32))


def test_the_engine_picks_the_gemm_version_that_won_each_measured_shape(monkeypatch):
    # H200 bench, 2026-11-27 (benchmarks/results/2026-11-27-gpu/run4): the fastest version at each shape
    monkeypatch.setitem(G._GPU_FACTS, "sms", 132)
    measured_best = {(4096, 4096, 4096): "register_blocked_8x8", (2048, 2048, 2048): "register_blocked_8x8",
                     (1024, 1024, 1024): "register_blocked", (512, 512, 512): "shared_tiled",
                     (256, 256, 256): "shared_tiled", (64, 120, 400): "shared_tiled", (256, 256, 784): "shared_tiled",
                     (6, 25, 50176): "split_k"}  # LeNet c1's weight gradient, b64: conv c1 fwd+bwd 10.5 -> 1.6 ms
    # with split_k (H100 before, H200 after: different cards, but a 6x change in a launch-bound layer)
    assert {shape: G.pick_cuda_version(*shape) for shape in measured_best} == measured_best


# ------------------------------------------------------------------------------------------------
# CUDA C versions (gemm_cuda_c.py): compiled by NVRTC, so a real GPU only; the compile tier builds them anywhere
# ------------------------------------------------------------------------------------------------

needs_real_gpu = pytest.mark.skipif(SIMULATOR, reason="CUDA C compiled by NVRTC cannot run in the simulator")


def tf32(x):
    """x rounded to TF32 (10 mantissa bits, round to nearest even), as float32."""
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0xFFF + ((bits >> 13) & 1)) & ~np.uint64(0x1FFF)
    return bits.astype(np.uint32).view(np.float32)


def test_tf32_error_against_float64_is_what_the_tf32_tolerance_assumes():
    # TF32 operands, exact float32-or-better accumulation: ||out - ref|| / ||ref|| ~ 3e-4 whatever K (the
    # rounding errors of random-sign terms add like a random walk, as the sum itself does); wmma_tf32 is allowed 2e-3
    rng = np.random.default_rng(0)
    for k in (9, 64, 1024):
        a, b = rng.standard_normal((64, k)), rng.standard_normal((k, 64))
        ref = a @ b
        err = np.linalg.norm(tf32(a).astype(np.float64) @ tf32(b) - ref) / np.linalg.norm(ref)
        assert 1e-4 < err < 6e-4, (k, err)


def test_cuda_c_versions_refuse_the_simulator_with_one_clear_error():
    if not SIMULATOR:
        pytest.skip("a real GPU runs them")
    a = to_backend("cuda", np.ones((4, 3), np.float32))
    b = to_backend("cuda", np.ones((3, 5), np.float32))
    for version in G.CUDA_C_VERSIONS:
        with pytest.raises(RuntimeError, match="needs a real GPU"):
            kernels("cuda").gemm(to_backend("cuda", np.zeros((4, 5), np.float32)), a, b, version=version)


@needs_real_gpu
@pytest.mark.gpu
def test_cuda_c_twin_matches_float64_reference():
    case = gemm_case("cuda").map(lambda c: {**c, "version": "cuda_c_double_buffered"})
    for_all("cuda", case, lambda c: run_gemm("cuda", c))


def test_versions_that_need_a_newer_gpu_say_why():
    from cuda_kernels import gemm_cuda_c as CC

    assert CC.unsupported("wmma_tf32", (7, 5)) == ("gemm version 'wmma_tf32': TF32 tensor-core fragments (wmma "
                                                  "m16n16k8 tf32) need sm_80 (A100) or newer; this GPU is sm_75")
    assert CC.unsupported("wmma_tf32", (8, 0)) is None and CC.unsupported("wmma_tf32", (9, 0)) is None
    assert CC.unsupported("cuda_c_double_buffered", (7, 5)) is None


def _wmma_unsupported_here():
    from numba import cuda

    from cuda_kernels import gemm_cuda_c as CC

    return CC.unsupported("wmma_tf32", tuple(cuda.get_current_device().compute_capability))


@needs_real_gpu
@pytest.mark.gpu
def test_wmma_tf32_on_an_older_gpu_raises_the_reason():
    why = _wmma_unsupported_here()
    if not why:
        pytest.skip("this GPU has TF32 tensor cores (sm_80+)")
    a = to_backend("cuda", np.ones((4, 3), np.float32))
    b = to_backend("cuda", np.ones((3, 5), np.float32))
    with pytest.raises(RuntimeError) as error:
        kernels("cuda").gemm(to_backend("cuda", np.zeros((4, 5), np.float32)), a, b, version="wmma_tf32")
    assert str(error.value) == why


@needs_real_gpu
@pytest.mark.gpu
def test_wmma_tf32_matches_float64_reference_within_tf32_error():
    why = _wmma_unsupported_here()
    if why:
        pytest.skip(why)

    def check(c):
        rng = np.random.default_rng(c["seed"])
        m, n, k = c["m"], c["n"], c["k"]
        a = random_array(rng, (k, m) if c["trans_a"] else (m, k))
        b = random_array(rng, (n, k) if c["trans_b"] else (k, n))
        ref = (a.T if c["trans_a"] else a).astype(np.float64) @ (b.T if c["trans_b"] else b).astype(np.float64)
        out = poisoned("cuda", (m, n))
        kernels("cuda").gemm(out, to_backend("cuda", a), to_backend("cuda", b), trans_a=c["trans_a"],
                             trans_b=c["trans_b"], version="wmma_tf32")
        got = to_host(out).astype(np.float64)
        assert np.isfinite(got).all(), "an output left unwritten (NaN)"
        assert np.linalg.norm(got - ref) <= 2e-3 * np.linalg.norm(ref) + 1e-6, c

    for_all("cuda", gemm_case("cuda"), check)


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_blas_k_pieces_equal_one_call(trans_a, trans_b, monkeypatch):
    # the Haswell kernels' K in pieces of 128 (the pieces after the first add to C) against one BLAS call,
    # whatever BLAS this machine has: shapes that straddle 128 in k, beta != 0
    import cuda_kernels.blas_calls as blas_calls

    rng = np.random.default_rng(5)
    for m, n, k in ((3, 129, 257), (33, 128, 128), (17, 300, 129), (5, 7, 1)):
        a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
        b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
        c0 = rng.standard_normal((m, n)).astype(np.float32)
        results = {}
        for blocked in (False, True):
            monkeypatch.setattr(blas_calls, "_HASWELL_KERNELS", [blocked])
            c = c0.copy()
            blas_calls.gemm_blas_split(c, a, b, 0.5, 2.0, trans_a, trans_b, None, blas_calls.ACT_NONE)
            results[blocked] = c
        expected = 0.5 * (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b) + 2.0 * c0
        assert_close(results[True], expected, 1e-5, 1e-4, f"K in pieces {m}x{n}x{k}")
        assert_close(results[True], results[False], 1e-5, 1e-4, f"K in pieces vs one call {m}x{n}x{k}")
