"""Warp primitives for Numba's CUDA simulator, which has none (numba issue 8433).

``install()`` adds them to the simulator's fake ``cuda`` module, so a kernel calling
``cuda.shfl_down_sync(mask, value, delta)`` runs in the plain simulator as it would on a GPU. Signatures
and return types are numba-cuda's (``cudadecl.py``, ``intrinsics.py``)::

    syncwarp(mask=0xFFFFFFFF)                   -> None
    shfl_sync(mask, value, src_lane)            -> value of lane src_lane % 32
    shfl_up_sync(mask, value, delta)            -> value of lane - delta (own value below lane 0)
    shfl_down_sync(mask, value, delta)          -> value of lane + delta (own value past lane 31)
    shfl_xor_sync(mask, value, lane_mask)       -> value of lane ^ lane_mask
    ballot_sync(mask, predicate)                -> int32: bit i set when lane i's predicate holds
    all_sync / any_sync / eq_sync(mask, predicate) -> bool
    match_any_sync(mask, value)                 -> int32: the lanes holding the same value
    match_all_sync(mask, value)                 -> (int32 mask or 0, bool)
    activemask()                                -> uint32: the lanes of the warp still running
    lanemask_lt()                               -> uint32: the lanes below the caller's

A warp is 32 consecutive linear thread ids of a block (linear id = x + y*bx + z*bx*by); the last warp of
a block whose size is not a multiple of 32 has fewer lanes. Delta, source lane and lane mask are taken
modulo 32, as PTX's ``shfl.sync`` takes ``b[4:0]``. A lane reading from a lane that does not take part
(outside the mask, or past a partial warp's end) gets what a GPU leaves undefined: NaN for floats,
``POISON_INT`` for integers (``UNDEFINED_READS = "error"`` raises instead).

Each call is a rendezvous of the warp's lanes named in ``mask``, matched by call order: every lane named
in the mask must arrive at the same primitive with the same mask. A lane named in the mask that cannot
arrive (it has exited, waits at ``syncthreads``, or waits at another warp primitive while no lane of the
warp is left running) raises ``WarpSyncError`` naming the primitive, the mask, the missing lanes and
where they are, in every waiting lane: never a hang. A watchdog (``WATCHDOG_S`` seconds without progress
in the warp) catches the rest. After each rendezvous, every lane calls each ``listener(mask, file, line)``
of ``WARP_SYNC_LISTENERS`` with its own call's source line (a sanitizer treats it as a warp barrier).
"""

from __future__ import annotations

import math
import os
import sys
import threading

import numpy as np

FULL_MASK = 0xFFFFFFFF
WARP_SIZE = 32
POISON_INT = -559038737  # 0xDEADBEEF as an int32: what an undefined integer read returns
UNDEFINED_READS = "poison"  # or "error": a lane reading from a lane that does not take part
WATCHDOG_S = 60.0  # seconds a lane waits with no progress in its warp before it gives up
_POLL_S = 0.05  # how often a waiting lane looks again (exits, aborts) when nothing notifies it

WARP_SYNC_LISTENERS: list = []  # listener(mask, file, line), called by each lane after each rendezvous

_HERE = os.path.normcase(os.path.abspath(__file__))
_STATES_LOCK = threading.Lock()
_INSTALLED = [False]


class WarpSyncError(RuntimeError):
    """A warp primitive whose mask names lanes that cannot arrive, or that was called wrongly."""


# ------------------------------------------------------------------------------------------------
# Where the calling lane is
# ------------------------------------------------------------------------------------------------


def _dims(thread):
    """(block dims (x, y, z), thread index (x, y, z)) of a simulator thread."""
    try:
        tid = thread.threadIdx
    except AttributeError:
        raise WarpSyncError("a warp primitive was called outside a simulated CUDA kernel") from None
    manager = getattr(thread, "_manager", None)
    block = getattr(manager, "_block_dim", None)
    if block is None:
        from numba.cuda.simulator import kernel

        context = kernel._get_kernel_context()
        block = tuple(context.blockDim)
    block = tuple(block) + (1,) * (3 - len(tuple(block)))
    return block, (tid.x, tid.y, tid.z)


def _call_site(depth: int = 2) -> tuple[str, int]:
    """(file, line) of the first frame outside this module: the kernel's call."""
    frame = sys._getframe(depth)
    while frame is not None and os.path.normcase(os.path.abspath(frame.f_code.co_filename)) == _HERE:
        frame = frame.f_back
    return (frame.f_code.co_filename, frame.f_lineno) if frame is not None else ("<unknown>", 0)


def _lanes_named(lanes) -> str:
    """'lane 3' or 'lanes 0-3, 7, 16-31'."""
    return f"lane{'s' if len(lanes) > 1 else ''} {_lanes_text(lanes)}"


def _lanes_text(lanes) -> str:
    """Lane numbers as short ranges: '0-3, 7, 16-31'."""
    lanes, parts, i = sorted(lanes), [], 0
    while i < len(lanes):
        j = i
        while j + 1 < len(lanes) and lanes[j + 1] == lanes[j] + 1:
            j += 1
        parts.append(str(lanes[i]) if i == j else f"{lanes[i]}-{lanes[j]}")
        i = j + 1
    return ", ".join(parts)


def _int32(bits: int) -> np.int32:
    bits &= FULL_MASK
    return np.int32(bits - (1 << 32) if bits >= 1 << 31 else bits)


# ------------------------------------------------------------------------------------------------
# Per-block state: lanes seen, running or exited, and each warp's open rendezvous
# ------------------------------------------------------------------------------------------------


class _Rendezvous:
    __slots__ = ("kind", "mask", "expected", "arrivals", "results", "done", "error", "site")

    def __init__(self, kind, mask, expected, site):
        self.kind, self.mask, self.expected, self.site = kind, mask, expected, site
        self.arrivals = {}  # lane -> (argument, (file, line))
        self.results = {}
        self.done = False
        self.error = None

    def describe(self) -> str:
        file, line = self.site
        return f"{self.kind}(mask=0x{self.mask:08x}) at {os.path.basename(file)}:{line}"


class _Warp:
    def __init__(self, lock, warp, size):
        self.changed = threading.Condition(lock)
        self.warp, self.size = warp, size  # lanes 0..size-1 exist (fewer in a partial last warp)
        self.open: list[_Rendezvous] = []
        self.waiting: dict[int, _Rendezvous] = {}  # lane -> the rendezvous it waits in
        self.progress = 0  # bumped on every arrival, completion, start and exit


class _Block:
    def __init__(self, block_dim, block_idx):
        self.lock = threading.Lock()
        self.block_idx = block_idx
        threads = block_dim[0] * block_dim[1] * block_dim[2]
        self.warps = [_Warp(self.lock, w, min(WARP_SIZE, threads - w * WARP_SIZE))
                      for w in range(math.ceil(threads / WARP_SIZE))]
        self.threads: dict[int, threading.Thread] = {}  # linear id -> thread, once seen
        self.exited: set[int] = set()

    def where(self, linear: int, observer=None) -> str | None:
        """Why the lane with this linear id cannot arrive now, or None when it may still come. A lane inside
        a ``syncthreads`` that ``observer`` (the waiting lane) has already passed is being released: it may."""
        if linear in self.exited:
            return "exited"
        thread = self.threads.get(linear)
        if thread is None:
            return None  # not started yet
        if not thread.is_alive() and thread.ident is not None:
            return "exited"
        if getattr(thread, "syncthreads_blocked", False) and \
                getattr(thread, "_barriers_entered", 0) > getattr(observer, "_barriers_entered", 0):
            return "waits at syncthreads"
        return None


def _block_of(thread, block_dim) -> _Block:
    """The state of the thread's block, kept on its BlockManager (or on the launch's fake cuda module): it goes
    when the launch does."""
    owner = getattr(thread, "_manager", None)
    if owner is None:
        from numba.cuda.simulator import kernel

        owner = kernel._get_kernel_context()
    block_idx = tuple(thread.blockIdx)
    with _STATES_LOCK:
        blocks = owner.__dict__.setdefault("_tilegrad_warp_blocks", {})
        state = blocks.get(block_idx)
        if state is None:
            state = blocks[block_idx] = _Block(block_dim, block_idx)
        return state


def _lane(thread=None):
    """(block state, warp, lane, linear id) of the calling simulator thread."""
    thread = thread or threading.current_thread()
    block_dim, (x, y, z) = _dims(thread)
    linear = x + y * block_dim[0] + z * block_dim[0] * block_dim[1]
    block = _block_of(thread, block_dim)
    return block, block.warps[linear // WARP_SIZE], linear % WARP_SIZE, linear


def _thread_started(thread) -> None:
    try:
        block, warp, _, linear = _lane(thread)
    except Exception:  # noqa: BLE001 (not a kernel thread we understand: the watchdog covers it)
        return
    with block.lock:
        block.threads[linear] = thread
        warp.progress += 1
        warp.changed.notify_all()


def _thread_finished(thread) -> None:
    try:
        block, warp, _, linear = _lane(thread)
    except Exception:  # noqa: BLE001
        return
    with block.lock:
        block.exited.add(linear)
        warp.progress += 1
        warp.changed.notify_all()


# ------------------------------------------------------------------------------------------------
# The rendezvous
# ------------------------------------------------------------------------------------------------


def _undefined(value, kind, lane, source, mask):
    if UNDEFINED_READS == "error":
        raise WarpSyncError(f"{kind}(mask=0x{mask:08x}): lane {lane} reads lane {source}, which takes no part "
                            "(outside the mask or past the warp's last thread): undefined on a GPU")
    if isinstance(value, (float, np.floating)):
        return type(value)(math.nan)
    try:
        return type(value)(POISON_INT)
    except (OverflowError, ValueError, TypeError):
        return type(value)(0xDEADBEEF)


def _shuffle_source(kind, lane, b):
    b &= WARP_SIZE - 1  # PTX shfl.sync reads b[4:0]
    if kind == "shfl_sync":
        return b
    if kind == "shfl_up_sync":
        return lane - b if lane - b >= 0 else lane
    if kind == "shfl_down_sync":
        return lane + b if lane + b < WARP_SIZE else lane
    return lane ^ b  # shfl_xor_sync


def _complete(r: _Rendezvous) -> None:
    """Every expected lane has arrived: compute each lane's result."""
    arrived = r.arrivals
    if r.kind == "syncwarp":
        r.results = dict.fromkeys(arrived)
    elif r.kind.startswith("shfl"):
        for lane, ((value, b), _) in arrived.items():
            source = _shuffle_source(r.kind, lane, int(b))
            if source in arrived:
                r.results[lane] = arrived[source][0][0]
            else:
                r.results[lane] = _undefined(value, r.kind, lane, source, r.mask)
    elif r.kind in ("ballot_sync", "all_sync", "any_sync", "eq_sync"):
        votes = [bool(value) for value, _ in arrived.values()]
        bits = sum(1 << lane for lane, (value, _) in arrived.items() if value)
        result = {"ballot_sync": _int32(bits), "all_sync": all(votes), "any_sync": any(votes),
                  "eq_sync": all(votes) or not any(votes)}[r.kind]
        r.results = dict.fromkeys(arrived, result)
    elif r.kind == "match_any_sync":
        for lane, (value, _) in arrived.items():
            r.results[lane] = _int32(sum(1 << other for other, (v, _) in arrived.items() if v == value))
    else:  # match_all_sync
        values = [value for value, _ in arrived.values()]
        same = all(v == values[0] for v in values)
        result = (_int32(r.mask if same else 0), same)
        r.results = dict.fromkeys(arrived, result)
    r.done = True


def _stuck(block: _Block, warp: _Warp, r: _Rendezvous) -> str | None:
    """Why ``r`` can never complete, or None while it still may."""
    base = warp.warp * WARP_SIZE
    missing = sorted(r.expected - r.arrivals.keys())
    if not missing:
        return None
    observer = threading.current_thread()
    reasons = {lane: block.where(base + lane, observer) for lane in missing}
    if not any(reasons.values()):
        # every missing lane may still come, unless each waits at another warp primitive and no lane of the
        # warp is left running to complete those
        if not all(lane in warp.waiting for lane in missing):
            return None
        if any(lane not in warp.waiting and block.where(base + lane, observer) is None for lane in range(warp.size)):
            return None
    for lane in missing:
        if reasons[lane] is None and lane in warp.waiting:
            reasons[lane] = f"waits at {warp.waiting[lane].describe()}"
    groups: dict[str, list[int]] = {}
    for lane, reason in reasons.items():
        groups.setdefault(reason or "not arrived yet", []).append(lane)
    why = "; ".join(f"{_lanes_named(lanes)}: {reason}"
                    for reason, lanes in groups.items())
    return (f"{r.describe()}: {_lanes_named(missing)} named in the mask never arrive "
            f"(warp {warp.warp} of block {block.block_idx}; {why}). Every lane named in a warp primitive's "
            "mask must reach the same primitive with the same mask: keep them alive to the call, or pass the "
            "mask of the lanes that do (e.g. from ballot_sync before they part)")


def _rendezvous(kind: str, mask, argument=None):
    thread = threading.current_thread()
    block, warp, lane, _ = _lane(thread)
    mask = int(mask) & FULL_MASK
    site = _call_site(1)
    if not mask >> lane & 1:
        raise WarpSyncError(f"{kind}(mask=0x{mask:08x}) at {os.path.basename(site[0])}:{site[1]}: the mask must "
                            f"name the calling lane {lane}")
    expected = {i for i in range(warp.size) if mask >> i & 1}
    with block.lock:
        block.threads.setdefault(warp.warp * WARP_SIZE + lane, thread)
        r = next((o for o in warp.open if o.kind == kind and o.mask == mask and lane not in o.arrivals), None)
        if r is None:
            r = _Rendezvous(kind, mask, expected, site)
            warp.open.append(r)
        r.arrivals[lane] = (argument, site)
        warp.progress += 1
        if r.arrivals.keys() >= r.expected:
            try:
                _complete(r)
            except WarpSyncError as error:  # an undefined read, with UNDEFINED_READS = "error": every lane raises
                r.error = str(error)
            warp.open.remove(r)
            for other in r.arrivals:
                warp.waiting.pop(other, None)
            warp.changed.notify_all()
        else:
            warp.waiting[lane] = r
            warp.changed.notify_all()  # a lane that arrives can make another wait hopeless: let them look
            seen, since = warp.progress, _now()
            try:
                while not r.done and r.error is None:
                    if getattr(thread, "abort", False):
                        raise RuntimeError(f"{kind}: the launch was aborted (another thread raised)")
                    problem = _stuck(block, warp, r)
                    if problem is None and _now() - since > WATCHDOG_S:
                        problem = (f"{r.describe()}: {_lanes_named(sorted(r.expected - r.arrivals.keys()))} "
                                   f"named in the mask did not arrive within {WATCHDOG_S:g} s (watchdog; warp "
                                   f"{warp.warp} of block {block.block_idx})")
                    if problem is not None:
                        r.error = problem
                        if r in warp.open:
                            warp.open.remove(r)
                        for other in r.arrivals:
                            warp.waiting.pop(other, None)
                        warp.changed.notify_all()
                        break
                    warp.changed.wait(_POLL_S)
                    if warp.progress != seen:
                        seen, since = warp.progress, _now()
            finally:
                if warp.waiting.get(lane) is r:
                    del warp.waiting[lane]
        if r.error is not None:
            raise WarpSyncError(r.error)
        result = r.results[lane]
    for listener in list(WARP_SYNC_LISTENERS):
        listener(mask, site[0], site[1])
    return result


def _now() -> float:
    import time

    return time.monotonic()


# ------------------------------------------------------------------------------------------------
# The primitives, with numba-cuda's signatures
# ------------------------------------------------------------------------------------------------


def syncwarp(mask=FULL_MASK):
    """Wait until every lane named in ``mask`` has reached a ``syncwarp`` with the same mask."""
    _rendezvous("syncwarp", mask)


def shfl_sync(mask, value, src_lane):
    """``value`` as held by lane ``src_lane % 32``."""
    return _rendezvous("shfl_sync", mask, (value, src_lane))


def shfl_up_sync(mask, value, delta):
    """``value`` as held by lane ``lane - delta``; lanes below ``delta`` keep their own."""
    return _rendezvous("shfl_up_sync", mask, (value, delta))


def shfl_down_sync(mask, value, delta):
    """``value`` as held by lane ``lane + delta``; lanes past 31 - ``delta`` keep their own."""
    return _rendezvous("shfl_down_sync", mask, (value, delta))


def shfl_xor_sync(mask, value, lane_mask):
    """``value`` as held by lane ``lane ^ lane_mask`` (the butterfly of a tree reduction)."""
    return _rendezvous("shfl_xor_sync", mask, (value, lane_mask))


def ballot_sync(mask, predicate):
    """An int32 whose bit i is set when lane i (in the mask) has a true ``predicate``."""
    return _rendezvous("ballot_sync", mask, predicate)


def all_sync(mask, predicate):
    """True when ``predicate`` holds in every lane of the mask."""
    return _rendezvous("all_sync", mask, predicate)


def any_sync(mask, predicate):
    """True when ``predicate`` holds in some lane of the mask."""
    return _rendezvous("any_sync", mask, predicate)


def eq_sync(mask, predicate):
    """True when ``predicate`` is the same (all true or all false) in every lane of the mask."""
    return _rendezvous("eq_sync", mask, predicate)


def match_any_sync(mask, value):
    """An int32 mask of the lanes of ``mask`` whose ``value`` equals the caller's."""
    return _rendezvous("match_any_sync", mask, value)


def match_all_sync(mask, value):
    """(mask, True) when every lane of ``mask`` holds the same ``value``, else (0, False)."""
    return _rendezvous("match_all_sync", mask, value)


def activemask():
    """A uint32 of the lanes of the caller's warp that are still running (not exited)."""
    block, warp, _, _ = _lane()
    base = warp.warp * WARP_SIZE
    with block.lock:
        bits = sum(1 << lane for lane in range(warp.size) if block.where(base + lane) != "exited")
    return np.uint32(bits)


def lanemask_lt():
    """A uint32 with the bits of the lanes below the caller's."""
    _, _, lane, _ = _lane()
    return np.uint32((1 << lane) - 1)


def popc(value):
    """Set bits of ``value`` in its own width (the simulator's popc counts a negative int32 wrongly)."""
    bits = np.dtype(value.dtype).itemsize * 8 if isinstance(value, np.integer) else 64
    return bin(int(value) & ((1 << bits) - 1)).count("1")


PRIMITIVES = {f.__name__: f for f in (syncwarp, shfl_sync, shfl_up_sync, shfl_down_sync, shfl_xor_sync,
                                      ballot_sync, all_sync, any_sync, eq_sync, match_any_sync, match_all_sync,
                                      activemask, lanemask_lt, popc)}


def install() -> bool:
    """Put the warp primitives onto the simulator's fake ``cuda`` module (every launch's ``cuda.*`` inside a
    kernel) and let the simulator's threads report their start, exit and barriers. Idempotent; False (and nothing
    done) when the simulator is off."""
    import numba

    if not numba.config.ENABLE_CUDASIM:
        return False
    if _INSTALLED[0]:
        return True
    from numba.cuda.simulator import kernel, kernelapi

    for name, fn in PRIMITIVES.items():
        setattr(kernelapi.FakeCUDAModule, name, staticmethod(fn))
    original_run = kernel.BlockThread.run
    if not getattr(original_run, "_tilegrad_warp", False):
        def run(self):
            _thread_started(self)
            try:
                original_run(self)
            finally:
                _thread_finished(self)

        run._tilegrad_warp = True
        kernel.BlockThread.run = run
    original_syncthreads = kernel.BlockThread.syncthreads
    if not getattr(original_syncthreads, "_tilegrad_warp", False):
        def syncthreads(self):
            # counted, so a lane waiting at a warp primitive can tell a barrier it has passed (the others are
            # being released from it) from one it has not reached (they wait for it: never released)
            self._barriers_entered = getattr(self, "_barriers_entered", 0) + 1
            original_syncthreads(self)

        syncthreads._tilegrad_warp = True
        kernel.BlockThread.syncthreads = syncthreads
    _INSTALLED[0] = True
    return True
