"""GPU kernels with eager signatures, compiled on first use, and the launch shapes we pick for them.

``@gpu_kernel(signature)`` keeps the plain Python function and its one signature. On a GPU the first
launch compiles exactly that signature (no type dispatch afterwards); in Numba's simulator the same
function runs as Python threads; with no GPU at all, ``cuda_kernels.ptx`` still compiles every kernel
to PTX for sm_90 from this registry. Compiling lazily, instead of with ``@cuda.jit(sig)`` at import,
keeps the package importable on machines with no GPU and no simulator (the CPU backend needs neither).
"""

from __future__ import annotations

import math
import warnings

import numba
import numpy as np
from numba import cuda

SIMULATOR = bool(numba.config.ENABLE_CUDASIM)

# The simulator runs every thread as a Python thread (slow): launch few, and let the kernels'
# grid-stride loops cover the data. On a GPU, a few waves of blocks per SM are enough for a
# grid-stride loop to reach full bandwidth.
SIM_BLOCK_1D, SIM_MAX_BLOCKS = 32, 2
GPU_BLOCK_1D, GPU_MAX_BLOCKS = 256, 132 * 16

KERNELS: dict[str, GpuKernel] = {}
MAX_CACHED_CONFIGS = 64  # launch configurations kept per kernel (grids differ by shape; few shapes per run)

if not SIMULATOR:
    # Our launchers choose small grids on purpose for small data (grid-stride loops), so numba-cuda's
    # "grid size N will likely result in GPU under-utilization" warning fires on most launches of a small
    # model, none of them actionable.
    try:
        from numba.cuda.core import config as _cuda_config

        _cuda_config.CUDA_LOW_OCCUPANCY_WARNINGS = 0
    except ImportError:  # another numba-cuda layout: keep its default
        pass


class GpuKernel:
    """A ``@cuda.jit`` kernel with one eager signature, compiled on first launch."""

    def __init__(self, py_func, signature: str, fastmath: bool, notes: str = ""):
        self.py_func = py_func
        self.name = py_func.__name__
        self.signature = signature
        self.fastmath = fastmath
        self.notes = notes
        self._compiled = None
        self._configs = {}
        self.__doc__ = py_func.__doc__

    @property
    def compiled(self):
        if self._compiled is None:
            self._compiled = self._compile()
        return self._compiled

    def _compile(self):
        if SIMULATOR:
            return cuda.jit(self.signature)(self.py_func)
        # On a GPU, keep the compiled kernel on disk (NUMBA_CACHE_DIR, per compute capability): every later
        # process loads it instead of compiling it again in NVVM. A cache that cannot be written or read is
        # only slower, never wrong: compile without it then.
        try:
            return cuda.jit(self.signature, fastmath=self.fastmath, cache=True)(self.py_func)
        except Exception as error:  # noqa: BLE001 (any cache failure: fall back to a plain compile)
            warnings.warn(f"{self.name}: on-disk kernel cache unavailable ({error}); compiling without it",
                          RuntimeWarning, stacklevel=3)
            return cuda.jit(self.signature, fastmath=self.fastmath)(self.py_func)

    def __getitem__(self, launch_config):
        # No stream given (``kernel[grid, block]``) or stream 0, the launchers' default: the device's stream
        # (``set_stream``), so every launch the engine issues lands on the one stream it can capture.
        if len(launch_config) == 2:
            launch_config = (*launch_config, _STREAM[0])
        elif _is_no_stream(launch_config[2]) and _STREAM[0] is not None:
            launch_config = (launch_config[0], launch_config[1], _STREAM[0], *launch_config[3:])
        configured = self._configured(launch_config)
        if _LAUNCHED[0] is not None:
            _LAUNCHED[0].add(self.name)
        if _CAPTURE[0] is not None:
            return _RecordedLaunch(self, configured, launch_config)
        return configured

    def _configured(self, launch_config):
        # numba-cuda builds a launch-configuration object on every kernel[grid, block, stream]; a training
        # step asks for the same few configurations again and again, so keep them (a small saving, but on
        # every launch).
        try:
            return self._configs[launch_config]
        except KeyError:
            if len(self._configs) >= MAX_CACHED_CONFIGS:
                self._configs.clear()
            configured = self._configs[launch_config] = self.compiled[launch_config]
            return configured
        except TypeError:  # an unhashable launch configuration (a list): no caching
            return self.compiled[launch_config]

    def __repr__(self) -> str:
        return f"GpuKernel({self.name}: {self.signature})"


_LAUNCHED = [None]  # while track_launches() is on: the set of kernel names launched so far


def track_launches() -> set:
    """Start recording the name of every kernel launched from now on (``@gpu_kernel`` ones, and the CUDA C ones as
    ``cuda_c:NAME``); returns the set that fills. Coverage taken from what ran, never from a list written by hand
    (scripts/launch_every_kernel.py)."""
    _LAUNCHED[0] = set()
    return _LAUNCHED[0]


def note_launch(name: str) -> None:
    """Count a launch that does not go through a ``GpuKernel`` (the CUDA C kernels) in ``track_launches``."""
    if _LAUNCHED[0] is not None:
        _LAUNCHED[0].add(name)


def gpu_kernel(signature: str, fastmath: bool = False, notes: str = ""):
    """Declare a CUDA kernel with its eager signature (float32 data, int32 indices and flags)."""

    def declare(py_func) -> GpuKernel:
        if py_func.__name__ in KERNELS:
            raise ValueError(f"two GPU kernels named {py_func.__name__}")
        kernel = GpuKernel(py_func, signature, fastmath, notes)
        KERNELS[kernel.name] = kernel
        return kernel

    return declare


def device_function(fn=None, *, forceinline: bool = False):
    """A ``@cuda.jit(device=True)`` helper, inlined into the kernels that call it. ``forceinline=True``
    inlines it at the NVVM IR level, so local arrays passed in stay in the caller's registers."""
    if fn is None:
        return lambda f: device_function(f, forceinline=forceinline)
    if SIMULATOR or not forceinline:
        return cuda.jit(device=True)(fn)
    return cuda.jit(device=True, forceinline=True)(fn)


if SIMULATOR:
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray as _DeviceArray
else:
    from numba.cuda.cudadrv.devicearray import DeviceNDArray as _DeviceArray


def is_device_array(x) -> bool:
    """A numba-cuda device array (or the simulator's stand-in); checked on every kernel-layer call."""
    return isinstance(x, _DeviceArray)


# ------------------------------------------------------------------------------------------------
# The device's stream, and capturing a stream's launches into a graph
# ------------------------------------------------------------------------------------------------
# Every launch, copy and fill the engine issues goes on one non-default stream, the device's: the legacy
# default stream (stream 0) cannot be captured into a CUDA graph. numba-cuda's ``cuda.stream()`` is a
# *blocking* stream (created with flags 0), so anything a user still issues on stream 0 (``cuda.to_device``,
# ``copy_to_host()`` without a stream) waits for the device's stream and stays ordered with it.

_STREAM = [None]  # the stream a launch goes on when its launcher is given none (stream=0)
_CAPTURE = [None]  # the capture in progress (one at a time), or None


def _is_no_stream(stream) -> bool:
    return stream is None or (isinstance(stream, int) and stream == 0)


def device_stream():
    """The device's one non-default stream, made on first use (one per process and GPU context) and set as the
    stream every launcher uses when it is given none."""
    if _STREAM[0] is None:
        _STREAM[0] = cuda.stream()
    return _STREAM[0]


def current_stream():
    """The stream a launcher given ``stream=0`` launches on: the device's stream once a cuda ``Device`` exists,
    else 0 (the legacy default stream)."""
    return _STREAM[0] if _STREAM[0] is not None else 0


def stream_handle(stream) -> int:
    """The driver handle (CUstream) of a numba-cuda stream, as an int."""
    handle = stream.handle
    try:
        return int(handle)  # a cuda.bindings CUstream (what shared/anchors/gpu_graph_probe.py passes)
    except TypeError:
        return int(handle.value)  # a ctypes c_void_p


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
        args = capture.record(self.kernel.name, self.configured, self.config, args)
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
                raise RuntimeError(f"CUDA graph capture: {name} given a host (NumPy) array as an argument: the "
                                   "launch would copy it to the GPU and back, which no graph replays; pass device arrays")
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


_SCRATCH: dict = {}


def scratch(name: str, shape: tuple[int, ...]):
    """A float32 device array of ``shape`` carved from the scratch buffer ``name``, which only ever grows:
    once a training run has seen its shapes, no launcher allocates (split-K's partial tiles, two-pass
    column sums). One buffer per name: tilegrad issues its work on one stream, so two launches never
    use the same one at the same time."""
    size = math.prod(shape)
    buffer = _SCRATCH.get(name)
    if buffer is None or buffer.size < size:
        check_not_capturing(f"scratch({name!r}) allocating")
        buffer = _SCRATCH[name] = cuda.device_array(size, np.float32)
    return buffer[:size].reshape(shape)


def blocks_1d(n: int, block: int | None = None) -> tuple[int, int]:
    """(blocks, threads per block) for a grid-stride loop over ``n`` elements."""
    if SIMULATOR:
        threads = block or SIM_BLOCK_1D
        return max(1, min(math.ceil(n / threads), SIM_MAX_BLOCKS)), threads
    threads = block or GPU_BLOCK_1D
    return max(1, min(math.ceil(n / threads), GPU_MAX_BLOCKS)), threads


def tiles_2d(rows: int, cols: int, tile_rows: int, tile_cols: int) -> tuple[int, int]:
    """Grid (x over column tiles, y over row tiles) for kernels that loop over tiles grid-stride."""
    gx, gy = math.ceil(cols / tile_cols), math.ceil(rows / tile_rows)
    if SIMULATOR:
        return max(1, min(gx, 2)), max(1, min(gy, 2))
    return max(1, min(gx, 65535)), max(1, min(gy, 65535))


def launch_1d(kernel: GpuKernel, n: int, block: int | None = None, stream=0):
    """``kernel`` configured for a grid-stride loop over ``n`` elements: call it with the arguments."""
    blocks, threads = blocks_1d(n, block)
    return kernel[blocks, threads, stream]


def cpu_and_gpu(fn, *, fastmath: bool = False):
    """One element body compiled twice, as ``(cpu, gpu)``: an ``njit(inline="always")`` function that
    Numba inlines into a CPU twin's prange loop (under the loop's own fastmath), and a device function for
    the GPU kernels. A device function keeps its own flags, not its kernel's: pass the kernel's ``fastmath``
    (without it, a division in the body stays ``div.full`` inside a fastmath kernel, not ``div.approx``)."""
    return numba.njit(inline="always")(fn), cuda.jit(device=True, fastmath=fastmath)(fn)
