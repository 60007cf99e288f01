"""Embedding: a lookup table, read by a gather and trained by a scatter-add (PyTorch's ``nn.Embedding``).

Shapes: weight, dweight (V, D); ids (M,) int32 in [0, V); out, dout (M, D). A layer with ids (N, T) passes
them flat, M = N*T, and its (N, T, D) output as the (M, D) view.
    forward:   out[m, :] = weight[ids[m], :]                                   a gather: M row copies
    backward:  dweight = 0, then dweight[ids[m], :] += dout[m, :] for every m  a scatter-add (overwrites)
The ids are checked against [0, V) by the launchers on the host backends (one pass over M integers); on
the GPU that check would cost a copy back to the host, so the caller checks them there (``L.Embedding``
does, on the host, before they reach the device): an id out of range would read or write out of bounds.

Napkin math: forward moves 8*M*D bytes (read a row of the table, write it out) and computes nothing, so it
is bandwidth-bound; at a character model's M = 64*64, D = 32 that is 1 MB, under a microsecond of H200
bandwidth and far below one launch. Backward is where it gets interesting: ids repeat (a character
vocabulary of ~100 over 4096 positions: each row of dweight receives ~40 rows of dout, the space ~700),
so the writers collide, and how a backend resolves the collisions is the lesson of this family:
- CPU twin: prange over blocks of vocabulary rows. Each thread owns a block of dweight's rows, scans all M
  ids and adds only the rows it owns: no two threads write one row (no races, no atomics), and each row
  sums in position order, as the reference does (deterministic). The price: each thread reads all M ids.
- GPU ``atomic``: a zeroing kernel, then one thread per element of dout adding it into dweight with a float32
  atomicAdd. O(M*D) work, but colliding adds serialize in L2, and their order, hence the float32 rounding,
  changes from run to run: not bit-reproducible.
- GPU ``gather`` (the default while V*M <= GATHER_MAX_WORK): one thread per element of dweight scans all M ids
  and sums the rows whose id is its own, in position order. No atomics, no zeroing pass, deterministic; but
  O(V*M*D) id reads: right for a character vocabulary, wrong for 50,000 words (there ``atomic`` is picked).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda, float32, njit, prange

from .backend import implements
from .checks import INDEX, check_array, check_dtype_family, check_in, float_dtype
from .launch import gpu_kernel, launch_1d
from .threads import serial_below_grain

CUDA_BACKWARD_VERSIONS = ("gather", "atomic")
GATHER_MAX_WORK = 1 << 22  # V*M: a char LM's 96 x 4096 = 0.4 M is well inside; a 50k-word vocabulary is not

# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------


def _check(op, backend, table, rows, ids, table_name, rows_name):
    """(V, D, M) after checking the table (V, D), the ids (M,) int32 and the rows (M, D)."""
    dt = float_dtype(backend)
    v, d = check_array(op, table_name, table, backend, dtype=dt, ndim=2)
    (m,) = check_array(op, "ids", ids, backend, dtype=INDEX, ndim=1)
    check_array(op, rows_name, rows, backend, shape=(m, d), dtype=dt)
    check_dtype_family(op, backend, **{table_name: table, rows_name: rows})
    return v, d, m


def _check_ids_in_range(op, ids, vocabulary):
    """On the host backends: every id in [0, V), or one ValueError giving the range found."""
    if ids.size and (ids.min() < 0 or ids.max() >= vocabulary):
        raise ValueError(f"{op}: argument 'ids' must lie in [0, {vocabulary}) (the table's rows), "
                         f"got ids in [{ids.min()}, {ids.max()}]")


# ------------------------------------------------------------------------------------------------
# Reference: NumPy, float64-capable
# ------------------------------------------------------------------------------------------------


@implements("embedding_forward", "numpy")
def embedding_forward_reference(out, weight, ids):
    """out[m, :] = weight[ids[m], :]."""
    v, _, _ = _check("embedding_forward", "numpy", weight, out, ids, "weight", "out")
    _check_ids_in_range("embedding_forward", ids, v)
    out[...] = weight[ids]


@implements("embedding_backward", "numpy")
def embedding_backward_reference(dweight, dout, ids):
    """dweight = 0, then dweight[ids[m], :] += dout[m, :] for every m (``np.add.at``: repeated ids add up)."""
    v, _, _ = _check("embedding_backward", "numpy", dweight, dout, ids, "dweight", "dout")
    _check_ids_in_range("embedding_backward", ids, v)
    dweight[...] = 0
    np.add.at(dweight, ids, dout)


# ------------------------------------------------------------------------------------------------
# CPU twin: forward prange over positions; backward prange over blocks of vocabulary rows
# ------------------------------------------------------------------------------------------------


@serial_below_grain
@njit(parallel=True, cache=True)
def _embedding_forward_cpu(out, weight, ids):
    m, d = out.shape
    for row in prange(m):
        src = weight[ids[row]]
        dst = out[row]
        for j in range(d):
            dst[j] = src[j]


@serial_below_grain
@njit(parallel=True, cache=True)
def _embedding_backward_cpu(dweight, dout, ids, blocks):
    """Block b of ``blocks`` owns dweight's rows [b*V/blocks, (b+1)*V/blocks): it zeroes them, then scans
    every id and adds the rows of dout whose id it owns (a row's writes all come from one thread)."""
    v, d = dweight.shape
    for block in prange(blocks):
        lo, hi = block * v // blocks, (block + 1) * v // blocks
        for r in range(lo, hi):
            for j in range(d):
                dweight[r, j] = float32(0.0)
        for m in range(ids.size):
            r = ids[m]
            if lo <= r < hi:
                dst, src = dweight[r], dout[m]
                for j in range(d):
                    dst[j] += src[j]


@implements("embedding_forward", "cpu")
def embedding_forward_cpu(out, weight, ids):
    v, _, _ = _check("embedding_forward", "cpu", weight, out, ids, "weight", "out")
    _check_ids_in_range("embedding_forward", ids, v)
    _embedding_forward_cpu(out, weight, ids)


@implements("embedding_backward", "cpu")
def embedding_backward_cpu(dweight, dout, ids):
    v, _, _ = _check("embedding_backward", "cpu", dweight, dout, ids, "dweight", "dout")
    _check_ids_in_range("embedding_backward", ids, v)
    if v:
        # one block of rows per thread: more blocks would only make more threads scan all the ids
        _embedding_backward_cpu(dweight, dout, ids, min(v, numba.get_num_threads()))


# ------------------------------------------------------------------------------------------------
# GPU kernels: grid-stride loops; the forward gather, then the backward naive (atomic) to deterministic
# ------------------------------------------------------------------------------------------------
# Consecutive threads take consecutive columns of one row: each warp reads and writes whole rows of 32 floats
# (coalesced), and all its threads read the same id (one broadcast load).


@gpu_kernel("void(float32[:, ::1], float32[:, ::1], int32[::1])")
def embedding_forward_kernel(out, weight, ids):
    m, d = out.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, m * d, stride):
        row = e // d
        col = e - row * d
        out[row, col] = weight[ids[row], col]


@gpu_kernel("void(float32[:, ::1])")
def embedding_zero_kernel(dweight):
    """dweight = 0: the atomic version adds into it."""
    v, d = dweight.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, v * d, stride):
        row = e // d
        dweight[row, e - row * d] = float32(0.0)


@gpu_kernel("void(float32[:, ::1], float32[:, ::1], int32[::1])")
def embedding_backward_atomic_kernel(dweight, dout, ids):
    """One thread per element of dout: dweight[ids[m], j] += dout[m, j] with a float32 atomicAdd."""
    m, d = dout.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, m * d, stride):
        row = e // d
        col = e - row * d
        cuda.atomic.add(dweight, (ids[row], col), dout[row, col])


@gpu_kernel("void(float32[:, ::1], float32[:, ::1], int32[::1])")
def embedding_backward_gather_kernel(dweight, dout, ids):
    """One thread per element of dweight: the sum, in position order, of dout's rows carrying its id."""
    v, d = dweight.shape
    m = ids.size
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, v * d, stride):
        row = e // d
        col = e - row * d
        acc = float32(0.0)
        for position in range(m):
            if ids[position] == row:
                acc += dout[position, col]
        dweight[row, col] = acc


# ------------------------------------------------------------------------------------------------
# Launchers
# ------------------------------------------------------------------------------------------------


def pick_backward_version(vocabulary: int, positions: int) -> str:
    """``gather`` (deterministic) while its V*M id reads stay affordable, else ``atomic``."""
    return "gather" if vocabulary * positions <= GATHER_MAX_WORK else "atomic"


@implements("embedding_forward", "cuda")
def embedding_forward_cuda(out, weight, ids, block=None, stream=0):
    _, d, m = _check("embedding_forward", "cuda", weight, out, ids, "weight", "out")
    launch_1d(embedding_forward_kernel, m * d, block, stream)(out, weight, ids)


@implements("embedding_backward", "cuda")
def embedding_backward_cuda(dweight, dout, ids, version=None, block=None, stream=0):
    """``version``: "gather" (deterministic) or "atomic"; None picks by size (``pick_backward_version``)."""
    v, d, m = _check("embedding_backward", "cuda", dweight, dout, ids, "dweight", "dout")
    if version is None:
        version = pick_backward_version(v, m)
    check_in("embedding_backward", "version", version, CUDA_BACKWARD_VERSIONS)
    if version == "gather":
        launch_1d(embedding_backward_gather_kernel, v * d, block, stream)(dweight, dout, ids)
        return
    launch_1d(embedding_zero_kernel, v * d, block, stream)(dweight)
    if m:
        launch_1d(embedding_backward_atomic_kernel, m * d, block, stream)(dweight, dout, ids)
