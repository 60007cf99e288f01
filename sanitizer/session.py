"""``sanitize()``: patch Numba's CUDA simulator so every launch inside runs watched, with CUDA's semantics.

While at least one ``sanitize`` block is open, ``FakeCUDAKernel.__call__`` runs a launch here instead of in
the simulator's ``BlockManager``: blocks in the chosen order, each block's threads started in that order,
fresh poisoned shared memory per block, a barrier that records each thread's call site and is released
without busy-polling, and a watchdog. ``cuda.device_array`` hands out poisoned memory whose elements count
as written only once the host or a kernel writes them. Leaving the outermost block restores everything.
"""

from __future__ import annotations

import functools
import random
import sys
import threading
import time
from contextlib import contextmanager

import numpy as np

from . import shadow
from .analysis import LaunchState
from .report import SEVERITIES, Report

TOOLS = ("race", "sync", "bounds", "init", "memory")
SCHEDULES = ("in-order", "reverse", "random")
MAX_FINDINGS_PER_LAUNCH = 64

_ACTIVE: list = []  # the open sanitize() sessions, innermost last
_SAVED: dict = {}  # (owner, attribute) -> the original, while patched
_PATCH_LOCK = threading.RLock()


def parse_tools(tools) -> tuple:
    """'all', 'race,sync' or an iterable of names -> a tuple of tool names (a bad name is a ValueError)."""
    if tools is None or tools == "all":
        return TOOLS
    names = [t.strip() for t in tools.split(",")] if isinstance(tools, str) else list(tools)
    if "all" in names:
        return TOOLS
    unknown = [t for t in names if t not in TOOLS]
    if unknown or not names:
        raise ValueError(f"tools: expected 'all' or names from {', '.join(TOOLS)}, got {tools!r}")
    return tuple(dict.fromkeys(names))


class Session:
    def __init__(self, tools, schedule, seed, print_level, watchdog_s, max_findings):
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule: expected one of {', '.join(SCHEDULES)}, got {schedule!r}")
        if print_level not in SEVERITIES:
            raise ValueError(f"print_level: expected one of {', '.join(SEVERITIES)}, got {print_level!r}")
        self.tools = parse_tools(tools)
        self.schedule, self.seed = schedule, seed
        self.random = random.Random(seed)
        self.watchdog_s = float(watchdog_s)
        self.max_findings = int(max_findings)
        self.report = Report(self.tools, schedule, seed, print_level)

    def order(self, points: list) -> list:
        if self.schedule == "reverse":
            return points[::-1]
        if self.schedule == "random":
            points = list(points)
            self.random.shuffle(points)
        return points


@contextmanager
def sanitize(tools="all", schedule: str = "in-order", seed: int = 0, print_level: str = "warning",
             watchdog_s: float = 30.0, max_findings: int = MAX_FINDINGS_PER_LAUNCH):
    """Watch every simulator launch inside the block; yields the ``Report`` (filled as launches run).

    ``tools``: 'all' or some of race, sync, bounds, init, memory (a comma string or a list). ``schedule``:
    the order blocks run and each block's threads start (in-order, reverse, random with ``seed``); the
    verdicts do not depend on it, a racy kernel's answer may. ``print_level``: the default of
    ``report.text()`` (info shows same-value writes too).
    ``watchdog_s``: a block in which no thread reaches a barrier or exits for that long is ended and
    reported. ``max_findings``: distinct findings kept per launch (the rest are counted). Nests: an inner
    block's settings govern its launches, and every open report records them."""
    session = Session(tools, schedule, seed, print_level, watchdog_s, max_findings)
    if not available():
        raise RuntimeError("sanitize() watches Numba's CUDA simulator, which is off in this process: set "
                           "NUMBA_ENABLE_CUDASIM=1 before numba is imported (python cli.py sanitize SCRIPT does)")
    with _PATCH_LOCK:
        if not _ACTIVE:
            _install()
        _ACTIVE.append(session)
    try:
        yield session.report
    finally:
        with _PATCH_LOCK:
            _ACTIVE.remove(session)
            if not _ACTIVE:
                _uninstall()


def available() -> bool:
    """True when this process runs CUDA kernels in Numba's simulator (what the sanitizer watches)."""
    import numba

    return bool(numba.config.ENABLE_CUDASIM)


def active() -> bool:
    """True inside a ``sanitize()`` block."""
    return bool(_ACTIVE)


# ---- patching the simulator ----------------------------------------------------------------------------------
def _simulator_modules():
    from numba.cuda.simulator import kernel as sim_kernel
    from numba.cuda.simulator.cudadrv import devicearray as sim_devicearray

    return sim_kernel, sim_devicearray


def _patch(owner, name, value):
    _SAVED[(owner, name)] = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    setattr(owner, name, value)


def _install():
    sim_kernel, sim_devicearray = _simulator_modules()
    fake_array = sim_devicearray.FakeCUDAArray
    original_device_array = sim_devicearray.device_array
    _patch(sim_kernel.FakeCUDAKernel, "__call__", _sanitized_call)
    _patch(fake_array, "__setitem__", _host_setitem)
    _patch(fake_array, "copy_to_device", _host_copy_to_device)
    tracked_device_array = _make_device_array(original_device_array)
    # every module that holds numba's device_array (numba.cuda, the simulator's namespaces) gets ours
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("numba") and \
                getattr(module, "device_array", None) is original_device_array:
            _patch(module, "device_array", tracked_device_array)


    warp = _warp_module()
    if warp is not None:
        warp.install()  # the warp primitives, for scripts that do not import the kernel layer
        if _warp_rendezvous not in warp.WARP_SYNC_LISTENERS:
            warp.WARP_SYNC_LISTENERS.append(_warp_rendezvous)


def _uninstall():
    for (owner, name), value in reversed(list(_SAVED.items())):
        setattr(owner, name, value)
    _SAVED.clear()
    warp = _warp_module()
    if warp is not None and _warp_rendezvous in warp.WARP_SYNC_LISTENERS:
        warp.WARP_SYNC_LISTENERS.remove(_warp_rendezvous)


def _warp_module():
    """``sanitizer.warp`` (the warp primitives) when this checkout has it, else None."""
    try:
        from . import warp
    except ImportError:
        return None
    return warp if hasattr(warp, "WARP_SYNC_LISTENERS") else None


def _warp_rendezvous(mask, file, line):
    """A completed syncwarp or shuffle: this lane's later accesses are ordered after its warp-mates' earlier
    ones (a warp-level barrier for the race check)."""
    thread = threading.current_thread()
    if getattr(thread, "_sanitized", False):
        thread._step += shadow.WARP_EPOCH


def _original(owner, name):
    return _SAVED.get((owner, name))


def _make_device_array(original):
    @functools.wraps(original)
    def device_array(*args, **kwargs):
        array = original(*args, **kwargs)
        session = _ACTIVE[-1] if _ACTIVE else None
        if session is not None and "init" in session.tools:
            shadow.poison(array._ary)
            shadow.allocation(shadow.root_of(array._ary), tracked_init=True)
        return array

    return device_array


def _host_setitem(self, idx, val):
    _, sim_devicearray = _simulator_modules()
    result = _original(sim_devicearray.FakeCUDAArray, "__setitem__")(self, idx, val)
    shadow.mark_host_write(self._ary, idx)
    return result


def _host_copy_to_device(self, ary, stream=0):
    _, sim_devicearray = _simulator_modules()
    result = _original(sim_devicearray.FakeCUDAArray, "copy_to_device")(self, ary, stream)
    shadow.mark_host_write(self._ary)
    return result


# ---- one launch ------------------------------------------------------------------------------------------------
def _sanitized_call(self, *args):
    sim_kernel, _ = _simulator_modules()
    if self._device or sim_kernel._kernel_context or not _ACTIVE:
        return _original(sim_kernel.FakeCUDAKernel, "__call__")(self, *args)
    return _run_launch(_ACTIVE[-1], self, args)


def _run_launch(session, kernel, args):
    from numba.cuda.errors import normalize_kernel_dimensions
    from numba.cuda.simulator.args import ArgHint, InOut
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
    from numba.cuda.simulator.kernelapi import FakeCUDAModule, swapped_cuda_module

    sim_kernel, _ = _simulator_modules()
    grid_dim, block_dim = normalize_kernel_dimensions(kernel.grid_dim, kernel.block_dim)
    code = kernel.fn.__code__
    params = code.co_varnames[:code.co_argcount]
    state = LaunchState(kernel.fn.__name__, grid_dim, block_dim, session.tools, session.max_findings)
    module = FakeCUDAModule(grid_dim, block_dim, kernel.dynshared_size)
    module._local = shadow.SanitizedLocal(state)
    module._atomic = shadow.SanitizedAtomic(module._atomic)
    retr = []

    def fake_arg(position, arg):
        _, arg = functools.reduce(lambda ty_val, ext: ext.prepare_args(*ty_val, stream=0, retr=retr),
                                  kernel.extensions, (None, arg))
        if isinstance(arg, np.ndarray) and arg.ndim > 0:
            arg = InOut(arg).to_device(retr)
        elif isinstance(arg, ArgHint):
            arg = arg.to_device(retr)
        elif isinstance(arg, np.void):
            arg = FakeCUDAArray(arg)
        if isinstance(arg, FakeCUDAArray) and isinstance(arg._ary, np.ndarray) and arg._ary.ndim > 0:
            ary = arg._ary
            root = shadow.root_of(ary)
            found = shadow.allocation(root)
            offset = shadow._data_pointer(ary) - shadow._data_pointer(root)
            name = params[position] if position < len(params) else f"arg{position}"
            tracked = shadow.TrackedArray(ary, name, "global", found.address + offset,
                                          found.initialized if state.init else None, offset, state)
            state.name_allocation(found.address + offset, tracked)
            return tracked
        if isinstance(arg, FakeCUDAArray):
            return sim_kernel.FakeWithinKernelCUDAArray(arg)
        return arg

    fake_args = [fake_arg(i, a) for i, a in enumerate(args)]
    blocks = session.order(list(np.ndindex(*grid_dim)))
    threads = list(np.ndindex(*block_dim))
    gx, gy, _ = grid_dim
    failure = None
    try:
        with sim_kernel._push_kernel_context(module):
            with swapped_cuda_module(kernel.fn, module):
                for grid_point in blocks:
                    module._shared = shadow.SanitizedShared(state, kernel.dynshared_size)
                    linear = grid_point[0] + gx * (grid_point[1] + gy * grid_point[2])
                    runner = BlockRunner(session, state, kernel.fn, fake_args, grid_dim, block_dim,
                                         grid_point, linear, module._shared)
                    runner.run(session.order(threads))
                    if runner.failure is not None:
                        failure = runner.failure
                        break
                    if state.ended_early:
                        break
        if failure is not None and type(failure[0]).__name__ == "WarpSyncError" and state.sync:
            _warp_sync_finding(state, failure)  # synccheck's "invalid __syncwarp mask": a finding, not a crash
            failure = None
    finally:
        launch = state.finish()
        for report in {id(s.report): s.report for s in _ACTIVE}.values():
            report.launches.append(launch)
    if failure is not None:
        raise failure[0].with_traceback(failure[1])
    for write_back in retr:
        write_back()


def _warp_sync_finding(state, failure):
    """A warp primitive whose mask names lanes that cannot arrive (``sanitizer.warp`` raised): reported as
    barrier divergence at the kernel's line, and the launch ended."""
    import traceback

    error, trace = failure
    file, lines = "?", []
    for frame, line in traceback.walk_tb(trace):
        outside = shadow.kernel_frame(frame)
        if outside is frame:
            file, lines = shadow.split_site(shadow.site_of(frame))[0], [line]
    state.barrier_divergence(lines, file, str(error).splitlines()[0], 1)
    state.ended_early = True


def _block_thread_class():
    sim_kernel, _ = _simulator_modules()

    class SanitizedThread(sim_kernel.BlockThread):
        """A simulated CUDA thread whose barrier records its call site and never busy-polls."""

        def __init__(self, target, runner, block_idx, thread_idx):
            super().__init__(target, runner, block_idx, thread_idx, False)
            self._log = runner.log
            self._step = self.thread_id << shadow.TID_SHIFT
            self._waiting_at = None
            self._sanitized = True

        def run(self):
            runner = self._manager
            warp = _warp_module()
            if warp is not None and hasattr(warp, "_thread_started"):
                warp._thread_started(self)  # the warp primitives track which lanes run and which exited
            try:
                self._target()
            except shadow.Abort:
                pass
            except Exception as error:  # noqa: BLE001 (the launch re-raises it, as the simulator does)
                message = f"tid={list(self.threadIdx)} ctaid={list(self.blockIdx)}"
                if str(error):
                    message += f": {error}"
                try:
                    wrapped = type(error)(message)
                except Exception:  # noqa: BLE001 (an exception type that takes other arguments)
                    wrapped = error
                self.exception = (wrapped, sys.exc_info()[2])
            finally:
                runner.thread_exited(self)
                if warp is not None and hasattr(warp, "_thread_finished"):
                    warp._thread_finished(self)

        def syncthreads(self):
            frame = shadow.kernel_frame(sys._getframe(1))
            site = shadow.site_of(frame) if frame is not None else 0
            self._manager.arrive(self, site)

    return SanitizedThread


_THREAD_CLASS = []


class BlockRunner:
    """One block: starts its threads, releases barriers, analyses each epoch, ends the block on divergence
    or when the watchdog sees no progress."""

    def __init__(self, session, state, fn, args, grid_dim, block_dim, grid_point, linear, shared):
        self.session, self.state, self.fn, self.args = session, state, fn, args
        self._grid_dim, self._block_dim = grid_dim, block_dim
        self.grid_point, self.linear = grid_point, linear
        self.block_text = str(tuple(int(v) for v in grid_point))
        self.shared = shared
        self.block_state = np.zeros(block_dim, dtype=np.bool_)  # for syncthreads_count/and/or
        self.cond = threading.Condition(threading.Lock())
        self.log: list = []
        self.live: set = set()
        self.waiting: dict = {}
        self.exited_in_epoch: list = []
        self.epoch = 0
        self.generation = 0
        self.progress = 0
        self.aborted = False
        self.failure = None
        self.block_written, self.block_read, self.block_atomic = {}, {}, {}
        self.global_written: set = set()

    def run(self, thread_points):
        if not _THREAD_CLASS:
            _THREAD_CLASS.append(_block_thread_class())
        cls = _THREAD_CLASS[0]
        fn, args = self.fn, self.args
        threads = [cls(lambda: fn(*args), self, self.grid_point, point) for point in thread_points]
        self.threads = threads
        with self.cond:
            self.live = set(threads)
        for t in threads:
            t.start()
        watchdog = self.session.watchdog_s
        with self.cond:
            last_progress, since = self.progress, time.monotonic()
            while self.live and not self.aborted:
                self.cond.wait(timeout=min(0.25, watchdog))
                if self.failure is not None:
                    break
                if self.progress != last_progress:
                    last_progress, since = self.progress, time.monotonic()
                elif time.monotonic() - since > watchdog:
                    self._watchdog()
                    break
            if self.aborted or self.failure is not None:
                self._abort()
            else:
                self._end_epoch()
        if self.failure is None and not self.aborted:
            for t in threads:
                t.join()
        self.state.end_block(self)

    # called by the kernel threads --------------------------------------------------------------------------
    def arrive(self, thread, site):
        with self.cond:
            if thread.abort:
                raise shadow.Abort
            self.waiting[thread] = site
            thread._waiting_at = site
            thread.syncthreads_blocked = True  # what the warp primitives look at to see a lane that cannot come
            self.progress += 1
            if len(self.waiting) == len(self.live):
                self._release()
            else:
                generation = self.generation
                while self.generation == generation and not thread.abort:
                    self.cond.wait()
            thread.syncthreads_blocked = False
            if thread.abort:
                raise shadow.Abort

    def thread_exited(self, thread):
        with self.cond:
            self.live.discard(thread)
            self.progress += 1
            if thread.exception is not None and self.failure is None and not self.aborted:
                self.failure = thread.exception  # (after an abort, a lane's complaint about it is no news)
            elif not thread.abort:
                self.exited_in_epoch.append(thread)
                if self.waiting and len(self.waiting) == len(self.live) and not self.aborted:
                    self._release()
            self.cond.notify_all()

    # with self.cond held ----------------------------------------------------------------------------------------
    def _release(self):
        """Every live thread waits: check the barrier (one call site, nobody gone), analyse, release."""
        sites = sorted(set(self.waiting.values()))
        if self.state.sync and (len(sites) > 1 or self.exited_in_epoch):
            self._divergence(sites)
            return
        self._end_epoch()
        for t in self.waiting:
            t._step = t.thread_id << shadow.TID_SHIFT
            t._waiting_at = None
        self.waiting.clear()
        self.epoch += 1
        self.generation += 1
        self.cond.notify_all()

    def _end_epoch(self):
        entries = self.log[:]
        self.log.clear()
        self.exited_in_epoch = []
        self.state.analyse_epoch(self, entries)

    def _divergence(self, sites):
        state = self.state
        file, _ = shadow.split_site(sites[0]) if sites and sites[0] else ("?", 0)
        lines = [shadow.split_site(s)[1] for s in sites if s]
        by_site = {}
        for t, s in self.waiting.items():
            by_site.setdefault(s, []).append(t)
        parts = [f"{len(ts)} thread{'s' * (len(ts) != 1)} (e.g. {_coords(ts)}) wait at the syncthreads at line "
                 f"{shadow.split_site(s)[1]}" for s, ts in sorted(by_site.items())]
        if self.exited_in_epoch:
            gone = self.exited_in_epoch
            parts.append(f"{len(gone)} thread{'s' * (len(gone) != 1)} (e.g. {_coords(gone)}) returned without "
                         "reaching it")
        example = f"block {self.block_text}: " + "; ".join(parts) + \
            " (on a GPU this hangs or corrupts: every thread must reach the same barrier)"
        self._end_epoch()
        state.barrier_divergence(lines, file, example, len(self.waiting) + len(self.exited_in_epoch))
        state.ended_early = True
        self._abort()

    def _watchdog(self):
        frames = sys._current_frames()
        running = [t for t in self.live if t not in self.waiting]
        lines, file = [], "?"
        detail = ""
        for t in sorted(running, key=lambda t: t.thread_id)[:1]:
            frame = shadow.kernel_frame(frames.get(t.ident))
            if frame is not None:
                file, line = shadow.split_site(shadow.site_of(frame))
                lines.append(line)
                detail = f"; thread {_coords([t])} is still running at line {line}"
        for s in sorted(set(self.waiting.values())):
            if s:
                file, line = shadow.split_site(s)
                lines.append(line)
        example = (f"block {self.block_text}: no thread reached a barrier or exited for "
                   f"{self.session.watchdog_s:g} s ({len(self.waiting)} waiting at a barrier, {len(running)} "
                   f"running{detail}); the watchdog ended the launch (a spin-wait on another block or "
                   "thread never ends on a GPU either: blocks are not ordered)")
        self.state.barrier_divergence(sorted(set(lines)), file, example, len(self.live))
        self.state.ended_early = True
        self.aborted = True

    def _abort(self):
        self.aborted = True
        for t in self.threads:
            t.abort = True
        self.cond.notify_all()


def _coords(threads) -> str:
    first = sorted(threads, key=lambda t: t.thread_id)[0]
    return str(tuple(int(v) for v in first.threadIdx))
