"""Devices: where arrays live and which kernel backend runs on them.

``Device("cpu")``  multi-core CPU: NumPy arrays, Numba ``prange`` twins, BLAS.
``Device("cuda")`` the GPU through numba-cuda device arrays; under ``NUMBA_ENABLE_CUDASIM=1`` the
                   same kernels run in Numba's CUDA simulator (and the repr says so).
``Device("auto")`` cuda when a real GPU is present, else cpu.
``Device("numpy")`` the float64 NumPy reference backend (slow; what ``gradcheck`` differentiates).

Interop. ``Device.asarray`` also takes PyTorch tensors, CuPy arrays and anything that speaks the CUDA
array interface (``__cuda_array_interface__``) or DLPack (``__dlpack__``): on a GPU, a CUDA tensor
becomes a device array *without a copy* (a view of the same memory) when it is already float32 and
C-contiguous. The other way round needs nothing from tilegrad: a cuda device's arrays are numba-cuda
device arrays, which expose ``__cuda_array_interface__``, so ``torch.as_tensor(a, device="cuda")`` and
``cupy.asarray(a)`` view them without a copy; a cpu device's arrays are NumPy arrays
(``torch.from_numpy(a)``). Numba's CUDA simulator has no CUDA array interface: these zero-copy paths
need a real GPU. torch and cupy are never imported here: an object is recognized by its type's module.
"""

from __future__ import annotations

import numpy as np

from hardware import cuda_probe

DEVICE_NAMES = ("cpu", "cuda", "auto")


# Host buffers start on a cache line: a 64-byte AVX-512 load or store from an address that is not a
# multiple of 64 touches two lines, and NumPy's allocator promises only 16 bytes (docs/benchmarks.md
# measures the gain).
HOST_ALIGNMENT = 64


def host_empty(shape, dtype) -> np.ndarray:
    """np.empty(shape, dtype), its first element on a HOST_ALIGNMENT-byte boundary."""
    dtype = np.dtype(dtype)
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + HOST_ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % HOST_ALIGNMENT
    return raw[start:start + nbytes].view(dtype).reshape(shape)


class DeviceUnavailable(RuntimeError):
    """The device asked for cannot be used on this machine."""


def _resolve(name: str) -> str:
    if name == "numpy":
        return name
    if not isinstance(name, str) or name not in DEVICE_NAMES + ("sim",):
        raise ValueError(f"unknown device {name!r}: choose one of cpu, cuda, auto")
    if name == "sim":
        cuda_probe.enable_simulator()
        return "cuda"
    if name == "auto":
        return "cuda" if cuda_probe.real_gpu_count() > 0 and not cuda_probe.simulator_requested() else "cpu"
    if name == "cuda" and not cuda_probe.simulator_requested() and cuda_probe.real_gpu_count() == 0:
        raise DeviceUnavailable(
            "no CUDA GPU found on this machine; to run the CUDA kernels in Numba's simulator "
            f"(slow, for correctness only) set {cuda_probe.SIMULATOR_VARIABLE}=1 before starting Python, "
            "or pass --device sim to cli.py"
        )
    return name


class Device:
    """A place for arrays plus the kernel backend that computes on them."""

    def __init__(self, name: str = "auto"):
        if isinstance(name, Device):
            name = name.name
        self.name = _resolve(name)
        from cuda_kernels import SIMULATOR, get_backend

        self.simulator = self.name == "cuda" and SIMULATOR
        self.kernels = get_backend(self.name)
        self.float_dtype = np.dtype(np.float64 if self.name == "numpy" else np.float32)
        self.stream = None
        if self.name == "cuda":
            from numba import cuda

            from cuda_kernels import launch

            self._cuda, self._launch = cuda, launch
            # One non-default stream for every launch, copy and fill (the legacy default stream cannot be
            # captured into a CUDA graph); the kernel layer's launchers use it when given no stream.
            self.stream = launch.device_stream()

    @property
    def cpu_threads(self) -> int:
        """How many threads the CPU kernels may run on (per-thread workspaces have this many rows)."""
        import numba

        return numba.config.NUMBA_NUM_THREADS

    # -- arrays ------------------------------------------------------------------------------------
    def _kernel_dtype(self, dtype) -> np.dtype:
        """float data becomes float32 (what every kernel computes in); integer labels keep their type."""
        dtype = np.dtype(dtype)
        return self.float_dtype if np.issubdtype(dtype, np.floating) else dtype

    def asarray(self, array) -> object:
        """``array`` on this device as a C-contiguous array: float data becomes float32 (what every kernel
        computes in), integer data (labels) keeps its type.

        Takes NumPy arrays and anything array-like (lists, scalars), device arrays, PyTorch tensors, CuPy
        arrays, and any object with ``__cuda_array_interface__`` or ``__dlpack__`` (recognized by its
        type's module: torch and cupy are never imported here). No copy when the data is already where
        it has to be, float32 (or integer) and C-contiguous: an array on this device is returned as it
        is; a PyTorch CPU tensor or a DLPack host array on a cpu device becomes a NumPy view of its
        memory; on a real GPU, a CUDA tensor, a CuPy array or any ``__cuda_array_interface__`` object
        on a cuda device becomes a numba-cuda view (``numba.cuda.as_cuda_array``). Writes through a view
        show on both sides. Anything else is copied: another dtype (a CUDA tensor or CuPy array is
        converted on the GPU by its own library) or a move between the host and the GPU. A tensor that
        requires grad is detached; bfloat16 becomes float32. The simulator cannot read GPU memory
        (``TypeError``).
        """
        if self.owns(array) and np.dtype(array.dtype) == self._kernel_dtype(array.dtype) and (
                array.flags.c_contiguous if isinstance(array, np.ndarray) else array.is_c_contiguous()):
            return array
        if not isinstance(array, np.ndarray) and not hasattr(array, "copy_to_host"):
            array = self._import(array)  # another library's array: NumPy, or (cuda) a view on the GPU
            if self.name == "cuda" and self.owns(array):
                if np.dtype(array.dtype) == self._kernel_dtype(array.dtype) and array.is_c_contiguous():
                    return array
                array = array.copy_to_host()  # another dtype or a strided view: through the host
        if not isinstance(array, np.ndarray) and hasattr(array, "copy_to_host"):
            array = array.copy_to_host()  # a device array of another dtype, or a cpu device's input
        host = np.ascontiguousarray(array, dtype=self._kernel_dtype(np.asarray(array).dtype))
        if self.name != "cuda":
            return host
        self._launch.check_not_capturing("asarray copying a host array to the GPU")
        return self._cuda.to_device(host, stream=self.stream)  # pageable source: safe to reuse at once

    def _import(self, obj):
        """Another library's array as a NumPy array (its memory, where it lives on the host) or, on a cuda
        device, a numba-cuda view of its GPU memory; anything else is returned as it is (array-likes)."""
        module = type(obj).__module__.split(".")[0]
        if module == "torch" and hasattr(obj, "detach"):
            return self._import_torch(obj)
        on_gpu = self.name == "cuda" and not self.simulator
        if module == "cupy" and hasattr(obj, "get"):
            if not on_gpu:
                return obj.get()  # GPU to host: a copy
            self._check_same_gpu(f"a CuPy array on GPU {obj.device.id}", obj.device.id)
            if obj.dtype.kind == "f" and obj.dtype != self.float_dtype or not obj.flags.c_contiguous:
                obj = obj.astype(self._kernel_dtype(obj.dtype), order="C")  # converted on the GPU
            return self._cuda.as_cuda_array(obj)
        if getattr(obj, "__cuda_array_interface__", None) is not None:
            from numba import cuda

            if not hasattr(cuda, "as_cuda_array"):  # Numba's simulator has no CUDA array interface
                raise TypeError(f"asarray: a {type(obj).__name__} in GPU memory (__cuda_array_interface__) "
                                f"needs a real GPU; {self!r} runs in the simulator")
            view = cuda.as_cuda_array(obj)
            return view if on_gpu else view.copy_to_host()
        if hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__"):
            kind = int(obj.__dlpack_device__()[0])
            if kind not in (1, 3):  # kDLCPU, kDLCUDAHost: memory the host reads in place
                raise TypeError(f"asarray: a {type(obj).__name__} on DLPack device type {kind}, not in host "
                                "memory, and without __cuda_array_interface__; copy it to the host first")
            return np.from_dlpack(obj)
        return obj

    def _import_torch(self, tensor):
        tensor = tensor.detach()
        if tensor.device.type == "cuda" and self.name == "cuda" and not self.simulator:
            self._check_same_gpu(f"a PyTorch tensor on {tensor.device}", tensor.device.index or 0)
            if tensor.is_floating_point() and str(tensor.dtype) != "torch.float32":
                tensor = tensor.float()  # converted on the GPU
            if not tensor.is_contiguous():
                tensor = tensor.contiguous()
            return self._cuda.as_cuda_array(tensor)  # a view, through __cuda_array_interface__
        if tensor.device.type != "cpu":
            tensor = tensor.cpu()  # to the host: a copy
        if str(tensor.dtype) == "torch.bfloat16":  # NumPy has no bfloat16
            tensor = tensor.float()
        return tensor.resolve_conj().resolve_neg().numpy()  # shares the tensor's memory

    def _check_same_gpu(self, what: str, index: int) -> None:
        current = self._cuda.get_current_device().id
        if index != current:
            raise ValueError(f"asarray: {what}, but this device computes on GPU {current}; move it there first")

    def to_numpy(self, array) -> np.ndarray:
        """The array as a NumPy array on the host (copied from a GPU; a host array is returned as it is)."""
        if isinstance(array, np.ndarray):
            return array
        if hasattr(array, "copy_to_host"):
            if self.name == "cuda":
                self._launch.check_not_capturing("to_numpy reading the GPU")
            return array.copy_to_host()  # stream 0: waits for the device's (blocking) stream
        raise TypeError(f"to_numpy: expected a NumPy or CUDA device array, got {type(array).__name__}")

    def empty(self, shape, dtype=None):
        """An uninitialized array on this device (float32 unless ``dtype`` says otherwise)."""
        dtype = self.float_dtype if dtype is None else dtype
        if self.name != "cuda":
            return host_empty(shape, dtype)
        self._launch.check_not_capturing("Device.empty allocating")
        return self._cuda.device_array(shape, dtype, stream=self.stream)

    def zeros(self, shape, dtype=None):
        """An array of zeros on this device, filled where it lives (no host buffer is copied over)."""
        dtype = self.float_dtype if dtype is None else dtype
        if self.name != "cuda":
            out = host_empty(shape, dtype)
            out.fill(0)
            return out
        self._launch.check_not_capturing("Device.zeros allocating")
        out = self._cuda.device_array(shape, dtype, stream=self.stream)
        if np.dtype(dtype) == np.float32:
            self.kernels.fill(out, 0.0)  # on the device: no host buffer, no transfer
        else:
            out.copy_to_device(np.zeros(shape, dtype), stream=self.stream)
        return out

    # -- host staging and asynchronous copies (the batch, the labels, the loss) ----------------------
    def pinned_empty(self, shape, dtype=None):
        """A host array for staging copies to and from this device: page-locked on a GPU (so the copies run
        asynchronously, by DMA), an aligned host array elsewhere. A staging buffer may be rewritten only once
        the copies that read it have finished (after ``synchronize_stream`` or a read back that waits)."""
        dtype = self.float_dtype if dtype is None else dtype
        if self.name != "cuda":
            return host_empty(shape, dtype)
        self._launch.check_not_capturing("Device.pinned_empty allocating")
        staging = self._cuda.pinned_array(shape, dtype)
        self._launch.register_pinned(staging)  # the only host source a captured copy may read
        return staging

    def copy_from_host(self, out, host) -> None:
        """out[...] = host, asynchronously on this device's stream (host: a staging array, same shape). Inside a
        graph capture the copy is recorded and replayed with the graph, reading ``host`` again at every replay:
        ``host`` must then come from ``pinned_empty`` (anything else raises)."""
        if self.name != "cuda":
            out[...] = host
            return
        self._launch.check_pinned_source("Device.copy_from_host", host)
        self._launch.record_or_run("copy_from_host", lambda: out.copy_to_device(host, stream=self.stream))

    def copy_to_host_async(self, host, array) -> None:
        """host[...] = array, enqueued on this device's stream; the values are there after
        ``synchronize_stream()`` (host: a staging array from ``pinned_empty``)."""
        if self.name != "cuda":
            host[...] = array
            return
        self._launch.check_not_capturing("a copy to the host")
        array.copy_to_host(host, stream=self.stream)

    def synchronize_stream(self) -> None:
        """Wait until everything enqueued on this device's stream has finished."""
        if self.name == "cuda":
            self.stream.synchronize()

    @property
    def capturing(self) -> bool:
        """True while this device's stream is being captured into a CUDA graph (``engine.cuda_graph``): layers
        and optimizers then launch only, leaving per-step host work (seeds, step scalars) to the replay."""
        return self.name == "cuda" and self._launch.capturing()

    def owns(self, array) -> bool:
        """True when ``array`` lives on this device."""
        from cuda_kernels.launch import is_device_array

        return is_device_array(array) if self.name == "cuda" else isinstance(array, np.ndarray)

    def check_owns(self, what: str, array) -> None:
        """One clear error when an array from another device is handed to this one."""
        if not self.owns(array):
            from cuda_kernels.launch import is_device_array

            where = ("a NumPy (cpu) array" if isinstance(array, np.ndarray) else
                     "a CUDA device array" if is_device_array(array) else f"a {type(array).__name__}")
            raise TypeError(f"{what}: expected an array on {self!r}, got {where}; move it with device.asarray")

    def synchronize(self) -> None:
        """Wait until every kernel launched on this device has finished (launches are asynchronous)."""
        if self.name == "cuda":
            self._cuda.synchronize()

    def copy(self, out, x) -> None:
        """out[...] = x on this device (same shape), without a round trip through the host."""
        if self.name == "cuda":
            self._launch.record_or_run("copy", lambda: out.copy_to_device(x, stream=self.stream))
        else:
            out[...] = x

    # -- identity ----------------------------------------------------------------------------------
    def __eq__(self, other) -> bool:
        return isinstance(other, Device) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return "Device('cuda', simulator=True)" if self.simulator else f"Device({self.name!r})"


def host_device() -> Device:
    """The CPU device, made once: where host-side work (checking labels, staging) runs."""
    return _cached("cpu")


def device_of(array) -> Device:
    """The device an array lives on: cuda for device arrays, the float64 reference for float64 NumPy."""
    if isinstance(array, np.ndarray):
        return _cached("numpy" if array.dtype == np.float64 else "cpu")
    from cuda_kernels.launch import is_device_array

    if is_device_array(array):
        return _cached("cuda")
    raise TypeError(f"expected a NumPy or CUDA device array, got {type(array).__name__}")


_DEVICES: dict[str, Device] = {}


def _cached(name: str) -> Device:
    if name not in _DEVICES:
        _DEVICES[name] = Device(name)
    return _DEVICES[name]
