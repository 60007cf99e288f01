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
        # every launch). Not in the simulator: its kernel[config] sets the grid on the kernel itself and returns
        # the kernel, so every cached configuration would launch with the grid set last.
        if SIMULATOR:
            return self.compiled[launch_config]
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

    from sanitizer.warp import install as _install_warp_primitives

    _install_warp_primitives()  # the simulator lacks shfl_*_sync, ballot_sync, syncwarp, ... (numba #8433)
else:
    from numba.cuda.cudadrv.devicearray import DeviceNDArray as _DeviceArray


def is_device_array(x) -> bool:
    """A numba-cuda device array (or the simulator's stand-in); checked on every kernel-layer call."""
    return isinstance(x, _DeviceArray)


# ------------------------------------------------------------------------------------------------
# The device's stream (capturing its launches into a graph: cuda_kernels/capture.py)
# ------------------------------------------------------------------------------------------------
# Every launch, copy and fill the engine issues goes on one non-default stream, the device's: the legacy
# default stream (stream 0) cannot be captured into a CUDA graph. numba-cuda's ``cuda.stream()`` is a
# *blocking* stream (created with flags 0), so anything a user still issues on stream 0 (``cuda.to_device``,
# ``copy_to_host()`` without a stream) waits for the device's stream and stays ordered with it.

_STREAM = [None]  # the stream a launch goes on when its launcher is given none (stream=0)
_CAPTURE = [None]  # the capture in progress (one at a time), or None: capture.py's state, read on every launch


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


# Capture lives in its own module; its names stay importable from here (``launch.begin_capture`` and the rest).
from .capture import (  # noqa: E402, F401  (capture.py reads this module's stream: imported once it is defined)
    CapturedGraph,
    _RecordedLaunch,
    abort_capture,
    begin_capture,
    capturing,
    check_not_capturing,
    check_pinned_source,
    end_capture,
    is_pinned,
    record_or_run,
    register_pinned,
)
