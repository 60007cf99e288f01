"""The checks, with CUDA's semantics: run at each barrier on the epoch's accesses, then at each block's end.

Threads of one block between the same two barriers are concurrent; different blocks always are. So a race
is two accesses to one address, by two threads, in one barrier epoch of one block (shared or global), or
by two blocks anywhere in the launch (global), at least one a write and not both atomic. Which access
"came first" in the simulator is never used: a read/write pair is named RAW when the write is no later in
its thread's epoch than the read in its own (its step count), else WAR. A read is uninitialized when
nothing had written its address when its epoch began and no thread writes it in the epoch (a write by
another thread there is a race, reported as one). So the verdicts do not depend on the schedule.

Each epoch's log is reduced with NumPy to per-address state (global accesses folded into the block's
first-access tables for the inter-block check) and dropped; only findings and the memory profile outlive
the launch.
"""

from __future__ import annotations

import threading

import numpy as np

from .report import Finding, Launch, MemoryRow
from .shadow import (
    ATOMIC,
    SHARED_BASE,
    STEP_SHIFT,
    TID_BITS,
    TID_SHIFT,
    UNINIT_READ,
    WARP_EPOCH_BITS,
    WARP_EPOCH_SHIFT,
    WRITE,
    mark_kernel_writes,
    site_of,
    split_site,
)

SCOPE_RANK = {"intra-warp": 0, "inter-warp": 1, "inter-block": 2}
MAX_UNINIT_CANDIDATES = 100_000


class LaunchState:
    """One sanitized launch: its tools, its findings (capped), its memory profile, its global shadow."""

    def __init__(self, kernel: str, grid, block, tools, max_findings: int = 64, param_names=()):
        self.kernel, self.grid, self.block = kernel, tuple(grid), tuple(block)
        self.tools = set(tools)
        self.race, self.sync = "race" in tools, "sync" in tools
        self.bounds, self.init, self.memory = "bounds" in tools, "init" in tools, "memory" in tools
        self.log_accesses = self.race or self.init or self.memory
        self.max_findings = max_findings
        self.findings: dict = {}
        self.dropped = 0
        self.ended_early = False
        self.lock = threading.RLock()
        self.names: list = []  # (start, end, TrackedArray) for describing addresses
        self.memory_rows: dict = {}  # (site, space, op) -> [requests, sectors, wavefronts, ways]
        # the launch's global shadow: first plain write / read / atomic per address, by block
        self.written: dict = {}
        self.read: dict = {}
        self.atomic: dict = {}
        self.written_by_several: set = set()
        self.uninit_candidates: list = []

    # ---- findings ------------------------------------------------------------------------------------
    def add(self, key, count, make, scope=None):
        """Count ``count`` more of the finding ``key`` (made by ``make()`` the first time)."""
        with self.lock:
            found = self.findings.get(key)
            if found is None:
                if len(self.findings) >= self.max_findings:
                    self.dropped += count
                    return
                found = self.findings[key] = make()
                found.count = 0
            found.count += count
            if scope is not None and SCOPE_RANK[scope] > SCOPE_RANK[found.scope]:
                found.scope = scope  # the widest scope seen, with an example of it
                found.example = make().example

    def name_allocation(self, address, tracked):
        with self.lock:
            end = address + tracked._ary.nbytes
            self.names = [n for n in self.names if not (n[0] == address and tracked._space == n[2]._space)]
            self.names.append((address, end, tracked))

    def describe(self, address: int) -> str:
        """'A[3, 4]' for a device address (the kernel's parameter or shared array name and its index)."""
        for start, end, tracked in reversed(self.names):
            if start <= address < end:
                offset = address - start
                ary = tracked._ary
                index = []
                for stride in sorted(ary.strides, reverse=True):
                    if stride <= 0:
                        continue
                    index.append(offset // stride)
                    offset %= stride
                order = sorted(range(ary.ndim), key=lambda d: -ary.strides[d])
                by_dim = [0] * ary.ndim
                for d, value in zip(order, index):
                    by_dim[d] = value
                return f"{tracked._label}[{', '.join(str(i) for i in by_dim)}]"
        return f"address {address:#x}"

    def thread(self, tid: int) -> str:
        bx, by, _ = self.block
        return f"({tid % bx}, {tid // bx % by}, {tid // (bx * by)})"

    def block_coords(self, linear: int) -> str:
        gx, gy, _ = self.grid
        return f"({linear % gx}, {linear // gx % gy}, {linear // (gx * gy)})"

    def out_of_bounds(self, array, idx, op, frame):
        """A thread indexed outside an array (negative included): report it; the access is not done."""
        t = threading.current_thread()
        site_file, line = split_site(site_of(frame)) if frame is not None else ("?", 0)
        space = getattr(array, "_space", "local")
        label = getattr(array, "_label", "local array")
        verb = {0: "read", 1: "wrote", 2: "atomically updated"}.get(op, "read")
        index = idx if isinstance(idx, tuple) else (idx,)
        index_text = ", ".join(":" if isinstance(i, slice) else str(int(i)) for i in index)
        who = f"thread {_dim3(t, 'threadIdx')} block {_dim3(t, 'blockIdx')}"
        example = f"{who} {verb} {label}[{index_text}], outside its shape {tuple(array._shape)}"
        self.add(("out_of_bounds", space, site_file, line), 1,
                 lambda: Finding("out_of_bounds", "error", space, None, None, site_file, [line], 0, example))

    def barrier_divergence(self, lines, file, example, count):
        self.add(("barrier_divergence", file, tuple(lines)), count,
                 lambda: Finding("barrier_divergence", "error", None, None, None, file, list(lines), 0, example))

    # ---- per epoch ------------------------------------------------------------------------------------
    def analyse_epoch(self, runner, entries: list) -> None:
        """Races inside the block, uninitialized reads and the memory profile of one barrier epoch."""
        if not entries:
            return
        addresses, steps, site, values = zip(*entries)
        A = np.array(addresses, np.int64)
        steps = np.array(steps, np.int64)
        S = np.array(site, np.int64)
        O = (steps & 3).astype(np.int8)
        T = (steps >> TID_SHIFT) & ((1 << TID_BITS) - 1)
        Q = steps >> STEP_SHIFT
        self._warp_epochs = (steps >> WARP_EPOCH_SHIFT) & ((1 << WARP_EPOCH_BITS) - 1)
        writes = O == WRITE
        writes |= O == ATOMIC
        if self.race:
            self._races_in_block(runner, A, T, O, S, Q, values)
        if self.init:
            self._uninitialized(runner, A, T, O, S, Q, values, writes)
        if self.memory:
            Z = 1 << ((steps >> 2) & 7)
            self._profile(A, T, O, S, Z)
        shared_written = A[writes & (A >= SHARED_BASE)]
        if shared_written.size:
            runner.shared.initialized[shared_written - SHARED_BASE] = True
        if self.race or self.init:
            self._fold_global(runner, A, T, O, S, Q, values, writes)

    def _races_in_block(self, runner, A, T, O, S, Q, values):
        order = np.argsort(A, kind="stable")
        sorted_addr = A[order]
        starts = np.flatnonzero(np.r_[True, sorted_addr[1:] != sorted_addr[:-1]])
        tids, ops = T[order], O[order]
        several_threads = np.minimum.reduceat(tids, starts) != np.maximum.reduceat(tids, starts)
        any_write = np.maximum.reduceat((ops == WRITE) | (ops == ATOMIC), starts).astype(bool)
        not_all_atomic = np.minimum.reduceat(np.where(ops == ATOMIC, 1, 0), starts) == 0
        suspects = np.flatnonzero(several_threads & any_write & not_all_atomic)
        ends = np.r_[starts[1:], len(order)]
        warp_epochs = self._warp_epochs
        for g in suspects:
            rows = order[starts[g]:ends[g]]
            accesses = [(int(T[i]), int(O[i]), int(S[i]), int(Q[i]), values[i], int(warp_epochs[i])) for i in rows]
            self._race_pairs(runner, int(A[rows[0]]), accesses, None)

    def _race_pairs(self, runner, address, accesses, other_block):
        """Every conflicting pair of threads at one address inside one block (one barrier epoch): two threads,
        at least one writing, not both atomic, and not ordered by a warp rendezvous (same warp, different
        warp epochs)."""
        groups: dict = {}
        for tid, op, site, seq, value, warp_epoch in accesses:
            kind = "W" if op == WRITE else "A" if op == ATOMIC else "R"
            group = groups.setdefault((kind, site), {})
            if tid not in group:
                group[tid] = (seq, value, warp_epoch)
        keys = sorted(groups)
        space = "shared" if address >= SHARED_BASE else "global"
        for i, key_a in enumerate(keys):
            for key_b in keys[i:]:
                kinds = {key_a[0], key_b[0]}
                if kinds <= {"R"} or kinds == {"A"}:
                    continue
                first, second = (key_b, key_a) if "R" in kinds and key_a[0] == "R" else (key_a, key_b)  # writer first
                g1, g2 = groups[first], groups[second]
                t1, s1, e1 = (np.array(list(g1)), np.array([v[0] for v in g1.values()]),
                              np.array([v[2] for v in g1.values()]))
                t2, s2, e2 = (np.array(list(g2)), np.array([v[0] for v in g2.values()]),
                              np.array([v[2] for v in g2.values()]))
                conflict = t1[:, None] != t2[None, :]
                conflict &= (t1[:, None] // 32 != t2[None, :] // 32) | (e1[:, None] == e2[None, :])
                if first == second:
                    conflict &= np.triu(np.ones_like(conflict), 1)
                if "R" in kinds:
                    # per pair of threads: RAW when the write is no later in its thread's epoch than the read
                    write_first = s1[:, None] <= s2[None, :]
                    for hazard, mask in (("RAW", conflict & write_first), ("WAR", conflict & ~write_first)):
                        pairs = int(mask.sum())
                        if pairs:
                            i1, i2 = np.argwhere(mask)[0]
                            ordered = ((first, g1, int(t1[i1])), (second, g2, int(t2[i2])))
                            self._emit(runner, address, space, hazard, "error",
                                       ordered if hazard == "RAW" else ordered[::-1], pairs,
                                       _crosses_warps(mask, t1, t2))
                    continue
                pairs = int(conflict.sum())
                if not pairs:
                    continue
                same = "A" not in kinds and len({_value_key(v[1]) for v in list(g1.values()) + list(g2.values())}) == 1
                i1, i2 = np.argwhere(conflict)[0]
                self._emit(runner, address, space, "WAW", "info" if same else "error",
                           ((first, g1, int(t1[i1])), (second, g2, int(t2[i2]))), pairs,
                           _crosses_warps(conflict, t1, t2))

    def _emit(self, runner, address, space, hazard, severity, ordered, pairs, cross_warp):
        (ka, ga, ta), (kb, gb, tb) = ordered
        scope = "inter-warp" if cross_warp else "intra-warp"
        file_a, line_a = split_site(ka[1])
        _, line_b = split_site(kb[1])
        lines = [line_a, line_b] if hazard != "WAW" else sorted([line_a, line_b])
        key = ("race", space, hazard, severity, ka[1], kb[1]) if hazard != "WAW" else \
            ("race", space, hazard, severity) + tuple(sorted([ka[1], kb[1]]))
        block = runner.block_text
        example = (f"thread {self.thread(ta)} block {block} {_verb(ka[0])} {self.describe(address)} "
                   f"{_value_text(ka[0], ga[ta][1])} at line {line_a}; thread {self.thread(tb)} block "
                   f"{block} {_verb(kb[0])} it {_value_text(kb[0], gb[tb][1])} at line {line_b}, "
                   "with no barrier between")
        self.add(key, pairs, lambda: Finding("race", severity, space, hazard, scope, file_a, lines, 0, example),
                 scope)

    def _uninitialized(self, runner, A, T, O, S, Q, values, writes):
        suspects = np.flatnonzero(O == UNINIT_READ)
        if suspects.size == 0:
            return
        # covered: written in this epoch by another thread (a race, reported as one) or by the reader itself
        # earlier in its program order; a read before the thread's own first write stays uninitialized
        write_rows = np.flatnonzero(writes & np.isin(A, A[suspects]))
        first_write: dict = {}  # (address, tid) -> earliest step; address -> the set of writers
        writers: dict = {}
        for w in write_rows.tolist():
            address, tid, step = int(A[w]), int(T[w]), int(Q[w])
            writers.setdefault(address, set()).add(tid)
            if first_write.get((address, tid), step + 1) > step:
                first_write[(address, tid)] = step
        keep = []
        for i in suspects.tolist():
            address, tid = int(A[i]), int(T[i])
            others = writers.get(address, ())
            if any(t != tid for t in others) or first_write.get((address, tid), 1 << 62) < int(Q[i]):
                continue
            keep.append(i)
        for i in keep:
            address = int(A[i])
            if address >= SHARED_BASE:
                self._report_uninit(address, int(T[i]), int(S[i]), values[i], runner.block_text)
            elif address not in runner.global_written and len(self.uninit_candidates) < MAX_UNINIT_CANDIDATES:
                self.uninit_candidates.append((address, runner.linear, int(T[i]), int(S[i]), values[i],
                                               runner.block_text))

    def _report_uninit(self, address, tid, site, value, block):
        space = "shared" if address >= SHARED_BASE else "global"
        file, line = split_site(site)
        whom = "no thread of the block wrote it before a barrier" if space == "shared" else \
            "neither the host nor a kernel wrote it"
        example = (f"thread {self.thread(tid)} block {block} read {self.describe(address)} at line {line} "
                   f"(got {_format(value)}): {whom}")
        self.add(("uninitialized_read", space, site), 1,
                 lambda: Finding("uninitialized_read", "error", space, None, None, file, [line], 0, example))

    def _fold_global(self, runner, A, T, O, S, Q, values, writes):
        """Keep the block's first global read, write and atomic per address and source line (for the
        inter-block check): {address: {site: (tid, site, epoch, step, value)}}."""
        is_global = A < SHARED_BASE
        if not is_global.any():
            return
        epoch = runner.epoch
        for table, mask in ((runner.block_written, is_global & (O == WRITE)),
                            (runner.block_atomic, is_global & (O == ATOMIC)),
                            (runner.block_read, is_global & ~writes)):
            rows = np.flatnonzero(mask)
            if rows.size == 0:
                continue
            for i in rows[_distinct_pairs(A[rows], S[rows])].tolist():
                sites = table.setdefault(int(A[i]), {})
                if int(S[i]) not in sites:
                    sites[int(S[i])] = (int(T[i]), int(S[i]), epoch, int(Q[i]), values[i])
        runner.global_written.update(np.unique(A[is_global & writes]).tolist())

    # ---- per block and per launch ----------------------------------------------------------------------
    def end_block(self, runner) -> None:
        """Global accesses of this block against those of every block before it (all concurrent)."""
        if not self.race and not self.init:
            return
        bw, br, ba = runner.block_written, runner.block_read, runner.block_atomic
        if self.race:
            for mine, theirs, kinds in ((bw, self.written, "WW"), (bw, self.read, "WR"), (bw, self.atomic, "WA"),
                                        (br, self.written, "RW"), (br, self.atomic, "RA"),
                                        (ba, self.written, "AW"), (ba, self.read, "AR")):
                for address in mine.keys() & theirs.keys():
                    for here in mine[address].values():
                        for there in theirs[address].values():
                            self._inter_block_race(runner, address, kinds, here, there)
        self.written_by_several |= (bw.keys() | ba.keys()) & (self.written.keys() | self.atomic.keys())
        for mine, launch in ((bw, self.written), (br, self.read), (ba, self.atomic)):
            for address, sites in mine.items():
                known = launch.setdefault(address, {})
                for site, first in sites.items():
                    if site not in known:
                        known[site] = (runner.linear, runner.block_text) + first

    def _inter_block_race(self, runner, address, kinds, mine, theirs):
        other_block_text = theirs[1]
        theirs = theirs[2:]
        me_kind, them_kind = kinds
        if "R" in kinds:
            (w_kind, w, w_block), (r_kind, r, r_block) = (
                ((me_kind, mine, runner.block_text), (them_kind, theirs, other_block_text)) if me_kind != "R"
                else ((them_kind, theirs, other_block_text), (me_kind, mine, runner.block_text)))
            hazard = "RAW" if (w[2], w[3]) <= (r[2], r[3]) else "WAR"
            ordered = [(w_kind, w, w_block), (r_kind, r, r_block)] if hazard == "RAW" else \
                [(r_kind, r, r_block), (w_kind, w, w_block)]
            severity = "error"
        else:
            hazard = "WAW"
            ordered = sorted([(me_kind, mine, runner.block_text), (them_kind, theirs, other_block_text)],
                             key=lambda x: x[1][1])
            same = "A" not in kinds and _value_key(mine[4]) == _value_key(theirs[4])
            severity = "info" if same else "error"
        (ka, a, block_a), (kb, b, block_b) = ordered
        file_a, line_a = split_site(a[1])
        _, line_b = split_site(b[1])
        example = (f"thread {self.thread(a[0])} block {block_a} {_verb(ka)} {self.describe(address)} "
                   f"{_value_text(ka, a[4])} at line {line_a}; thread {self.thread(b[0])} block {block_b} "
                   f"{_verb(kb)} it {_value_text(kb, b[4])} at line {line_b} (blocks are never ordered)")
        key = ("race", "global", hazard, severity, a[1], b[1])
        self.add(key, 1, lambda: Finding("race", severity, "global", hazard, "inter-block", file_a,
                                         [line_a, line_b], 0, example), "inter-block")

    def finish(self) -> Launch:
        """Settle what needs the whole launch (uninitialized global reads), mark the launch's writes as
        initialized, and return the record."""
        if self.init:
            for address, block, tid, site, value, block_text in self.uninit_candidates:
                if address in self.written_by_several:
                    continue
                writers = list(self.written.get(address, {}).values()) + list(self.atomic.get(address, {}).values())
                if any(first[0] != block for first in writers):
                    continue  # another block writes it: the inter-block race says so
                self._report_uninit(address, tid, site, value, block_text)
            mark_kernel_writes(np.fromiter(list(self.written.keys()) + list(self.atomic.keys()), np.int64))
        launch = Launch(self.kernel, self.grid, self.block)
        order = {"error": 0, "warning": 1, "info": 2}
        launch.findings = sorted(self.findings.values(), key=lambda f: (order[f.severity], f.file, f.lines))
        launch.dropped = self.dropped
        launch.ended_early = self.ended_early
        for (site, space, op), (requests, sectors, wavefronts, ways) in sorted(self.memory_rows.items()):
            file, line = split_site(site)
            if space == "shared":
                launch.memory.append(MemoryRow(file, line, space, op, requests, 0, wavefronts, ways))
            else:
                launch.memory.append(MemoryRow(file, line, space, op, requests, sectors, 0, 0))
        self.written = self.read = self.atomic = {}
        self.uninit_candidates = []
        return launch

    # ---- the memory profile ------------------------------------------------------------------------------
    def _profile(self, A, T, O, S, Z):
        """Requests = (warp, site, op, n-th execution by each lane); sectors and bank wavefronts per request."""
        keep = O != ATOMIC
        if not keep.any():
            return
        A, T, S, Z = A[keep], T[keep], S[keep], Z[keep]
        store = (O[keep] == WRITE).astype(np.int64)
        sites, site_index = np.unique(S, return_inverse=True)
        n_rows = len(A)
        # the n-th execution of (site, op) by each thread, in its program order (the log keeps it per thread)
        order = np.lexsort((np.arange(n_rows), store, site_index, T))
        t, s, o, a, z = T[order], site_index[order], store[order], A[order], Z[order]
        new_group = np.r_[True, (t[1:] != t[:-1]) | (s[1:] != s[:-1]) | (o[1:] != o[:-1])]
        group_start = np.maximum.accumulate(np.where(new_group, np.arange(n_rows), 0))
        nth = np.arange(n_rows) - group_start
        shared = (a >= SHARED_BASE).astype(np.int64)
        kind = (s * 2 + o) * 2 + shared  # (site, op, space): one row of the profile
        request_key = ((kind << 6) + t // 32 << 24) + nth
        unique_keys, request = np.unique(request_key, return_inverse=True)
        n_requests = len(unique_keys)
        per_request = np.zeros(n_requests, np.int64)  # sectors (global) or wavefronts (shared)
        g = shared == 0
        if g.any():
            req = np.r_[request[g], request[g]]
            sector = np.r_[a[g] // 32, (a[g] + z[g] - 1) // 32]
            per_request += np.bincount(req[_distinct_pairs(req, sector)], minlength=n_requests)
        sh = ~g
        if sh.any():
            offset = a[sh] - SHARED_BASE
            req, words = [request[sh]], [offset // 4]
            for extra in range(1, int((z[sh].max() + 3) // 4)):  # an 8-byte element spans two words
                more = z[sh] > 4 * extra
                req.append(request[sh][more])
                words.append(offset[more] // 4 + extra)
            req, words = np.concatenate(req), np.concatenate(words)
            distinct = _distinct_pairs(req, words)
            per_bank = np.bincount(req[distinct] * 32 + words[distinct] % 32, minlength=n_requests * 32)
            per_request += per_bank.reshape(n_requests, 32).max(axis=1)
        row_kind = unique_keys >> 30
        kinds, row = np.unique(row_kind, return_inverse=True)
        requests = np.bincount(row)
        totals = np.bincount(row, weights=per_request).astype(np.int64)
        ways = np.zeros(len(kinds), np.int64)
        np.maximum.at(ways, row, per_request)
        with self.lock:
            for k, n_req, total, most in zip(kinds.tolist(), requests.tolist(), totals.tolist(), ways.tolist()):
                site = int(sites[k >> 2])
                key = (site, "shared" if k & 1 else "global", "store" if k >> 1 & 1 else "load")
                entry = self.memory_rows.get(key)
                if entry is None:
                    entry = self.memory_rows[key] = [0, 0, 0, 0]
                entry[0] += n_req
                entry[1] += total
                entry[2] += total
                entry[3] = max(entry[3], most)


def _distinct_pairs(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Indices of one row per distinct (first, second) pair."""
    order = np.lexsort((second, first))
    f, s = first[order], second[order]
    keep = np.r_[True, (f[1:] != f[:-1]) | (s[1:] != s[:-1])]
    return order[keep]


def _crosses_warps(mask: np.ndarray, first: np.ndarray, second: np.ndarray) -> bool:
    """Whether any conflicting pair in ``mask`` joins threads of two different warps."""
    rows, cols = np.nonzero(mask)
    return bool((first[rows] // 32 != second[cols] // 32).any())


def _dim3(thread, name: str) -> str:
    return str(tuple(int(v) for v in getattr(thread, name, (0, 0, 0))))


def _verb(kind: str) -> str:
    return {"W": "wrote", "A": "atomically updated", "R": "read"}[kind]


def _value_text(kind: str, value) -> str:
    return f"= {_format(value)}" if kind != "R" else f"(got {_format(value)})"


def _format(value) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return repr(value)
    if number != number:
        return "NaN, the poison of memory never written"
    return f"{number:g}"


def _value_key(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return repr(value)
