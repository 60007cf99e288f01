"""The sanitizer's checks, one small kernel per kind, hazard and scope, racy and fixed (issue 26).

Grids stay tiny (a few blocks of at most 64 threads): every simulated thread is a Python thread.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from numba import cuda, float32, int32

from sanitizer import sanitize

pytestmark = pytest.mark.skipif(not cuda.is_available() or not __import__("numba").config.ENABLE_CUDASIM,
                                reason="the sanitizer watches Numba's CUDA simulator")


def line_of(fn, text: str) -> int:
    """The line number of the first source line of ``fn`` containing ``text``."""
    import inspect

    lines, start = inspect.getsourcelines(fn.py_func if hasattr(fn, "py_func") else fn)
    for offset, line in enumerate(lines):
        if text in line:
            return start + offset
    raise AssertionError(f"{text!r} not in {fn}")


def only(report, kind=None):
    found = [f for f in report.findings("info") if kind is None or f.kind == kind]
    assert len(found) == 1, [f.one_line() for f in report.findings("info")]
    return found[0]


def verdicts(report):
    return sorted((f.kind, f.severity, f.space, f.hazard, f.scope, tuple(f.lines)) for f in report.findings("info"))


# ---- races in shared memory ---------------------------------------------------------------------------------
@cuda.jit
def shift_left_racy(out, x):
    tile = cuda.shared.array(64, float32)
    t = cuda.threadIdx.x
    tile[t] = x[t]
    # the barrier is missing here
    if t < 63:
        out[t] = tile[t + 1]


@cuda.jit
def shift_left_fixed(out, x):
    tile = cuda.shared.array(64, float32)
    t = cuda.threadIdx.x
    tile[t] = x[t]
    cuda.syncthreads()
    if t < 63:
        out[t] = tile[t + 1]


def test_shared_raw_race_between_warps_names_both_lines_and_fixed_twin_is_clean():
    x = np.arange(64, dtype=np.float32)
    out = np.zeros(64, np.float32)
    with sanitize() as report:
        shift_left_racy[1, 64](out, x)
    finding = only(report)
    assert (finding.kind, finding.severity, finding.space, finding.hazard, finding.scope) == \
        ("race", "error", "shared", "RAW", "inter-warp")
    assert finding.lines == [line_of(shift_left_racy, "tile[t] = x[t]"), line_of(shift_left_racy, "tile[t + 1]")]
    assert finding.count == 63  # thread t+1 writes what thread t reads
    assert "tile[" in finding.example and "thread (" in finding.example
    assert finding.file.endswith("test_sanitizer.py")
    with sanitize() as report:
        shift_left_fixed[1, 64](out, x)
    assert report.findings("info") == []
    np.testing.assert_array_equal(out[:63], x[1:])


@cuda.jit
def rotate_racy(out, x):
    tile = cuda.shared.array(64, float32)
    t = cuda.threadIdx.x
    tile[t] = x[t]
    cuda.syncthreads()
    v = tile[(t + 1) % 64]
    tile[t] = v * float32(2)  # overwrites what the neighbour may not have read yet
    cuda.syncthreads()
    out[t] = tile[t]


@cuda.jit
def rotate_fixed(out, x):
    tile = cuda.shared.array(64, float32)
    t = cuda.threadIdx.x
    tile[t] = x[t]
    cuda.syncthreads()
    v = tile[(t + 1) % 64]
    cuda.syncthreads()
    tile[t] = v * float32(2)
    cuda.syncthreads()
    out[t] = tile[t]


def test_shared_war_race_and_its_fix():
    x = np.arange(64, dtype=np.float32)
    out = np.zeros(64, np.float32)
    with sanitize() as report:
        rotate_racy[1, 64](out, x)
    finding = only(report)
    assert (finding.hazard, finding.space, finding.scope) == ("WAR", "shared", "inter-warp")
    assert finding.lines == [line_of(rotate_racy, "v = tile["), line_of(rotate_racy, "tile[t] = v")]
    with sanitize() as report:
        rotate_fixed[1, 64](out, x)
    assert report.findings("info") == []


@cuda.jit
def write_read_write(out):
    tile = cuda.shared.array(32, float32)
    t = cuda.threadIdx.x
    tile[t] = float32(1)
    v = tile[(t + 1) % 32]  # the neighbour's first and second writes race with this read
    tile[t] = v + float32(1)
    out[t] = v


def test_a_read_racing_with_two_writes_of_another_thread_gives_both_findings():
    with sanitize() as report:
        write_read_write[1, 32](np.zeros(32, np.float32))
    first, read, second = (line_of(write_read_write, text) for text in
                           ("tile[t] = float32(1)", "v = tile[", "tile[t] = v"))
    assert sorted((f.hazard, tuple(f.lines)) for f in report.errors()) == [("RAW", (first, read)),
                                                                            ("WAR", (read, second))]


@cuda.jit
def all_write_one_slot(out, same):
    slot = cuda.shared.array(1, int32)
    t = cuda.threadIdx.x
    slot[0] = 1 if same else t
    cuda.syncthreads()
    out[t] = slot[0]


def test_write_write_race_is_an_error_and_a_same_value_write_is_info():
    out = np.zeros(32, np.int32)
    with sanitize() as report:
        all_write_one_slot[1, 32](out, 0)
    finding = only(report)
    assert (finding.hazard, finding.severity, finding.scope) == ("WAW", "error", "intra-warp")
    assert finding.count == 32 * 31 // 2
    with sanitize() as report:
        all_write_one_slot[1, 32](out, 1)
    finding = only(report)
    assert (finding.hazard, finding.severity) == ("WAW", "info")
    assert report.errors() == [] and report.clean
    assert "WAW" not in report.text() and "WAW" in report.text("info")


@cuda.jit
def warp_reduce_without_sync(out, x):
    buf = cuda.shared.array(32, float32)
    t = cuda.threadIdx.x
    buf[t] = x[t]
    cuda.syncthreads()
    stride = 16
    while stride > 0:  # warp-synchronous style: no barrier between steps (a race without lockstep)
        if t < stride:
            buf[t] += buf[t + stride]
        stride //= 2
    if t == 0:
        out[0] = buf[0]


def test_a_race_inside_one_warp_has_scope_intra_warp():
    with sanitize() as report:
        warp_reduce_without_sync[1, 32](np.zeros(1, np.float32), np.ones(32, np.float32))
    races = report.findings("info")
    assert races and {f.scope for f in races} == {"intra-warp"}
    assert {f.hazard for f in races} <= {"RAW", "WAR"} and "RAW" in {f.hazard for f in races}


# ---- races in global memory ---------------------------------------------------------------------------------
@cuda.jit
def read_neighbour_block(out):
    i = cuda.grid(1)
    out[i] = float32(i)
    cuda.syncthreads()  # orders the threads of a block, never two blocks
    out[i] = out[(i + 32) % 64] + float32(1)


@cuda.jit
def read_neighbour_block_own_buffer(out, src):
    i = cuda.grid(1)
    out[i] = src[(i + 32) % 64] + float32(1)


def test_global_races_between_blocks_are_inter_block():
    out = np.zeros(64, np.float32)
    with sanitize() as report:
        read_neighbour_block[2, 32](out)
    first, second = line_of(read_neighbour_block, "out[i] = float32(i)"), line_of(read_neighbour_block, "% 64]")
    assert sorted((f.hazard, f.scope, f.space, tuple(f.lines)) for f in report.errors()) == [
        ("RAW", "inter-block", "global", (first, second)),  # block 1's write, block 0's read of it
        ("WAR", "inter-block", "global", (second, second))]  # block 0's read, block 1's second write
    with sanitize() as report:
        read_neighbour_block_own_buffer[2, 32](out, np.arange(64, dtype=np.float32))
    assert report.findings("info") == []


@cuda.jit
def global_shift_one_block(out):
    t = cuda.threadIdx.x
    out[t] = float32(t)
    if t < 63:
        out[t] += out[t + 1]


def test_global_race_inside_one_block():
    with sanitize() as report:
        global_shift_one_block[1, 64](np.zeros(64, np.float32))
    scopes = {(f.space, f.scope) for f in report.errors()}
    assert ("global", "inter-warp") in scopes


@cuda.jit
def count_with_atomics(counter, peek):
    cuda.atomic.add(counter, 0, 1)
    if peek:
        counter[1] = counter[0]


def test_atomic_with_atomic_is_no_race_but_a_plain_read_of_it_is():
    counter = np.zeros(2, np.int32)
    with sanitize() as report:
        count_with_atomics[2, 32](counter, 0)
    assert report.findings("info") == []
    assert counter[0] == 64
    with sanitize() as report:
        count_with_atomics[1, 32](np.zeros(2, np.int32), 1)
    assert any(f.kind == "race" and f.lines[0] == line_of(count_with_atomics, "atomic.add")
               for f in report.errors()) or any(line_of(count_with_atomics, "atomic.add") in f.lines
                                                for f in report.errors())


# ---- out of bounds -----------------------------------------------------------------------------------------------
@cuda.jit
def read_left_neighbour(out, x):
    t = cuda.threadIdx.x
    out[t] = x[t - 1]  # t == 0 reads x[-1]: NumPy would wrap to x[63]


@cuda.jit
def shared_and_local_overrun(out):
    tile = cuda.shared.array(32, float32)
    scratch = cuda.local.array(4, float32)
    t = cuda.threadIdx.x
    tile[t + 1] = float32(1)
    scratch[t % 5] = float32(2)
    out[t] = float32(0)


def test_negative_index_is_out_of_bounds_and_does_not_wrap():
    x = np.arange(1, 33, dtype=np.float32)
    out = np.full(32, -5, np.float32)
    with sanitize() as report:
        read_left_neighbour[1, 32](out, x)
    finding = only(report)
    assert (finding.kind, finding.space, finding.lines) == \
        ("out_of_bounds", "global", [line_of(read_left_neighbour, "x[t - 1]")])
    assert "x[-1]" in finding.example
    assert out[0] == 0  # not x[63]: the out-of-bounds read is not done


def test_shared_and_local_out_of_bounds():
    with sanitize() as report:
        shared_and_local_overrun[1, 32](np.zeros(32, np.float32))
    spaces = {f.space: f for f in report.errors() if f.kind == "out_of_bounds"}
    assert spaces["shared"].lines == [line_of(shared_and_local_overrun, "tile[t + 1]")]
    assert spaces["local"].lines == [line_of(shared_and_local_overrun, "scratch[t % 5]")]


# ---- uninitialized reads -----------------------------------------------------------------------------------
@cuda.jit
def only_block_zero_fills(out):
    tile = cuda.shared.array(32, float32)
    t = cuda.threadIdx.x
    if cuda.blockIdx.x == 0:
        tile[t] = float32(7)
    cuda.syncthreads()
    out[cuda.grid(1)] = tile[t]


def test_shared_memory_is_fresh_and_poisoned_per_block():
    out = np.zeros(64, np.float32)
    with sanitize() as report:
        only_block_zero_fills[2, 32](out)
    finding = only(report)
    assert (finding.kind, finding.space, finding.lines) == \
        ("uninitialized_read", "shared", [line_of(only_block_zero_fills, "= tile[t]")])
    assert "block (1, 0, 0)" in finding.example
    assert (out[:32] == 7).all() and np.isnan(out[32:]).all()  # no carry-over from block 0


@cuda.jit
def copy_kernel(out, x):
    i = cuda.grid(1)
    out[i] = x[i]


def test_device_array_reads_count_only_what_host_or_kernel_wrote():
    out = cuda.device_array(64, np.float32)
    with sanitize() as report:
        never_written = cuda.device_array(64, np.float32)
        copy_kernel[2, 32](out, never_written)
    finding = only(report)
    assert (finding.kind, finding.space, finding.count) == ("uninitialized_read", "global", 64)
    with sanitize() as report:
        half = cuda.device_array(64, np.float32)
        half[:32] = np.ones(32, np.float32)  # host slicing writes the first half
        copy_kernel[2, 32](out, half)
    assert only(report).count == 32 and "[32]" in only(report).example or "[3" in only(report).example
    with sanitize() as report:
        filled = cuda.device_array(64, np.float32)
        filled.copy_to_device(np.ones(64, np.float32))
        copy_kernel[2, 32](out, filled)
        staged = cuda.device_array(64, np.float32)
        copy_kernel[2, 32](staged, cuda.to_device(np.ones(64, np.float32)))  # a kernel writes it
        copy_kernel[2, 32](out, staged)
    assert report.findings("info") == []


# ---- barrier divergence and the watchdog ----------------------------------------------------------------
@cuda.jit
def early_return_before_barrier(out, n):
    tile = cuda.shared.array(64, float32)
    t = cuda.threadIdx.x
    if t >= n:
        return
    tile[t] = float32(t)
    cuda.syncthreads()
    out[t] = tile[n - 1 - t]


@cuda.jit
def two_barrier_sites(out):
    t = cuda.threadIdx.x
    if t < 16:
        cuda.syncthreads()
    else:
        cuda.syncthreads()
    out[t] = float32(t)


def test_early_return_before_a_barrier_is_divergence_and_ends_the_launch():
    out = np.zeros(64, np.float32)
    with sanitize() as report:
        early_return_before_barrier[1, 64](out, 40)
    finding = only(report)
    assert (finding.kind, finding.severity, finding.lines) == \
        ("barrier_divergence", "error", [line_of(early_return_before_barrier, "cuda.syncthreads()")])
    assert "returned" in finding.example and report.launches[0].ended_early
    with sanitize() as report:
        early_return_before_barrier[1, 64](out, 64)
    assert report.findings("info") == []


def test_two_different_barrier_call_sites_are_divergence():
    with sanitize() as report:
        two_barrier_sites[1, 32](np.zeros(32, np.float32))
    finding = only(report)
    first = line_of(two_barrier_sites, "cuda.syncthreads()")
    assert finding.kind == "barrier_divergence" and finding.lines == [first, first + 2]


@cuda.jit
def wait_for_the_next_block(flags):
    b = cuda.blockIdx.x
    if cuda.threadIdx.x == 0:
        while flags[(b + 1) % 2] == 0:  # blocks are never ordered: this may wait forever
            pass
        flags[b] = 1


def test_the_watchdog_ends_a_launch_that_can_never_finish():
    flags = np.zeros(2, np.int32)
    with sanitize(tools="sync,race", watchdog_s=1.0) as report:
        wait_for_the_next_block[2, 1](flags)
    finding = [f for f in report.errors() if f.kind == "barrier_divergence"][0]
    assert "watchdog" in finding.example and "two launches" in finding.hint()
    assert line_of(wait_for_the_next_block, "while flags") in finding.lines
    assert report.launches[0].ended_early


# ---- schedules -------------------------------------------------------------------------------------------------
@cuda.jit
def record_block_order(order, counter):
    if cuda.threadIdx.x == 0:
        position = cuda.atomic.add(counter, 0, 1)
        order[position] = cuda.blockIdx.x


def test_schedules_order_blocks_and_do_not_change_verdicts():
    orders = {}
    for schedule, seed in (("in-order", 0), ("reverse", 0), ("random", 3), ("random", 3), ("random", 4)):
        order = np.zeros(6, np.int32)
        with sanitize(schedule=schedule, seed=seed) as report:
            record_block_order[6, 2](order, np.zeros(1, np.int32))
        assert report.findings("info") == []
        orders.setdefault((schedule, seed), []).append(order.tolist())
    assert orders[("in-order", 0)] == [[0, 1, 2, 3, 4, 5]]
    assert orders[("reverse", 0)] == [[5, 4, 3, 2, 1, 0]]
    assert orders[("random", 3)][0] == orders[("random", 3)][1]  # seeded
    assert sorted(orders[("random", 4)][0]) == list(range(6))
    x = np.arange(64, dtype=np.float32)
    seen = set()
    for schedule, seed in (("in-order", 0), ("reverse", 0), *(("random", seed) for seed in range(1, 6))):
        with sanitize(schedule=schedule, seed=seed) as report:
            shift_left_racy[1, 64](np.zeros(64, np.float32), x)
            rotate_racy[1, 64](np.zeros(64, np.float32), x)
            read_neighbour_block[2, 32](np.zeros(64, np.float32))
            early_return_before_barrier[1, 64](np.zeros(64, np.float32), 40)
        seen.add(tuple(verdicts(report)))
    assert len(seen) == 1 and len(next(iter(seen))) == 5  # RAW, WAR, RAW + WAR between blocks, divergence


# ---- memory profile: Nsight Compute's counts, by hand ---------------------------------------------------------
@cuda.jit
def loads(out, x, stride):
    t = cuda.threadIdx.x
    out[t] = x[t * stride]


@cuda.jit
def tile_reads(out, x, padded, broadcast):
    tile = cuda.shared.array((32, 32), float32)
    tile_padded = cuda.shared.array((32, 33), float32)
    t = cuda.threadIdx.x
    for r in range(32):
        tile[r, t] = x[r * 32 + t]
        tile_padded[r, t] = x[r * 32 + t]
    cuda.syncthreads()
    if broadcast:
        out[t] = tile[0, 0]
    elif padded:
        out[t] = tile_padded[t, 0]  # a column of the padded tile: 32 different banks
    else:
        out[t] = tile[t, 0]  # a column: every word in bank 0


def _row(report, fn, text, space, op):
    line = line_of(fn, text)
    rows = [r for r in report.launches[-1].memory if r.line == line and r.space == space and r.op == op]
    assert len(rows) == 1, report.launches[-1].memory
    return rows[0]


def test_sectors_per_request_match_hand_counts():
    x = np.zeros(32 * 32, np.float32)
    with sanitize(tools="memory") as report:
        loads[1, 32](np.zeros(32, np.float32), x, 1)
    row = _row(report, loads, "x[t * stride]", "global", "load")
    assert (row.requests, row.sectors, row.sectors_per_request) == (1, 4, 4.0)
    with sanitize(tools="memory") as report:
        loads[1, 32](np.zeros(32, np.float32), x, 32)
    row = _row(report, loads, "x[t * stride]", "global", "load")
    assert (row.requests, row.sectors_per_request) == (1, 32.0)
    assert row.to_json()["wavefronts"] == 0 and row.to_json()["ways"] == 0


def test_bank_conflicts_match_hand_counts():
    x = np.zeros(32 * 32, np.float32)
    cases = {(0, 0): (32, 31), (1, 0): (1, 0), (0, 1): (1, 0)}  # (padded, broadcast) -> (ways, conflicts)
    for (padded, broadcast), (ways, conflicts) in cases.items():
        with sanitize(tools="memory") as report:
            tile_reads[1, 32](np.zeros(32, np.float32), x, padded, broadcast)
        text = "tile[0, 0]" if broadcast else "tile_padded[t, 0]" if padded else "tile[t, 0]"
        row = _row(report, tile_reads, text, "shared", "load")
        assert (row.requests, row.ways, row.bank_conflicts) == (1, ways, conflicts), (padded, broadcast)
        assert row.to_json()["sectors"] == 0
    store = _row(report, tile_reads, "tile[r, t] = x", "shared", "store")
    assert (store.requests, store.ways, store.bank_conflicts) == (32, 1, 0)


# ---- the report and the API ------------------------------------------------------------------------------------
def test_json_follows_the_issue_schema_exactly():
    with sanitize() as report:
        shift_left_racy[1, 64](np.zeros(64, np.float32), np.arange(64, dtype=np.float32))
    data = json.loads(json.dumps(report.to_json()))
    assert set(data) == {"launches"}
    launch = data["launches"][0]
    assert set(launch) == {"kernel", "grid", "block", "findings", "memory"}
    assert launch["kernel"] == "shift_left_racy" and launch["grid"] == [1, 1, 1] and launch["block"] == [64, 1, 1]
    assert set(launch["findings"][0]) == {"kind", "severity", "space", "hazard", "scope", "file", "lines", "count",
                                          "example"}
    assert set(launch["memory"][0]) == {"file", "line", "space", "op", "requests", "sectors", "sectors_per_request",
                                        "wavefronts", "bank_conflicts", "ways"}
    text = report.text()
    assert "Race reported between Write access at" in text and "SUMMARY shift_left_racy" in text
    assert "ERROR SUMMARY: 1 error" in text
    assert report.first_finding_line().startswith("error: Race reported between Write access")
    assert "fix? a cuda.syncthreads() after the write at line" in text


def test_findings_are_capped_per_launch_with_the_rest_counted():
    with sanitize(max_findings=1) as report:
        shared_and_local_overrun[1, 32](np.zeros(32, np.float32))
    launch = report.launches[0]
    assert len(launch.findings) == 1 and launch.dropped >= 1
    assert "more findings not kept" in report.text()


def test_sanitize_nests_restores_the_simulator_and_checks_its_arguments():
    from numba.cuda.simulator.kernel import FakeCUDAKernel

    plain_call = FakeCUDAKernel.__call__
    with sanitize(tools="bounds") as outer:
        with sanitize(tools="race") as inner:
            shift_left_racy[1, 64](np.zeros(64, np.float32), np.arange(64, dtype=np.float32))
        read_left_neighbour[1, 32](np.zeros(32, np.float32), np.ones(32, np.float32))
    assert FakeCUDAKernel.__call__ is plain_call
    assert len(inner.launches) == 1 and len(outer.launches) == 2
    assert only(inner).kind == "race" and outer.launches[1].findings[0].kind == "out_of_bounds"
    with pytest.raises(ValueError, match="tools"):
        with sanitize(tools="speed"):
            pass
    with pytest.raises(ValueError, match="schedule"):
        with sanitize(schedule="sideways"):
            pass


@cuda.jit
def divide(out, x):
    t = cuda.threadIdx.x
    out[t] = int(x[t]) // (t - t)  # a Python int: raises, as a bug in a kernel would


def test_a_kernel_that_raises_still_leaves_its_launch_in_the_report():
    with sanitize() as report:
        with pytest.raises(ZeroDivisionError):
            divide[1, 4](np.zeros(4, np.int32), np.ones(4, np.int32))
    assert len(report.launches) == 1


def test_the_projects_tiled_gemm_is_clean():
    from cuda_kernels import gemm

    a = np.random.default_rng(0).standard_normal((16, 16)).astype(np.float32)
    c = cuda.device_array((16, 16), np.float32)
    with sanitize() as report:
        gemm.gemm_shared_tiled.compiled[(1, 1), (16, 16)](c, cuda.to_device(a), cuda.to_device(a), np.float32(1),
                                                           np.float32(0), 0, 0, cuda.to_device(np.zeros(1, np.float32)),
                                                           0, 0)
    assert report.findings("info") == [], report.text("info")
    np.testing.assert_allclose(c.copy_to_host(), a @ a, rtol=1e-4, atol=1e-4)


# ---- warp-level barriers (when sanitizer.warp, the warp primitives, is in this checkout) -----------------------
@cuda.jit
def warp_reduce(out, x, with_syncwarp):
    buf = cuda.shared.array(32, float32)
    t = cuda.threadIdx.x
    buf[t] = x[t]
    cuda.syncwarp(0xFFFFFFFF)
    stride = 16
    while stride > 0:
        v = buf[t + stride] if t < stride else float32(0)
        if with_syncwarp:
            cuda.syncwarp(0xFFFFFFFF)  # every lane has read before any lane writes
        if t < stride:
            buf[t] += v
        if with_syncwarp:
            cuda.syncwarp(0xFFFFFFFF)
        stride //= 2
    if t == 0:
        out[0] = buf[0]


def test_syncwarp_orders_the_lanes_of_a_warp():
    pytest.importorskip("sanitizer.warp")
    out = np.zeros(1, np.float32)
    with sanitize() as report:
        warp_reduce[1, 32](out, np.ones(32, np.float32), 1)
    assert report.findings("info") == [] and out[0] == 32
    with sanitize() as report:
        warp_reduce[1, 32](out, np.ones(32, np.float32), 0)
    assert report.errors() and {f.scope for f in report.errors()} == {"intra-warp"}


def test_a_finding_repeated_over_many_launches_is_printed_once():
    x = np.arange(64, dtype=np.float32)
    with sanitize() as report:
        for _ in range(3):
            shift_left_racy[1, 64](np.zeros(64, np.float32), x)
    text = report.text()
    assert text.count("Race reported between") == 1
    assert "launch 2: shift_left_racy, grid (1, 1, 1): the same 1 finding as launch 0" in text
    assert "ERROR SUMMARY: 3 errors, 0 warnings in 3 of 3 launches" in text


@cuda.jit(device=True)
def neighbour(buf, t):
    return buf[(t + 1) % 32]


@cuda.jit
def dynamic_shared_and_count(out, x, synced):
    dyn = cuda.shared.array(0, float32)
    t = cuda.threadIdx.x
    dyn[t] = x[t]
    n = cuda.syncthreads_count(x[t] > float32(3)) if synced else 0
    out[t] = neighbour(dyn, t) + n


def test_dynamic_shared_memory_syncthreads_count_and_device_functions():
    x = np.arange(32, dtype=np.float32)
    out = np.zeros(32, np.float32)
    with sanitize() as report:
        dynamic_shared_and_count[1, 32, 0, 128](out, x, 1)
    assert report.findings("info") == []
    np.testing.assert_array_equal(out, np.roll(x, -1) + 28)
    with sanitize() as report:
        dynamic_shared_and_count[1, 32, 0, 128](out, x, 0)
    finding = only(report)  # the read is in the device function: its line is reported
    assert finding.lines == [line_of(dynamic_shared_and_count, "dyn[t] = x[t]"), line_of(neighbour, "return buf")]


@cuda.jit
def read_then_write_own_slot(out):
    tile = cuda.shared.array(32, float32)
    t = cuda.threadIdx.x
    out[t] = tile[t]  # read before this thread's own write: nothing wrote it yet
    tile[t] = float32(1)
    out[t] += tile[t]


def test_a_read_before_the_threads_own_write_is_uninitialized():
    with sanitize() as report:
        read_then_write_own_slot[1, 32](np.zeros(32, np.float32))
    finding = only(report)
    assert (finding.kind, finding.lines, finding.count) == \
        ("uninitialized_read", [line_of(read_then_write_own_slot, "out[t] = tile[t]")], 32)


def test_without_the_simulator_sanitize_says_so_in_one_line():
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in __import__("os").environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    code = ("import sanitizer\ntry:\n    with sanitizer.sanitize():\n        pass\nexcept RuntimeError as e:\n"
            "    print(e)\nprint(sanitizer.available())\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines()[-2].startswith("sanitize() watches Numba's CUDA simulator, which is off")
    assert done.stdout.splitlines()[-1] == "False"


@cuda.jit
def shuffle_after_early_exit(out, x):
    t = cuda.threadIdx.x
    if t >= 16:
        return
    out[t] = cuda.shfl_down_sync(0xFFFFFFFF, x[t], 1)  # lanes 16-31 named in the mask have left


def test_a_warp_mask_naming_lanes_that_left_is_a_finding_not_a_crash():
    pytest.importorskip("sanitizer.warp")
    with sanitize() as report:
        shuffle_after_early_exit[1, 32](np.zeros(32, np.float32), np.ones(32, np.float32))
    finding = only(report)
    assert finding.kind == "barrier_divergence" and finding.lines == [line_of(shuffle_after_early_exit, "shfl_down")]
    assert "16-31" in finding.example and report.launches[0].ended_early
