"""The simulator's warp primitives (sanitizer/warp.py) against a NumPy model of CUDA's semantics: full
warps, a partial last warp, 2D and 3D blocks, partial masks; masks naming lanes that never arrive raise
(never hang); install() is idempotent and a no-op without the simulator."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cuda_kernels import SIMULATOR
from sanitizer import warp

pytestmark = pytest.mark.skipif(not SIMULATOR, reason="the simulator's warp primitives (a GPU has its own)")

from numba import cuda  # noqa: E402  (after conftest turned the simulator on)

warp.install()
FULL = 0xFFFFFFFF
SHUFFLES = ["shfl_sync", "shfl_up_sync", "shfl_down_sync", "shfl_xor_sync"]
VOTES = ["ballot_sync", "all_sync", "any_sync", "eq_sync"]
BLOCKS = [(32, 1, 1), (64, 1, 1), (48, 1, 1), (8, 6, 1), (4, 3, 2), (5, 1, 1)]  # 48, 24, 5: partial last warps


@cuda.jit
def shuffle_kernel(out, values, arguments, masks, mode):
    t = cuda.threadIdx.x + cuda.threadIdx.y * cuda.blockDim.x + cuda.threadIdx.z * cuda.blockDim.x * cuda.blockDim.y
    mask = masks[t]
    if mask >> (t % 32) & 1:  # lanes outside their warp's mask take no part
        if mode == 0:
            out[t] = cuda.shfl_sync(mask, values[t], arguments[t])
        elif mode == 1:
            out[t] = cuda.shfl_up_sync(mask, values[t], arguments[t])
        elif mode == 2:
            out[t] = cuda.shfl_down_sync(mask, values[t], arguments[t])
        else:
            out[t] = cuda.shfl_xor_sync(mask, values[t], arguments[t])


@cuda.jit
def vote_kernel(out, predicates, masks, mode):
    t = cuda.threadIdx.x + cuda.threadIdx.y * cuda.blockDim.x + cuda.threadIdx.z * cuda.blockDim.x * cuda.blockDim.y
    mask = masks[t]
    if mask >> (t % 32) & 1:
        p = predicates[t] != 0
        if mode == 0:
            out[t] = cuda.ballot_sync(mask, p)
        elif mode == 1:
            out[t] = cuda.all_sync(mask, p)
        elif mode == 2:
            out[t] = cuda.any_sync(mask, p)
        else:
            out[t] = cuda.eq_sync(mask, p)


# ------------------------------------------------------------------------------------------------
# The NumPy model of CUDA's semantics (PTX shfl.sync with numba's clamp values, vote.sync)
# ------------------------------------------------------------------------------------------------


def lanes_of(threads: int):
    """[(first linear id, lanes)] per warp."""
    return [(w, min(32, threads - w)) for w in range(0, threads, 32)]


def shuffle_model(kind, values, arguments, masks):
    out = np.full(values.shape, -1.0, np.float32)  # what the kernel leaves for lanes outside the mask
    for first, size in lanes_of(values.size):
        for lane in range(size):
            mask = int(masks[first + lane])
            if not mask >> lane & 1:
                continue
            b = int(arguments[first + lane]) & 31
            source = {"shfl_sync": b,
                      "shfl_up_sync": lane - b if lane - b >= 0 else lane,
                      "shfl_down_sync": lane + b if lane + b <= 31 else lane,
                      "shfl_xor_sync": lane ^ b}[kind]
            takes_part = source < size and mask >> source & 1
            out[first + lane] = values[first + source] if takes_part else np.nan  # undefined: poisoned
    return out


def vote_model(kind, predicates, masks):
    out = np.full(predicates.shape, -7, np.int64)
    for first, size in lanes_of(predicates.size):
        for lane in range(size):
            mask = int(masks[first + lane])
            if not mask >> lane & 1:
                continue
            voters = [i for i in range(size) if mask >> i & 1]
            votes = [bool(predicates[first + i]) for i in voters]
            bits = sum(1 << i for i, v in zip(voters, votes) if v)
            out[first + lane] = {"ballot_sync": bits - (1 << 32) if bits >= 1 << 31 else bits,
                                 "all_sync": all(votes), "any_sync": any(votes),
                                 "eq_sync": all(votes) or not any(votes)}[kind]
    return out


def warp_masks(rng, threads, partial):
    """One mask per thread, the same within a warp: the full mask, or a random one (each lane's own bit
    decides whether it calls)."""
    masks = np.empty(threads, np.int64)
    for first, size in lanes_of(threads):
        masks[first:first + size] = int(rng.integers(1, 1 << 32)) if partial else FULL
    return masks


def run(kernel, block, *args):
    kernel[1, block](*args)


# ------------------------------------------------------------------------------------------------
# Every primitive against the model
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SHUFFLES)
@settings(max_examples=5)
@given(block=st.sampled_from(BLOCKS), partial=st.booleans(),
       seed=st.integers(0, 2**16))
def test_shuffles_match_the_model(kind, block, partial, seed):
    rng = np.random.default_rng(seed)
    threads = int(np.prod(block))
    values = rng.standard_normal(threads).astype(np.float32)
    arguments = rng.integers(-40, 70, threads).astype(np.int64)  # past 31 and negative: PTX keeps b[4:0]
    masks = warp_masks(rng, threads, partial)
    out = np.full(threads, -1.0, np.float32)
    run(shuffle_kernel, block, out, values, arguments, masks, SHUFFLES.index(kind))
    np.testing.assert_array_equal(out, shuffle_model(kind, values, arguments, masks), err_msg=f"{kind} {block}")


@pytest.mark.parametrize("kind", SHUFFLES)
@pytest.mark.parametrize("width", [1, 2, 4, 8, 16])
def test_shuffle_distances_in_a_full_and_a_partial_warp(kind, width):
    # the deltas of a tree reduction, the same in every lane; 40 threads: a full warp and one of 8 lanes
    threads = 40
    values = np.arange(threads, dtype=np.float32) * 3 + 1
    arguments = np.full(threads, width, np.int64)
    masks = np.full(threads, FULL, np.int64)
    out = np.full(threads, -1.0, np.float32)
    run(shuffle_kernel, threads, out, values, arguments, masks, SHUFFLES.index(kind))
    np.testing.assert_array_equal(out, shuffle_model(kind, values, arguments, masks))


@pytest.mark.parametrize("kind", VOTES)
@settings(max_examples=5)
@given(block=st.sampled_from(BLOCKS), partial=st.booleans(),
       density=st.sampled_from([0.0, 0.5, 1.0]), seed=st.integers(0, 2**16))
def test_votes_match_the_model(kind, block, partial, density, seed):
    rng = np.random.default_rng(seed)
    threads = int(np.prod(block))
    predicates = (rng.random(threads) < density).astype(np.int32)
    masks = warp_masks(rng, threads, partial)
    out = np.full(threads, -7, np.int64)
    run(vote_kernel, block, out, predicates, masks, VOTES.index(kind))
    np.testing.assert_array_equal(out, vote_model(kind, predicates, masks), err_msg=f"{kind} {block}")


def test_ballot_of_lane_31_is_a_negative_int32_and_popc_counts_it():
    # numba-cuda types ballot_sync as int32: lane 31's bit is the sign bit, as on a GPU
    @cuda.jit
    def count(out):
        t = cuda.threadIdx.x
        b = cuda.ballot_sync(0xFFFFFFFF, True)
        out[t, 0] = b
        out[t, 1] = cuda.popc(b)

    out = np.zeros((32, 2), np.int64)
    count[1, 32](out)
    assert (out[:, 0] == -1).all() and (out[:, 1] == 32).all(), out[:2]


def test_match_any_and_match_all():
    @cuda.jit
    def match(out, values):
        t = cuda.threadIdx.x
        out[t, 0] = cuda.match_any_sync(0xFFFFFFFF, values[t])
        same, ok = cuda.match_all_sync(0xFFFFFFFF, values[t] * 0 + 5)
        out[t, 1] = same
        out[t, 2] = ok

    values = np.arange(32) % 3
    out = np.zeros((32, 3), np.int64)
    match[1, 32](out, values)
    for lane in range(32):
        bits = sum(1 << i for i in range(32) if values[i] == values[lane])
        assert out[lane, 0] == (bits - (1 << 32) if bits >= 1 << 31 else bits)
    assert (out[:, 1] == -1).all() and (out[:, 2] == 1).all()


def test_activemask_names_the_lanes_still_running_and_lanemask_lt_those_below():
    @cuda.jit
    def masks(out):
        t = cuda.threadIdx.x
        if t % 32 >= 20:
            return
        cuda.syncthreads()  # released once the early returns have exited
        out[t, 0] = cuda.activemask()
        out[t, 1] = cuda.lanemask_lt()
        cuda.syncthreads()  # no lane exits while another still asks

    out = np.full((48, 2), -7, np.int64)
    masks[1, 48](out)
    for t in range(48):
        lane = t % 32
        if lane < 20:
            running = 20 if t < 32 else 16  # the second warp has 16 lanes, all of them below 20
            assert out[t, 0] == (1 << running) - 1, (t, hex(out[t, 0]))
            assert out[t, 1] == (1 << lane) - 1
        else:
            assert out[t, 0] == -7


def test_syncwarp_orders_shared_memory_within_a_warp():
    @cuda.jit
    def rotate(out):
        buffer = cuda.shared.array(32, np.float32)
        t = cuda.threadIdx.x
        buffer[t] = t
        cuda.syncwarp()
        out[t] = buffer[(t + 1) % 32]

    out = np.zeros(32, np.float32)
    rotate[1, 32](out)
    np.testing.assert_array_equal(out, (np.arange(32) + 1) % 32)


def test_a_warp_tree_sum_of_a_2d_block():
    @cuda.jit
    def warp_sums(out, x):
        t = cuda.threadIdx.x + cuda.threadIdx.y * cuda.blockDim.x
        v = x[t]
        offset = 16
        while offset > 0:
            v += cuda.shfl_xor_sync(0xFFFFFFFF, v, offset)
            offset //= 2
        out[t] = v

    x = np.arange(64, dtype=np.float32)
    out = np.zeros(64, np.float32)
    warp_sums[1, (16, 4)](out, x)
    np.testing.assert_array_equal(out, np.repeat([x[:32].sum(), x[32:].sum()], 32))


# ------------------------------------------------------------------------------------------------
# Masks naming lanes that never arrive: a clear error, never a hang
# ------------------------------------------------------------------------------------------------


def raises_quickly(kernel, block, *args, match, seconds=10.0):
    start = time.monotonic()
    with pytest.raises(warp.WarpSyncError, match=match) as error:
        kernel[1, block](*args)
    assert time.monotonic() - start < seconds, "the error took the watchdog's time: detection failed"
    return str(error.value)


def test_a_mask_naming_exited_lanes_raises_naming_the_primitive_mask_and_lanes():
    @cuda.jit
    def early_exit(out):
        t = cuda.threadIdx.x
        if t >= 20:
            return
        out[t] = cuda.shfl_down_sync(0xFFFFFFFF, t, 1)

    message = raises_quickly(early_exit, 32, np.zeros(32, np.int64), match=r"shfl_down_sync\(mask=0xffffffff\)")
    assert "lanes 20-31 named in the mask never arrive" in message and "exited" in message, message
    assert f"{os.path.basename(__file__)}:" in message


def test_lanes_waiting_at_different_primitives_raise():
    @cuda.jit
    def divergent(out):
        t = cuda.threadIdx.x
        if t < 16:
            cuda.syncwarp(0xFFFFFFFF)
        else:
            out[t] = cuda.shfl_sync(0xFFFFFFFF, t, 0)

    message = raises_quickly(divergent, 32, np.zeros(32, np.int64), match=r"never arrive")
    # the first lane to judge names the other group's primitive; once those lanes have raised and ended, a lane
    # judging later finds them exited: which message the simulator hands back depends on the threads' order
    assert "waits at" in message or "exited" in message, message


def test_lanes_waiting_at_syncthreads_raise():
    @cuda.jit
    def divergent(out):
        t = cuda.threadIdx.x
        if t < 16:
            cuda.syncthreads()
        else:
            cuda.syncwarp()
        out[t] = t

    message = raises_quickly(divergent, 32, np.zeros(32, np.int64), match=r"syncwarp\(mask=0xffffffff\)")
    assert "waits at syncthreads" in message, message


def test_lanes_released_from_a_barrier_are_not_taken_for_lanes_waiting_at_it():
    # the simulator releases a barrier's threads one by one: a lane already out at a shuffle must not judge
    # a lane still being released as stuck at syncthreads (switching threads often makes that likely)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)

    @cuda.jit
    def barrier_then_shuffle(out):
        t = cuda.threadIdx.x
        v = t
        for _ in range(6):
            cuda.syncthreads()
            v = cuda.shfl_xor_sync(0xFFFFFFFF, v, 1)
        out[t] = v

    try:
        out = np.zeros(64, np.int64)
        barrier_then_shuffle[1, 64](out)
    finally:
        sys.setswitchinterval(interval)
    np.testing.assert_array_equal(out, np.arange(64))  # six swaps with the neighbour: back home


def test_a_mask_without_the_calling_lane_raises():
    @cuda.jit
    def foreign(out):
        out[cuda.threadIdx.x] = cuda.shfl_sync(0x1, 1.0, 0)

    raises_quickly(foreign, 2, np.zeros(2, np.float32), match=r"must name the calling lane 1")


def test_the_watchdog_ends_a_wait_no_rule_can_judge(monkeypatch):
    monkeypatch.setattr(warp, "WATCHDOG_S", 0.3)
    messages = []

    @cuda.jit
    def slow_lane(out):
        t = cuda.threadIdx.x
        if t == 1:
            time.sleep(1.5)  # simulator only: a lane busy elsewhere for longer than the watchdog
        try:  # simulator only: keep each lane's error (which one the launch re-raises depends on timing)
            out[t] = cuda.shfl_sync(0xFFFFFFFF, t, 0)
        except warp.WarpSyncError as error:
            messages.append(str(error))

    start = time.monotonic()
    slow_lane[1, 2](np.zeros(2, np.int64))
    assert time.monotonic() - start < 5
    assert any("did not arrive within 0.3 s" in m and "lane 1 named" in m for m in messages), messages


def test_undefined_reads_can_raise_instead_of_poisoning(monkeypatch):
    monkeypatch.setattr(warp, "UNDEFINED_READS", "error")
    threads = 16  # a partial warp: lane 8 + 8 does not exist
    args = (np.zeros(threads, np.float32), np.ones(threads, np.float32), np.full(threads, 8, np.int64),
            np.full(threads, FULL, np.int64), SHUFFLES.index("shfl_down_sync"))
    raises_quickly(shuffle_kernel, threads, *args, match=r"lane 8 reads lane 16, which takes no part")


# ------------------------------------------------------------------------------------------------
# Listeners and install()
# ------------------------------------------------------------------------------------------------


def test_listeners_hear_every_lane_of_every_rendezvous_with_its_source_line():
    heard = []

    @cuda.jit
    def two_syncs(out):
        t = cuda.threadIdx.x
        cuda.syncwarp()
        out[t] = cuda.shfl_xor_sync(0xFFFF, t, 1) if t < 16 else t

    warp.WARP_SYNC_LISTENERS.append(lambda mask, file, line: heard.append((mask, file, line)))
    try:
        two_syncs[1, 40](np.zeros(40, np.int64))
    finally:
        warp.WARP_SYNC_LISTENERS.pop()
    first = inspect.getsourcelines(two_syncs.py_func)[1]
    assert sorted(set(heard)) == [(0xFFFF, __file__, first + 4), (FULL, __file__, first + 3)]
    assert heard.count((FULL, __file__, first + 3)) == 40 and heard.count((0xFFFF, __file__, first + 4)) == 16


def test_install_is_idempotent():
    from numba.cuda.simulator import kernel, kernelapi

    run_before, barrier_before = kernel.BlockThread.run, kernel.BlockThread.syncthreads
    assert warp.install() and warp.install()
    assert kernel.BlockThread.run is run_before and kernel.BlockThread.syncthreads is barrier_before
    for name, fn in warp.PRIMITIVES.items():
        assert getattr(kernelapi.FakeCUDAModule, name) is fn


def test_install_is_a_no_op_without_the_simulator():
    code = ("import numba; assert not numba.config.ENABLE_CUDASIM\n"
            "from sanitizer import warp\n"
            "from numba.cuda.simulator import kernelapi\n"
            "assert warp.install() is False and not hasattr(kernelapi.FakeCUDAModule, 'shfl_sync')\n")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0",
           "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
