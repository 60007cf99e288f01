"""Watched memory: the arrays a sanitized kernel sees, with byte addresses, bounds and initialization.

Every global allocation gets a fake, 256-byte-aligned device address (stable for the allocation's life), so
two views of one buffer alias as on a GPU and sectors are counted on real byte addresses. Each shared array
of a block gets an address in the block's shared window (aligned to 128 bytes, so banks count as on a GPU).
An access is bounds-checked before NumPy sees the index (a negative one does not wrap), and appended to the
block's log of the current barrier epoch: (address, thread, op, site, step, size, value). The log is
reduced to per-address state at the next barrier (``analysis.py``) and dropped.
"""

from __future__ import annotations

import operator
import sys
import threading
import weakref

import numpy as np

READ, WRITE, ATOMIC, UNINIT_READ = 0, 1, 2, 3  # UNINIT_READ: a read of memory not initialized when the epoch began
# A log entry is (address, op | log2(itemsize) << 2 | thread_id << 5 | warp_epoch << 16 | step << 32, site,
# value): three ints and the value, cheap to append and to turn into NumPy arrays at the barrier. The step
# counts a thread's accesses since the last barrier; the warp epoch its warp rendezvous (syncwarp, shuffles).
TID_SHIFT, TID_BITS, WARP_EPOCH_SHIFT, WARP_EPOCH_BITS, STEP_SHIFT = 5, 11, 16, 16, 32
WARP_EPOCH = 1 << WARP_EPOCH_SHIFT
STEP = 1 << STEP_SHIFT
GLOBAL_BASE = 1 << 32  # fake device addresses of global allocations start here
SHARED_BASE = 1 << 56  # a block's shared window; above every global address
SHARED_WINDOW = 1 << 18  # 256 KiB: more than any GPU's shared memory per block
DYNAMIC_SHARED_OFFSET = 1 << 17  # dynamic shared memory sits after the static arrays
LINE_BITS = 20  # a site is file_id << LINE_BITS | line

_current_thread = threading.current_thread
_getframe = sys._getframe


class Abort(BaseException):
    """Raised inside a kernel thread to end it when its launch is ended (never caught by kernel code)."""


# ---- source sites, cached per code object ----------------------------------------------------------------
FILES: list[str] = []
_FILE_IDS: dict = {}  # id(code object) -> its site prefix (a code object's own hash is slow: it hashes its bytecode)
_CODES: list = []  # the code objects seen, kept alive so that their ids are never reused
_FILE_OF_NAME: dict = {}


def file_id(code) -> int:
    """The site prefix of a code object's file (computed once per code object)."""
    fid = _FILE_IDS.get(id(code))
    if fid is None:
        import os

        name = code.co_filename
        path = os.path.abspath(name) if not name.startswith("<") else name
        index = _FILE_OF_NAME.get(path)
        if index is None:
            index = _FILE_OF_NAME[path] = len(FILES)
            FILES.append(path)
        _CODES.append(code)
        fid = _FILE_IDS[id(code)] = (index + 1) << LINE_BITS
    return fid


def site_of(frame) -> int:
    return file_id(frame.f_code) | frame.f_lineno


def split_site(site: int) -> tuple[str, int]:
    return FILES[(site >> LINE_BITS) - 1], site & ((1 << LINE_BITS) - 1)


_INTERNAL = None


def kernel_frame(frame):
    """The first frame outside the simulator and this package: the kernel's (or device function's) line."""
    global _INTERNAL
    if _INTERNAL is None:
        import os

        import numba

        _INTERNAL = (os.path.dirname(os.path.abspath(__file__)),
                     os.path.join(os.path.dirname(os.path.abspath(numba.cuda.__file__)), "simulator"),
                     os.path.dirname(threading.__file__) + os.sep + "threading.py")
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        frame = frame.f_back
    return frame


# ---- global allocations: fake addresses and initialization bitmaps --------------------------------------
class _Allocation:
    __slots__ = ("address", "nbytes", "initialized", "__weakref__")

    def __init__(self, address, nbytes, initialized):
        self.address, self.nbytes, self.initialized = address, nbytes, initialized


_ALLOCATIONS: dict = {}  # id(root ndarray) -> _Allocation
_NEXT_ADDRESS = [GLOBAL_BASE]
_REGISTRY_LOCK = threading.Lock()


def root_of(ary: np.ndarray) -> np.ndarray:
    root = ary
    while isinstance(root.base, np.ndarray):
        root = root.base
    return root


def _data_pointer(ary: np.ndarray) -> int:
    return ary.__array_interface__["data"][0]


def allocation(root: np.ndarray, tracked_init: bool = False) -> _Allocation:
    """The fake device allocation behind a root array (made on first sight: initialized unless
    ``tracked_init``, which ``cuda.device_array`` asks for)."""
    key = id(root)
    with _REGISTRY_LOCK:
        found = _ALLOCATIONS.get(key)
        if found is None:
            nbytes = max(int(root.nbytes), 1)
            address = _NEXT_ADDRESS[0]
            _NEXT_ADDRESS[0] += (nbytes + 511) // 256 * 256  # 256-byte aligned, a gap between allocations
            found = _ALLOCATIONS[key] = _Allocation(address, nbytes,
                                                    np.zeros(nbytes, np.bool_) if tracked_init else None)
            try:
                weakref.finalize(root, _ALLOCATIONS.pop, key, None)
            except TypeError:  # not weak-referenceable: keep it (rare)
                pass
        return found


def allocation_of_address(address: int):
    for found in list(_ALLOCATIONS.values()):
        if found.address <= address < found.address + found.nbytes:
            return found
    return None


def mark_host_write(ary: np.ndarray, index=None) -> None:
    """The host wrote ``ary`` (or ``ary[index]``): those elements of a device array are initialized."""
    found = _ALLOCATIONS.get(id(root_of(ary)))
    if found is None or found.initialized is None:
        return
    offset = _data_pointer(ary) - _data_pointer(root_of(ary))
    try:
        flags = np.lib.stride_tricks.as_strided(found.initialized[offset:], shape=ary.shape, strides=ary.strides)
        if index is None:
            flags[...] = True
        else:
            flags[index] = True
    except (ValueError, IndexError, TypeError):  # an unusual view: count the whole allocation as written
        found.initialized[...] = True


def mark_kernel_writes(addresses: np.ndarray) -> None:
    """Global addresses a launch wrote: initialized from now on."""
    if addresses.size == 0:
        return
    for found in list(_ALLOCATIONS.values()):
        if found.initialized is None:
            continue
        inside = addresses[(addresses >= found.address) & (addresses < found.address + found.nbytes)]
        found.initialized[inside - found.address] = True


def poison(ary: np.ndarray) -> np.ndarray:
    """Fill with a value no correct kernel reads: NaN for floats, the most negative (or largest) integer."""
    kind = ary.dtype.kind
    if kind in "fc":
        ary.fill(np.nan)
    elif kind == "i":
        ary.fill(np.iinfo(ary.dtype).min)
    elif kind == "u":
        ary.fill(np.iinfo(ary.dtype).max)
    elif kind == "b":
        ary.fill(True)
    return ary


# ---- the arrays a kernel sees ------------------------------------------------------------------------------
class TrackedArray:
    """A global or shared array inside a sanitized kernel: every element access is checked and logged."""

    __slots__ = ("_ary", "_label", "_space", "_addr", "_init", "_ioff", "_ndim", "_shape", "_strides", "_n0",
                 "_s0", "_n1", "_s1", "_itemsize", "_state", "_log_on", "_bounds_on", "_codes")

    def __init__(self, ary, label, space, addr, init, ioff, state):
        self._ary = ary
        self._label = label
        self._space = space
        self._addr = addr  # device address of this view's first element
        self._init = init  # bool bitmap of the allocation (None: always initialized), by byte offset
        self._ioff = ioff  # this view's byte offset in that bitmap
        self._ndim = ary.ndim
        self._shape = ary.shape
        self._strides = ary.strides
        self._n0 = ary.shape[0] if ary.ndim else 0
        self._s0 = ary.strides[0] if ary.ndim else 0
        self._n1 = ary.shape[1] if ary.ndim == 2 else -1  # the 2-D fast path (tiles, matrices)
        self._s1 = ary.strides[1] if ary.ndim == 2 else 0
        self._itemsize = ary.itemsize
        size_code = (max(ary.itemsize, 1).bit_length() - 1) << 2
        self._codes = (size_code | READ, size_code | WRITE, size_code | ATOMIC, size_code | UNINIT_READ)
        self._state = state  # the launch (findings, tools)
        self._log_on = state.log_accesses
        self._bounds_on = state.bounds

    # what kernels read off an array
    @property
    def shape(self):
        from numba.cuda.simulator.cudadrv.devicearray import FakeShape

        return FakeShape(self._shape)

    @property
    def size(self):
        return self._ary.size

    @property
    def ndim(self):
        return self._ndim

    @property
    def dtype(self):
        return self._ary.dtype

    @property
    def strides(self):
        return self._strides

    def __len__(self):
        return self._n0

    def __getattr__(self, name):
        return getattr(self._ary, name)

    def __repr__(self):
        return f"<sanitized {self._space} array {self._label} {self._shape}>"

    # element access
    def _locate(self, idx, op):
        """Byte offset of an element, or a sub-view for a partial index; None after an out-of-bounds."""
        if not isinstance(idx, tuple):
            idx = (idx,)
        shape, strides = self._shape, self._strides
        if len(idx) == self._ndim:
            offset = 0
            try:
                for d, v in enumerate(idx):
                    v = operator.index(v)
                    if not 0 <= v < shape[d]:
                        return self._out_of_bounds(idx, op)
                    offset += v * strides[d]
                return offset
            except TypeError:
                pass  # slices: a view
        for d, v in enumerate(idx):
            if d < len(shape) and not isinstance(v, slice) and v is not Ellipsis and v is not None:
                try:
                    v = operator.index(v)
                except TypeError:
                    continue
                if not 0 <= v < shape[d]:
                    return self._out_of_bounds(idx, op)
        view = self._ary[idx]
        if not isinstance(view, np.ndarray):
            return view
        shift = _data_pointer(view) - _data_pointer(self._ary)
        return TrackedArray(view, self._label, self._space, self._addr + shift, self._init, self._ioff + shift,
                            self._state)

    def _out_of_bounds(self, idx, op):
        if not self._bounds_on:
            return "wrap"
        frame = kernel_frame(_getframe(1))
        self._state.out_of_bounds(self, idx, op, frame)
        return None

    def _element(self, idx):
        """The byte offset of an in-bounds element index (Python or NumPy integers), else None."""
        try:
            if self._n1 >= 0:
                i, j = idx
                if 0 <= i < self._n0 and 0 <= j < self._n1:
                    offset = i * self._s0 + j * self._s1
                    return offset if offset.__class__ is int else int(offset)  # NumPy integers overflow
            elif self._ndim == 1 and 0 <= idx < self._n0:
                offset = idx * self._s0
                return offset if offset.__class__ is int else int(offset)
        except (TypeError, ValueError):
            pass
        return None

    def __getitem__(self, idx):
        offset = self._element(idx)
        if offset is None:
            offset = self._locate(idx, READ)
            if offset.__class__ is not int:
                if offset is None:
                    return self._ary.dtype.type(0)  # what the kernel reads instead of someone else's memory
                if offset == "wrap":
                    return self._ary[idx]
                return offset  # a sub-view
        value = self._ary[idx]
        if self._log_on:
            t = _current_thread()
            if t.abort:
                raise Abort
            init = self._init
            code = self._codes[3 if init is not None and not init[self._ioff + offset] else 0]
            f = _getframe(1)
            fid = _FILE_IDS.get(id(f.f_code)) or file_id(f.f_code)
            step = t._step
            t._step = step + STEP
            t._log.append((self._addr + offset, step | code, fid | f.f_lineno, value))
        return value

    def __setitem__(self, idx, value):
        offset = self._element(idx)
        if offset is None:
            offset = self._locate(idx, WRITE)
            if offset.__class__ is not int:
                if offset is None:
                    return  # an out-of-bounds store is dropped (reported)
                if offset == "wrap":
                    self._ary[idx] = value
                    return
                offset[...] = value  # a whole sub-view (rare in kernels): no per-element log
                return
        self._ary[idx] = value
        if self._log_on:
            t = _current_thread()
            if t.abort:
                raise Abort
            f = _getframe(1)
            fid = _FILE_IDS.get(id(f.f_code)) or file_id(f.f_code)
            step = t._step
            t._step = step + STEP
            t._log.append((self._addr + offset, step | self._codes[1], fid | f.f_lineno, value))

    def _atomic(self, idx, update, frame):
        """Apply ``update(old) -> new`` to one element atomically; returns the old value."""
        offset = self._locate(idx, ATOMIC)
        if offset.__class__ is not int:
            if offset is None:
                return self._ary.dtype.type(0)
            offset = None
        with _ATOMIC_LOCK:
            old = self._ary[idx]
            self._ary[idx] = update(old)
            new = self._ary[idx]
        if self._log_on and offset is not None:
            t = _current_thread()
            if t.abort:
                raise Abort
            step = t._step
            t._step = step + STEP
            t._log.append((self._addr + offset, step | self._codes[2], site_of(frame), new))
        return old


_ATOMIC_LOCK = threading.Lock()


class LocalArray:
    """A thread's local array: bounds-checked (negative indices included), never shared, never logged."""

    __slots__ = ("_ary", "_shape", "_state", "_ndim")

    def __init__(self, ary, state):
        self._ary, self._shape, self._state, self._ndim = ary, ary.shape, state, ary.ndim

    def _inside(self, idx):
        if idx.__class__ is int and self._ndim == 1:
            return 0 <= idx < self._shape[0]
        parts = idx if isinstance(idx, tuple) else (idx,)
        for d, v in enumerate(parts):
            try:
                v = operator.index(v)
            except TypeError:
                continue
            if d < len(self._shape) and not 0 <= v < self._shape[d]:
                return False
        return True

    def __getitem__(self, idx):
        if self._inside(idx) or not self._state.bounds:
            return self._ary[idx]
        self._state.out_of_bounds(self, idx, READ, kernel_frame(_getframe(1)))
        return self._ary.dtype.type(0)

    def __setitem__(self, idx, value):
        if self._inside(idx) or not self._state.bounds:
            self._ary[idx] = value
            return
        self._state.out_of_bounds(self, idx, WRITE, kernel_frame(_getframe(1)))

    @property
    def shape(self):
        return self._shape

    def __len__(self):
        return self._shape[0]

    def __getattr__(self, name):
        return getattr(self._ary, name)


def _as_dtype(dtype):
    from numba.cuda import types
    from numba.cuda.np import numpy_support

    return numpy_support.as_dtype(dtype) if isinstance(dtype, types.Type) else np.dtype(dtype)


class SanitizedLocal:
    """``cuda.local`` inside a sanitized kernel."""

    def __init__(self, state):
        self._state = state

    def array(self, shape, dtype, alignment=None):
        return LocalArray(poison(np.empty(shape, _as_dtype(dtype))), self._state)


class SanitizedShared:
    """``cuda.shared`` for one block: fresh, poisoned arrays (no carry-over between blocks), one per call site
    (file, line and bytecode offset, so two arrays on one line do not alias), at addresses in the block's
    shared window."""

    def __init__(self, state, dynshared_size):
        self._state = state
        self._arrays = {}
        self._next = SHARED_BASE
        self.initialized = np.zeros(SHARED_WINDOW, np.bool_)  # by byte offset in the window
        self._dynamic = poison(np.empty(max(int(dynshared_size), 0), np.uint8)) if dynshared_size else None
        self._lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        dtype = _as_dtype(dtype)
        frame = kernel_frame(_getframe(1))
        if shape == 0 or shape == (0,):
            buffer = self._dynamic if self._dynamic is not None else np.empty(0, np.uint8)
            ary = np.frombuffer(buffer.data, dtype=dtype, count=buffer.size // dtype.itemsize)
            return TrackedArray(ary, "dynamic shared", "shared", SHARED_BASE + DYNAMIC_SHARED_OFFSET,
                                self.initialized, DYNAMIC_SHARED_OFFSET, self._state)
        key = (frame.f_code, frame.f_lineno, frame.f_lasti) if frame is not None else None
        with self._lock:
            found = self._arrays.get(key)
            if found is None:
                ary = poison(np.empty(shape, dtype))
                address = self._next
                self._next += (ary.nbytes + 127) // 128 * 128
                label = _shared_name(frame)
                found = self._arrays[key] = TrackedArray(ary, label, "shared", address, self.initialized,
                                                         address - SHARED_BASE, self._state)
                self._state.name_allocation(address, found)
        return found


def _shared_name(frame) -> str:
    """The variable a shared array is assigned to, read off its source line ('tile' in
    ``tile = cuda.shared.array(...)``), else 'shared@LINE'."""
    import linecache
    import re

    if frame is None:
        return "shared"
    text = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    match = re.match(r"\s*([A-Za-z_]\w*)\s*=\s*\w+\.shared\.array", text)
    return match.group(1) if match else f"shared@{frame.f_lineno}"


class SanitizedAtomic:
    """``cuda.atomic`` on watched arrays: each operation is one logged atomic access (atomic with atomic is
    no race); on anything else, the simulator's own."""

    def __init__(self, fallback):
        self._fallback = fallback

    def add(self, array, index, val):
        return self._do("add", array, index, val, lambda old: old + val)

    def sub(self, array, index, val):
        return self._do("sub", array, index, val, lambda old: old - val)

    def and_(self, array, index, val):
        return self._do("and_", array, index, val, lambda old: old & val)

    def or_(self, array, index, val):
        return self._do("or_", array, index, val, lambda old: old | val)

    def xor(self, array, index, val):
        return self._do("xor", array, index, val, lambda old: old ^ val)

    def inc(self, array, index, val):
        return self._do("inc", array, index, val, lambda old: 0 if old >= val else old + 1)

    def dec(self, array, index, val):
        return self._do("dec", array, index, val, lambda old: val if (old == 0 or old > val) else old - 1)

    def exch(self, array, index, val):
        return self._do("exch", array, index, val, lambda old: val)

    def max(self, array, index, val):
        return self._do("max", array, index, val, lambda old: max(old, val))

    def min(self, array, index, val):
        return self._do("min", array, index, val, lambda old: min(old, val))

    def nanmax(self, array, index, val):
        return self._do("nanmax", array, index, val, lambda old: np.nanmax([old, val]))

    def nanmin(self, array, index, val):
        return self._do("nanmin", array, index, val, lambda old: np.nanmin([old, val]))

    def compare_and_swap(self, array, old, val):
        index = (0,) * array.ndim
        return self._do("cas", array, index, None, lambda loaded: val if loaded == old else loaded,
                        fallback_args=(array, old, val), fallback_name="compare_and_swap")

    def cas(self, array, index, old, val):
        return self._do("cas", array, index, None, lambda loaded: val if loaded == old else loaded,
                        fallback_args=(array, index, old, val))

    def _do(self, name, array, index, val, update, fallback_args=None, fallback_name=None):
        if isinstance(array, TrackedArray):
            return array._atomic(index, update, kernel_frame(_getframe(2)))
        args = fallback_args if fallback_args is not None else (array, index, val)
        return getattr(self._fallback, fallback_name or name)(*args)
