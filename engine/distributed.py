"""Data-parallel training over MPI (mpi4py): replicas, one gradient allreduce per step (Horovod's way).

Run as ``mpiexec -n N python cli.py train ...``. Every rank builds the same model; rank 0's parameters
are broadcast at the start; every rank walks the same seeded shuffle, takes its share of each *global*
batch, and after the backward pass the flat gradient buffer is averaged with one allreduce, weighted
by each rank's share (so a final short batch split unevenly still gives the global mean). Then every
rank takes the same optimizer step. With the same seed and global batch, N ranks therefore train the
model one process would, up to floating-point summation order (dropout masks and BatchNorm's batch
statistics are per rank, as in every data-parallel framework).

Cost model, per step: the allreduce moves ~2 x 4 x P bytes per rank (ring algorithm) for P parameters;
LeNet-5 has 61,706 parameters, 0.5 MB: at 10 Gb/s that is 0.4 ms, against a step of a millisecond or
more, so data parallelism pays for models of this size on one machine. GPU ranks stage the
gradient through pinned host memory unless the MPI library reports CUDA support (then the device
buffer is passed directly).

Without an MPI launcher (or without mpi4py), the world is one process and nothing here imports MPI.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE")
LOCAL_RANK_VARIABLES = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK")
LOCAL_SIZE_VARIABLES = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE")


def _env_int(names, default):
    for name in names:
        if os.environ.get(name):
            return int(os.environ[name])
    return default


class World:
    """The MPI world as the engine needs it; a one-process world when not launched by mpiexec."""

    def __init__(self):
        self.size = _env_int(SIZE_VARIABLES, 1)
        self.comm = None
        self.rank, self.local_rank, self.local_size = 0, 0, 1
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
        if device.name == "cuda" and self.cuda_aware():
            self.comm.Allreduce(self.MPI.IN_PLACE, flat, op=self.MPI.SUM)
            return
        if device.name == "cuda":
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
        query = getattr(self.MPI, "Query_cuda_support", None)
        return bool(query and query())

    def check_same(self, name: str, value) -> None:
        """Every rank must agree (e.g. on the global batch size); otherwise fail with one message."""
        if not self.distributed:
            return
        values = self.comm.allgather(value)
        if len(set(map(repr, values))) != 1:
            raise ValueError(f"ranks disagree on {name}: {values}")

    def bind_gpu(self) -> None:
        """One GPU per rank: local rank r uses GPU r mod (GPUs on this machine)."""
        from hardware import cuda_probe

        count = cuda_probe.real_gpu_count()
        if not self.distributed or count == 0 or cuda_probe.simulator_requested():
            return
        from numba import cuda

        cuda.select_device(self.local_rank % count)

    def abort(self, code: int = 1) -> None:
        if self.distributed:
            self.comm.Abort(code)


@lru_cache(maxsize=1)
def get_world() -> World:
    return World()
