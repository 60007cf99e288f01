"""Data-parallel training over MPI (mpi4py): replicas, gradients averaged by allreduce (Horovod's way).

Run as ``mpiexec -n N python cli.py train ...``. Every rank builds the same model; rank 0's parameters
are broadcast at the start; every rank walks the same seeded shuffle, takes its share of each *global*
batch, and the flat gradient buffer is averaged over the ranks, weighted by each rank's share (so a
final short batch split unevenly still gives the global mean). Then every rank takes the same optimizer
step. With the same seed and global batch, N ranks therefore train the model one process would, up to
floating-point summation order (dropout masks and BatchNorm's batch statistics are per rank, as in
every data-parallel framework). Before the first step the ranks compare the global batch size, a
checksum of the training data and the model's layers: any difference is one error, not a silent
divergence.

Two ways to average (``fit(..., allreduce=...)``, ``train --allreduce``):

- ``"overlap"`` (the default, PyTorch DDP's buckets): the flat gradient buffer is cut into contiguous
  buckets of whole layers, about ``bucket_mb`` each. Backward runs the layers in reverse, so the
  gradients fill the buffer from its end to its start; the model calls ``GradientReducer.on_layer_done``
  after each layer's backward (``Sequential.backward_hooks``), and every bucket whose layers are all done
  is started at once as a non-blocking ``Iallreduce`` on its slice, while backward goes on with the
  layers below. ``wait()`` waits for all of them before the optimizer step.
- ``"blocking"``: one ``Allreduce`` of the whole buffer after backward (the path before buckets).

Both add the same numbers (two ranks: bit for bit), so they train the same model. Buckets are started in
one fixed order (from the end of the buffer), the same on every rank, as MPI requires of collectives.

Cost model, per step: a ring allreduce moves ~2 x 4 x P bytes per rank for P parameters; LeNet-5 has
61,706 parameters, 0.25 MB: at 10 Gb/s that is 0.4 ms, against a step of a millisecond or more.
``bench/scaling_model.py`` calibrates that model on this machine and extrapolates it to clusters
(docs/scaling.md).

GPU ranks: local rank r takes GPU r mod (the GPUs it sees), so ranks share a GPU when there are fewer
GPUs than ranks. Gradients go to MPI through pinned host buffers, or directly as device buffers when
the MPI library is CUDA-aware (``MPIX_Query_cuda_support``; ``TILEGRAD_MPI_CUDA_AWARE=0|1`` overrides).

Without an MPI launcher (or without mpi4py), the world is one process and nothing here imports MPI.
"""

from __future__ import annotations

import os
import time
import zlib
from functools import lru_cache

import numpy as np

SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE")
LOCAL_RANK_VARIABLES = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK",
                        "SLURM_LOCALID")
LOCAL_SIZE_VARIABLES = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE")
CUDA_AWARE_VARIABLE = "TILEGRAD_MPI_CUDA_AWARE"
ALLREDUCE_MODES = ("overlap", "blocking")
DEFAULT_BUCKET_MB = 1.0
MB = 2**20  # a bucket's "MB" is a MiB, as PyTorch DDP's bucket_cap_mb


def _env_int(names, default):
    for name in names:
        if os.environ.get(name):
            return int(os.environ[name])
    return default


def gpu_index(local_rank: int, gpu_count: int) -> int | None:
    """The GPU a rank takes: local rank r uses GPU r mod ``gpu_count`` (ranks share GPUs when there are
    more ranks than GPUs on the machine); None without a GPU."""
    if local_rank < 0:
        raise ValueError(f"gpu_index: the local rank must be >= 0, got {local_rank}")
    return None if gpu_count < 1 else local_rank % gpu_count


def query_cuda_aware(MPI) -> tuple[bool, str]:
    """(whether the MPI library takes CUDA device buffers, how that was decided).

    ``TILEGRAD_MPI_CUDA_AWARE=0|1`` decides first; then mpi4py's own query where it has one; then
    ``MPIX_Query_cuda_support``, which MPICH (4 and later) and Open MPI (4 and later) export, looked up
    through ctypes in the library mpi4py loaded. A library with neither is taken as not CUDA-aware."""
    forced = os.environ.get(CUDA_AWARE_VARIABLE, "").strip().lower()
    if forced in ("1", "true", "yes", "0", "false", "no"):
        return forced in ("1", "true", "yes"), f"{CUDA_AWARE_VARIABLE}={forced}"
    query = getattr(MPI, "Query_cuda_support", None)
    if query is not None:
        return bool(query()), "mpi4py's MPI.Query_cuda_support()"
    try:
        import ctypes

        function = getattr(ctypes.CDLL(MPI.__file__), "MPIX_Query_cuda_support", None)
    except (OSError, AttributeError):
        function = None
    if function is None:
        return False, "the MPI library has no MPIX_Query_cuda_support: taken as not CUDA-aware"
    function.restype = ctypes.c_int
    return bool(function()), "MPIX_Query_cuda_support()"


class World:
    """The MPI world as the engine needs it; a one-process world when not launched by mpiexec."""

    def __init__(self):
        self.size = _env_int(SIZE_VARIABLES, 1)
        self.comm = None
        self.rank, self.local_rank, self.local_size = 0, 0, 1
        self._cuda_aware, self.cuda_aware_how = None, "one process: no MPI"
        if self.size > 1:
            try:
                from mpi4py import MPI
            except ImportError as exc:
                raise RuntimeError("launched by an MPI launcher but mpi4py is missing: pip install -e '.[dist]'") \
                    from exc
            self.MPI = MPI
            self.comm = MPI.COMM_WORLD
            self.size, self.rank = self.comm.Get_size(), self.comm.Get_rank()
            self.local_rank = _env_int(LOCAL_RANK_VARIABLES, self.rank)
            self.local_size = _env_int(LOCAL_SIZE_VARIABLES, self.size)
            self._host_buffer = None
            self._share_cores()

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def _share_cores(self) -> None:
        """Ranks on one machine split its cores instead of oversubscribing them."""
        import numba

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        numba.set_num_threads(max(1, min(numba.get_num_threads(), cores // max(1, self.local_size))))

    # -- the share of a global batch ------------------------------------------------------------------
    def share(self, n: int) -> tuple[int, int]:
        """This rank's [lo, hi) of a global batch of n samples (sizes differ by at most one)."""
        base, extra = divmod(n, self.size)
        lo = self.rank * base + min(self.rank, extra)
        return lo, lo + base + (1 if self.rank < extra else 0)

    # -- collectives --------------------------------------------------------------------------------
    def broadcast_(self, device, flat) -> None:
        """Overwrite ``flat`` (a device or host array) on every rank with rank 0's values."""
        if not self.distributed:
            return
        host = np.ascontiguousarray(device.to_numpy(flat))
        self.comm.Bcast(host, root=0)
        device.copy(flat, host)

    def average_(self, device, flat, weight: float) -> None:
        """flat <- sum over ranks of weight_r * flat_r (weights: each rank's share of the batch)."""
        if not self.distributed:
            return
        if weight != 1.0:
            device.kernels.scale(flat, flat, weight)
        self.allreduce_sum_(device, flat)

    def allreduce_sum_(self, device, flat) -> None:
        """flat <- the sum of every rank's ``flat``, in one blocking Allreduce (through pinned host memory
        for a GPU array unless the MPI library is CUDA-aware)."""
        if device.name == "cuda" and self.cuda_aware():
            device.synchronize()
            self.comm.Allreduce(self.MPI.IN_PLACE, flat, op=self.MPI.SUM)
        elif device.name == "cuda":
            from numba import cuda

            if self._host_buffer is None or self._host_buffer.shape != tuple(flat.shape):
                self._host_buffer = cuda.pinned_array(tuple(flat.shape), np.float32)
            flat.copy_to_host(self._host_buffer)
            self.comm.Allreduce(self.MPI.IN_PLACE, self._host_buffer, op=self.MPI.SUM)
            flat.copy_to_device(self._host_buffer)
        else:
            self.comm.Allreduce(self.MPI.IN_PLACE, flat, op=self.MPI.SUM)

    def sum(self, value: float) -> float:
        if not self.distributed:
            return value
        return float(self.comm.allreduce(float(value), op=self.MPI.SUM))

    def cuda_aware(self) -> bool:
        """Whether the MPI library takes CUDA device buffers (asked once; see ``query_cuda_aware``)."""
        if not self.distributed:
            return False
        if self._cuda_aware is None:
            self._cuda_aware, self.cuda_aware_how = query_cuda_aware(self.MPI)
        return self._cuda_aware

    def transport(self, device) -> str:
        """How gradients travel between ranks, in words (``train`` prints it)."""
        if not self.distributed:
            return "one process: no allreduce"
        if device.name != "cuda":
            return "host memory (MPI)"
        if device.simulator:
            return "pinned host buffers (the CUDA simulator: MPI never sees its arrays)"
        if self.cuda_aware():
            return f"CUDA device buffers passed to MPI directly (CUDA-aware MPI: {self.cuda_aware_how})"
        return f"pinned host buffers (MPI is not CUDA-aware: {self.cuda_aware_how})"

    def check_same(self, name: str, value) -> None:
        """Every rank must agree (e.g. on the global batch size); otherwise fail with one message."""
        self.check_agreement({name: value})

    def check_agreement(self, items: dict) -> None:
        """Every rank must hold the same value for every item ({what: value}); one allgather, and one
        ``ValueError`` naming each item the ranks disagree on and what every rank has."""
        if not self.distributed:
            return
        everyone = self.comm.allgather({name: value if isinstance(value, str) else repr(value)
                                        for name, value in items.items()})
        problems = []
        for name in items:
            values = [seen[name] for seen in everyone]
            if len(set(values)) != 1:
                groups = {}
                for rank, value in enumerate(values):
                    groups.setdefault(value, []).append(rank)
                problems.append(f"{name}: " + "; ".join(f"{_ranks(ranks)} {value}" for value, ranks in groups.items()))
        if problems:
            raise ValueError(f"ranks disagree on {' and on '.join(problems)}. Every rank must run the same "
                             f"command on the same data")

    def bind_gpu(self) -> int | None:
        """One GPU per rank: local rank r uses GPU r mod (GPUs on this machine); returns its index (None
        in a one-process world, without a GPU, or in the simulator)."""
        from hardware import cuda_probe

        count = cuda_probe.real_gpu_count()
        if not self.distributed or count == 0 or cuda_probe.simulator_requested():
            return None
        from numba import cuda

        index = gpu_index(self.local_rank, count)
        cuda.select_device(index)
        return index

    def abort(self, code: int = 1) -> None:
        if self.distributed:
            self.comm.Abort(code)


def _ranks(ranks: list[int]) -> str:
    return f"rank {ranks[0]} has" if len(ranks) == 1 else f"ranks {', '.join(map(str, ranks))} have"


@lru_cache(maxsize=1)
def get_world() -> World:
    return World()


# ---------------------------------------------------------------------------------------- fingerprints
def data_fingerprint(dataset) -> str:
    """What the ranks compare about their training data: size, sample shape, type and a CRC-32 of every
    byte of inputs and labels (0.1-0.2 s for MNIST, once per ``fit``)."""
    x, y = np.ascontiguousarray(dataset.x), np.ascontiguousarray(dataset.y)
    crc = zlib.crc32(y.view(np.uint8).reshape(-1), zlib.crc32(x.view(np.uint8).reshape(-1)))
    return f"{len(y)} samples of {x.shape[1:]} {x.dtype} (checksum {crc:08x})"


def model_fingerprint(model) -> str:
    """What the ranks compare about their model: its layers' types and parameter shapes, and the count."""
    layers = getattr(model, "layers", [model])
    parts = []
    for layer in layers:
        shapes = ", ".join("x".join(map(str, p.shape)) for p in layer.parameters())
        parts.append(type(layer).__name__ + (f"[{shapes}]" if shapes else ""))
    count = sum(p.size for p in model.parameters())
    return f"{' '.join(parts)}: {count:,} parameters"


# ---------------------------------------------------------------------------------------- buckets
def layer_ranges(model) -> list[tuple[object, int, int]]:
    """(layer, lo, hi) for each of the model's layers with parameters: the range of the flat gradient buffer
    its parameters occupy (padding included). Empty when a layer's parameters are not one contiguous range."""
    from runtime.parameters import padded_size

    offsets, offset = {}, 0
    for p in model.flat.params:
        offsets[id(p)] = (offset, offset + padded_size(p.size))
        offset += padded_size(p.size)
    ranges = []
    for layer in getattr(model, "layers", [model]):
        spans = [offsets[id(p)] for p in layer.parameters() if id(p) in offsets]
        if not spans:
            continue
        lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
        if sum(s[1] - s[0] for s in spans) != hi - lo:
            return []
        ranges.append((layer, lo, hi))
    return ranges


def plan_buckets(units: list[tuple[int, int]], total: int, bucket_floats: int) -> list[tuple[int, int]]:
    """Cut [0, total) into buckets of whole units ([lo, hi) ranges, one per layer), from the end of the
    buffer (where backward starts) to its start: a bucket takes units while it stays within
    ``bucket_floats``, and a unit larger than that gets a bucket of its own. Returns [(lo, hi)] in that
    order, end first. Units that do not tile [0, total) give one bucket, the whole buffer."""
    if bucket_floats < 1:
        raise ValueError(f"plan_buckets: a bucket must hold at least one float, got {bucket_floats}")
    units = sorted(units, key=lambda u: -u[0])
    top = total
    for lo, hi in units:
        if hi != top or lo >= hi:
            return [(0, total)] if total else []
        top = lo
    if top != 0:
        return [(0, total)] if total else []
    buckets, top, size = [], total, 0
    for lo, hi in units:
        if size and size + (hi - lo) > bucket_floats:
            buckets.append((hi, top))
            top, size = hi, 0
        size += hi - lo
    if total:
        buckets.append((0, top))
    return buckets


def bucket_floats_for(bucket_mb: float) -> int:
    if not bucket_mb > 0:  # NaN too
        raise ValueError(f"the bucket size must be positive, got {bucket_mb} MB")
    return max(1, int(bucket_mb * MB) // 4) if bucket_mb != float("inf") else 2**62


class _Reducer:
    """Averages the flat gradient buffer over the ranks once per step: ``begin(weight)`` before forward,
    ``on_layer_done(layer)`` after each layer's backward (the model's ``backward_hooks``), ``wait()``
    before the optimizer step. ``comm_s``: this step's seconds inside MPI calls (and the GPU staging copies
    around them) on the training thread — the communication the step waited for."""

    mode = ""

    def __init__(self, world: World, model):
        self.world, self.model = world, model
        self.device = model.device
        self.active = False
        self.weight = 1.0
        self.comm_s = 0.0
        self.buckets = [(0, model.flat.size)]

    def attach(self, model=None) -> _Reducer:
        """Call ``on_layer_done`` from ``model``'s backward (replacing any other reducer there)."""
        hooks = getattr(model or self.model, "backward_hooks", None)
        if hooks is not None:
            hooks[:] = [h for h in hooks if not isinstance(getattr(h, "__self__", None), _Reducer)]
            hooks.append(self.on_layer_done)
        return self

    def detach(self, model=None) -> None:
        hooks = getattr(model or self.model, "backward_hooks", None)
        if hooks is not None:
            hooks[:] = [h for h in hooks if getattr(h, "__self__", None) is not self]

    def begin(self, weight: float = 1.0) -> None:
        self.weight, self.comm_s, self.active = float(weight), 0.0, True

    def on_layer_done(self, layer) -> None:
        pass

    def wait(self) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        return self.mode


class BlockingReducer(_Reducer):
    """One blocking Allreduce of the whole flat gradient buffer after backward."""

    mode = "blocking"

    def wait(self) -> None:
        grad = self.model.flat.grad
        if self.weight != 1.0:
            self.device.kernels.scale(grad, grad, self.weight)
        start = time.perf_counter()
        self.world.allreduce_sum_(self.device, grad)
        self.comm_s += time.perf_counter() - start
        self.active = False

    def describe(self) -> str:
        return "blocking (one allreduce after backward)"


class GradientReducer(_Reducer):
    """Buckets of about ``bucket_mb`` MiB, each reduced by a non-blocking Iallreduce started as soon as
    backward has produced it (see the module's docstring); ``wait()`` before the optimizer step."""

    mode = "overlap"

    def __init__(self, world: World, model, bucket_mb: float = DEFAULT_BUCKET_MB):
        super().__init__(world, model)
        self.bucket_mb = bucket_mb
        ranges = layer_ranges(model)
        self.buckets = plan_buckets([(lo, hi) for _, lo, hi in ranges], model.flat.size,
                                    bucket_floats_for(bucket_mb))
        self.bucket_of = {}  # id(layer) -> the index of the bucket holding its gradients
        self.units = [0] * len(self.buckets)  # how many layers each bucket waits for
        for layer, lo, _ in ranges:
            index = next(i for i, (b_lo, b_hi) in enumerate(self.buckets) if b_lo <= lo < b_hi)
            self.bucket_of[id(layer)] = index
            self.units[index] += 1
        self.staging = None  # pinned host copy of the flat gradient buffer (GPU ranks without CUDA-aware MPI)
        self.direct = False
        if self.device.name == "cuda" and world.distributed:
            if world.cuda_aware() and not self.device.simulator:
                self.direct = True
            else:
                from numba import cuda

                self.staging = cuda.pinned_array((model.flat.size,), np.float32)
        self.pending = list(self.units)
        self.started = len(self.buckets)
        self.requests = []

    def begin(self, weight: float = 1.0) -> None:
        super().begin(weight)
        self.pending = list(self.units)
        self.started = 0
        self.requests = []

    def on_layer_done(self, layer) -> None:
        if not self.active:
            return
        index = self.bucket_of.get(id(layer))
        if index is not None:
            self.pending[index] -= 1
        ready = self.started < len(self.buckets) and self.pending[self.started] <= 0
        if not ready and not self.requests:
            return
        start = time.perf_counter()
        # in one fixed order (end of the buffer first) on every rank, as MPI requires of collectives
        while self.started < len(self.buckets) and self.pending[self.started] <= 0:
            self._start(self.started)
        if self.requests:
            self.world.MPI.Request.Testall(self.requests)  # lets MPI move the started buckets along
        self.comm_s += time.perf_counter() - start

    def _start(self, index: int) -> None:
        lo, hi = self.buckets[index]
        grad = self.model.flat.grad[lo:hi]
        if self.weight != 1.0:
            self.device.kernels.scale(grad, grad, self.weight)
        if self.staging is not None:
            buffer = self.staging[lo:hi]
            grad.copy_to_host(buffer)  # waits for the kernels that wrote these gradients
        else:
            if self.direct:
                self.device.synchronize()  # MPI reads the device buffer itself: the kernels must be done
            buffer = grad
        self.requests.append(self.world.comm.Iallreduce(self.world.MPI.IN_PLACE, buffer, op=self.world.MPI.SUM))
        self.started += 1

    def wait(self) -> None:
        start = time.perf_counter()
        while self.started < len(self.buckets):  # a rank without samples, or layers that never ran backward
            self._start(self.started)
        self.world.MPI.Request.Waitall(self.requests)
        if self.staging is not None:
            self.model.flat.grad.copy_to_device(self.staging)
        self.requests = []
        self.active = False
        self.comm_s += time.perf_counter() - start

    def describe(self) -> str:
        sizes = [4 * (hi - lo) / MB for lo, hi in self.buckets]
        return (f"overlap ({len(self.buckets)} bucket{'s' if len(self.buckets) != 1 else ''} of "
                f"{', '.join(f'{s:.2f}' for s in sizes)} MB, started during backward)")


def check_allreduce_options(mode: str, bucket_mb: float) -> None:
    """One ValueError for an unknown allreduce mode or a bucket size that is not positive."""
    if mode not in ALLREDUCE_MODES:
        raise ValueError(f"allreduce must be one of {', '.join(ALLREDUCE_MODES)}, got {mode!r}")
    bucket_floats_for(bucket_mb)


def make_reducer(world: World, model, mode: str = "overlap", bucket_mb: float = DEFAULT_BUCKET_MB) -> _Reducer:
    """The reducer ``fit`` uses: ``"overlap"`` (buckets, non-blocking) or ``"blocking"`` (one Allreduce)."""
    check_allreduce_options(mode, bucket_mb)
    return GradientReducer(world, model, bucket_mb) if mode == "overlap" else BlockingReducer(world, model)
