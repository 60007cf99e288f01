"""Capturing the device's stream into a CUDA graph, and replaying it: every launch of a training step recorded once,
then replayed with one ``cuGraphLaunch`` (engine/cuda_graph.py's ``CapturedStep``).

On a GPU, ``begin_capture``/``end_capture`` are the driver's stream capture; in Numba's simulator, a recording of
every launch with its arguments by value, which ``CapturedGraph.launch`` replays (the semantics of a CUDA graph).
While a capture is in progress, every copy and launch must go through the recorder (a ``@gpu_kernel`` launch,
``record_or_run``); anything else raises one error (the guards below). The stream itself, and the kernel registry
whose launches land here, are in ``launch.py``.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from .launch import _CAPTURE, SIMULATOR, _DeviceArray, _is_no_stream, device_stream, stream_handle


def capturing() -> bool:
    """True while a stream's launches are being captured into a graph: nothing may allocate then, and host
    code must not read the device (``Device.empty``/``zeros`` and ``scratch`` raise)."""
    return _CAPTURE[0] is not None


def check_not_capturing(what: str) -> None:
    """Raise when ``what`` (an allocation, a host copy) is attempted inside a graph capture."""
    if _CAPTURE[0] is not None:
        raise RuntimeError(f"{what} during a CUDA graph capture: a captured step must allocate nothing and read "
                           "nothing back; run one step eagerly first (it allocates every buffer), then capture")


class _RecordedLaunch:
    """A configured kernel inside a capture: calling it records the launch (kernel, grid, block and its
    arguments *by value*: scalars as they are now, arrays as the buffers they point to). In the simulator
    the recording is the graph; on a GPU the driver captures the launch itself, and the recording keeps every
    buffer the graph uses alive for as long as the graph."""

    __slots__ = ("kernel", "configured", "config")

    def __init__(self, kernel, configured, config):
        self.kernel, self.configured, self.config = kernel, configured, config

    def __call__(self, *args):
        capture = _CAPTURE[0]
        configured = self.configured
        if SIMULATOR:  # its kernel[config] sets the grid on the shared kernel object: set it again at each replay
            compiled, config = self.kernel.compiled, self.config
            configured = lambda *a: compiled[config](*a)  # noqa: E731
        args = capture.record(self.kernel.name, configured, self.config, args)
        if not capture.emulated:
            self.configured(*args)  # captured by the driver, not run


class CapturedGraph:
    """A captured sequence of launches, replayed with ``launch()``. ``launches`` lists (kernel name, grid,
    block) as captured; ``emulated`` is True in the simulator, where replaying runs the recorded launches one
    by one with the recorded arguments (the semantics of a CUDA graph: arguments by value, buffers fixed)."""

    def __init__(self, records, emulated: bool, stream, graph_exec=None, graph=None):
        self.records, self.emulated, self.stream = records, emulated, stream
        self._graph_exec, self._graph = graph_exec, graph

    @property
    def launches(self) -> list[tuple]:
        return [(name, config[0], config[1]) for name, _, config, _ in self.records]

    def launch(self) -> None:
        """Replay the graph on the stream it was captured on (asynchronous on a GPU)."""
        if self.emulated:
            for _, fn, _, args in self.records:
                fn(*args)
            return
        from cuda.bindings import driver

        _check_driver(driver.cuGraphLaunch(self._graph_exec, stream_handle(self.stream)), "cuGraphLaunch")

    def __del__(self):
        if getattr(self, "_graph_exec", None) is not None:
            try:
                from cuda.bindings import driver

                driver.cuGraphExecDestroy(self._graph_exec)
                driver.cuGraphDestroy(self._graph)
            except Exception:  # noqa: BLE001 (interpreter shutdown: the context is gone anyway)
                pass


def _check_driver(result, what: str):
    err, *rest = result if isinstance(result, tuple) else (result,)
    if not err == 0:  # as shared/anchors/gpu_graph_probe.py compares it
        raise RuntimeError(f"{what} failed: {err}")
    return rest[0] if len(rest) == 1 else rest


class _Capture:
    def __init__(self, stream):
        self.stream, self.records, self.emulated = stream, [], SIMULATOR
        self.deferred = None  # numba's deferred-free context, held over a real capture

    def record(self, name, fn, config, args) -> tuple:
        """Keep one launch (or stream operation) and return the arguments it runs with."""
        args = tuple(args)
        for arg in args:  # a launch given a host array copies it over and back, outside any graph
            if isinstance(arg, np.ndarray) and arg.ndim > 0:
                raise RuntimeError(f"CUDA graph capture: {name} given a host (NumPy) array as an argument: the launch "
                                   "would copy it to the GPU and back, which no graph replays; pass device arrays")
        self.records.append((name, fn, config, args))
        return args


# Guards while a capture is in progress: every copy and launch must go through the recorder (``record_or_run``, a
# ``@gpu_kernel`` launch); anything else (``arr.copy_to_device(h)`` on stream 0, ``cuda.to_device``, a read back,
# a bare ``cuda.jit`` launch in the simulator) raises one error instead of running once, outside the graph, and
# never again. On a GPU the driver refuses stream-0 work during a capture too; the guard names the culprit first.
_ISSUING = [False]  # True while the recorder itself issues a copy (on a GPU, inside the capture)
_GUARDS: list = []  # (owner, attribute, original, owned): what the guards replaced, restored at the capture's end
_PINNED: dict = {}  # id(staging array) -> weakref to it: every host array Device.pinned_empty made


def register_pinned(array) -> None:
    """Remember ``array`` as page-locked staging (``Device.pinned_empty``): the only host source a captured copy
    may read, since the graph re-reads it at every replay."""
    import weakref

    key = id(array)
    _PINNED[key] = weakref.ref(array, lambda _ref, key=key: _PINNED.pop(key, None))


def is_pinned(array) -> bool:
    """True when ``array`` is (a view of) a staging array from ``Device.pinned_empty``."""
    while isinstance(array, np.ndarray):
        ref = _PINNED.get(id(array))
        if ref is not None and ref() is array:
            return True
        array = array.base
    return False


def check_pinned_source(what: str, host) -> None:
    """Inside a capture, a host-to-device copy is recorded as a graph node that reads ``host`` again at every
    replay: ``host`` must be pinned staging (a pageable array is copied once, or not at all)."""
    if _CAPTURE[0] is not None and not is_pinned(host):
        raise RuntimeError(f"CUDA graph capture: {what} from a pageable host array (a {type(host).__name__}); a "
                           "captured copy reads its source at every replay: stage it in Device.pinned_empty")


def _where(stream, capture) -> str:
    if _is_no_stream(stream):
        return "on the legacy default stream (stream 0), which invalidates a capture"
    if stream is not capture.stream:
        return "on another stream than the one being captured"
    return "outside the recorder (it would run once now, never at a replay)"


def _guard(owner, attribute: str, what: str, stream_at: int | None) -> None:
    original = getattr(owner, attribute)
    owned = attribute in getattr(owner, "__dict__", {})

    def guarded(*args, **kwargs):
        capture = _CAPTURE[0]
        if _ISSUING[0] or capture is None:
            return original(*args, **kwargs)
        if stream_at is None:
            where = "outside the recorder (it would run once now, never at a replay)"
        else:
            stream = kwargs.get("stream", args[stream_at] if len(args) > stream_at else 0)
            where = _where(stream, capture)
        raise RuntimeError(f"CUDA graph capture: {what} {where}; issue it through the device (copy_from_host from "
                           "pinned staging, a @gpu_kernel launch) or before the capture")

    _GUARDS.append((owner, attribute, original, owned))
    setattr(owner, attribute, guarded)


def _install_guards() -> None:
    _guard(_DeviceArray, "copy_to_device", "a host-to-device copy", 2)
    _guard(_DeviceArray, "copy_to_host", "a read back (device to host)", 2)
    _guard(cuda, "to_device", "cuda.to_device", 1)
    if SIMULATOR:  # on a GPU the driver records a launch on the captured stream and refuses one on stream 0
        from numba.cuda.simulator.kernel import FakeCUDAKernel

        original = FakeCUDAKernel.__call__

        def launch_guard(kernel, *args):
            if kernel._device or _ISSUING[0] or _CAPTURE[0] is None:
                return original(kernel, *args)
            raise RuntimeError(f"CUDA graph capture: an unrecorded launch of {kernel.fn.__name__} (a bare cuda.jit "
                               "kernel runs once now, never at a replay); declare it with @gpu_kernel")

        _GUARDS.append((FakeCUDAKernel, "__call__", original, True))
        FakeCUDAKernel.__call__ = launch_guard


def _remove_guards() -> None:
    while _GUARDS:
        owner, attribute, original, owned = _GUARDS.pop()
        if owned or not isinstance(owner, type):
            setattr(owner, attribute, original)
        else:
            delattr(owner, attribute)  # the method came from a base class: uncover it again


def begin_capture(stream=None) -> None:
    """Start capturing every launch on ``stream`` (default: the device's). On a GPU this is the driver's stream
    capture (``cuStreamBeginCapture``, thread-local mode); in the simulator, a recording of each launch."""
    if _CAPTURE[0] is not None:
        raise RuntimeError("a graph capture is already in progress")
    stream = device_stream() if stream is None else stream
    capture = _Capture(stream)
    if not capture.emulated:
        from cuda.bindings import driver

        # numba frees device memory lazily, in batches: no cuMemFree may land inside the capture
        capture.deferred = cuda.defer_cleanup()
        capture.deferred.__enter__()
        mode = driver.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL
        try:
            _check_driver(driver.cuStreamBeginCapture(stream_handle(stream), mode), "cuStreamBeginCapture")
        except BaseException:
            capture.deferred.__exit__(None, None, None)
            raise
    _CAPTURE[0] = capture
    _install_guards()


def _release(capture) -> None:
    if capture.deferred is not None:
        capture.deferred.__exit__(None, None, None)
        capture.deferred = None


def end_capture() -> CapturedGraph:
    """Stop the capture begun by ``begin_capture`` and return the graph, instantiated and ready to launch."""
    capture, _CAPTURE[0] = _CAPTURE[0], None
    _remove_guards()
    if capture is None:
        raise RuntimeError("end_capture without begin_capture")
    if capture.emulated:
        return CapturedGraph(capture.records, True, capture.stream)
    from cuda.bindings import driver

    try:
        graph = _check_driver(driver.cuStreamEndCapture(stream_handle(capture.stream)), "cuStreamEndCapture")
        graph_exec = _check_driver(driver.cuGraphInstantiate(graph, 0), "cuGraphInstantiate")
    finally:
        _release(capture)
    return CapturedGraph(capture.records, False, capture.stream, graph_exec, graph)


def abort_capture() -> None:
    """End a capture that failed part-way (its graph, if any, is discarded)."""
    capture, _CAPTURE[0] = _CAPTURE[0], None
    _remove_guards()
    if capture is not None and not capture.emulated:
        from cuda.bindings import driver

        try:
            result = driver.cuStreamEndCapture(stream_handle(capture.stream))
            if result[0] == 0 and result[1] is not None:
                driver.cuGraphDestroy(result[1])
        finally:
            _release(capture)


def record_or_run(name: str, fn, stream=None) -> None:
    """Run ``fn()`` (a copy, a CUDA C launch: a stream operation that is no ``@gpu_kernel`` launch); inside an
    emulated capture, record it instead, to run at each replay. On a GPU the driver captures what ``fn`` enqueues.
    ``stream``: the stream ``fn`` enqueues on, when the caller chose it; inside a capture it must be the
    captured one."""
    capture = _CAPTURE[0]
    if capture is not None and stream is not None and stream is not capture.stream:
        raise RuntimeError(f"CUDA graph capture: {name} {_where(stream, capture)}; launch it on the device's stream")
    if capture is None:
        fn()
        return
    capture.record(name, lambda: _issue(fn), (None, None, capture.stream), ())
    if not capture.emulated:
        _issue(fn)


def _issue(fn) -> None:
    """Run a recorded stream operation past the capture guards (the recorder's own copies)."""
    issuing, _ISSUING[0] = _ISSUING[0], True
    try:
        fn()
    finally:
        _ISSUING[0] = issuing
