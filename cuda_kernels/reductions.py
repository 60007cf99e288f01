"""Reductions: column sums (bias gradients), mean, softmax + cross-entropy (forward, backward),
mean squared error, argmax per row, counting matches (accuracy) and the sum of squares (a gradient's norm,
for clipping).

Shapes: x (M, N) -> column sums (N,); logits, probs, dlogits (N, C); labels, predictions (N,) int32;
loss, count (1,) so the scalar stays on the device until the one copy the training step makes; x (P,) ->
sum_of_squares (1,).

Napkin math: each op reads its input once (4 bytes/element) and does 1-3 FLOPs per element
(softmax: exp + a few adds per logit): memory-bound, like the elementwise ops. The single-block
reductions (mean, count) are meant for per-sample vectors (N <= a few thousand), where one block
streaming the vector is cheaper than a second launch.

Versions that teach: a one-block sum (``scaled_sum``) folds its threads' partial sums in a shared-memory
tree (``shared_tree``: log2(block) barriers) or with warp shuffles (``warp_shuffle``: lanes add each other's
registers, one barrier for the warps' sums); softmax runs one thread per row (``thread_per_row``: fine for
10 classes) or one warp per row (``warp_per_row``: lanes read a wide row together, coalesced, and meet
through xor shuffles).

Softmax is computed stably: subtract the row maximum before exp, so no logit overflows. A label out of
[0, C) is rejected at the boundary on the CPU backends; on the GPU (where checking would cost a copy)
it makes that row's loss NaN, which the training loop reports.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32, int32, njit, prange

from .backend import implements
from .checks import INDEX, check_array, check_in, float_dtype
from .launch import SIMULATOR, device_function, gpu_kernel, launch_1d, scratch, tiles_2d
from .threads import serial_below_grain

REDUCE_THREADS = 32 if SIMULATOR else 256  # one block; a power of two for the tree
REDUCE_MAX_PARTIALS = 1024  # sum_of_squares' first pass: at most this many blocks, one partial each
REDUCE_SHARED = 256
# column sums' blocks: (columns x row stripes). The simulator runs one warp of 16 x 2 (each thread is a Python
# thread, and every Dense backward launches this kernel): its warp still reads whole 64-byte row segments and
# folds its stripes in shared memory, as the GPU's 32 x 8 blocks do.
COLUMN_TILE, ROW_STRIPES = (16, 2) if SIMULATOR else (32, 8)
WARP_SIZE, FULL_MASK = 32, 0xFFFFFFFF
SUM_VERSIONS = ("shared_tree", "warp_shuffle")
SOFTMAX_VERSIONS = ("thread_per_row", "warp_per_row")


# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------


def _check_softmax(op, backend, probs, logits, labels):
    dt = float_dtype(backend)
    n, c = check_array(op, "logits", logits, backend, dtype=dt, ndim=2)
    check_array(op, "probs", probs, backend, shape=(n, c), dtype=dt)
    check_array(op, "labels", labels, backend, shape=(n,), dtype=INDEX)
    if backend != "cuda" and n and (labels.min() < 0 or labels.max() >= c):
        raise ValueError(f"{op}: argument 'labels' must lie in [0, {c}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return n, c


def _check_scalar_out(op, name, out, backend, dtype):
    check_array(op, name, out, backend, shape=(1,), dtype=dtype)


def _whole_warps(op, block):
    if block is not None and (block <= 0 or block % WARP_SIZE):
        raise ValueError(f"{op}: argument 'block' must be a positive multiple of {WARP_SIZE} (whole warps), "
                         f"got {block}")


def _check_scaled_sum(backend, out, x):
    dt = float_dtype(backend)
    check_array("scaled_sum", "x", x, backend, dtype=dt, ndim=1)
    _check_scalar_out("scaled_sum", "out", out, backend, dt)


def _check_column_sums(backend, out, x):
    rows, cols = check_array("column_sums", "x", x, backend, dtype=float_dtype(backend), ndim=2)
    check_array("column_sums", "out", out, backend, shape=(cols,), dtype=float_dtype(backend))
    return rows, cols


def _check_mse(backend, loss, squared_error, pred, target):
    dt = float_dtype(backend)
    shape = check_array("mse_forward", "pred", pred, backend, dtype=dt)
    check_array("mse_forward", "target", target, backend, shape=shape, dtype=dt)
    check_array("mse_forward", "squared_error", squared_error, backend, shape=shape, dtype=dt)
    _check_scalar_out("mse_forward", "loss", loss, backend, dt)


def _check_argmax(backend, out, x):
    n, _ = check_array("argmax_rows", "x", x, backend, dtype=float_dtype(backend), ndim=2)
    check_array("argmax_rows", "out", out, backend, shape=(n,), dtype=INDEX)


def _check_sum_of_squares(backend, out, x):
    check_array("sum_of_squares", "x", x, backend, dtype=float_dtype(backend), ndim=1)
    _check_scalar_out("sum_of_squares", "out", out, backend, float_dtype(backend))


def _check_count(backend, out, a, b):
    shape = check_array("count_equal", "a", a, backend, dtype=INDEX, ndim=1)
    check_array("count_equal", "b", b, backend, shape=shape, dtype=INDEX)
    _check_scalar_out("count_equal", "out", out, backend, INDEX)


# ------------------------------------------------------------------------------------------------
# Reference: NumPy, float64-capable
# ------------------------------------------------------------------------------------------------


@implements("column_sums", "numpy")
def column_sums_reference(out, x, accumulate=False):
    """out = sum over rows of x (accumulate=True: out += that sum, for gradients summed over time)."""
    _check_column_sums("numpy", out, x)
    out[...] = x.sum(axis=0) + (out if accumulate else 0)


@implements("scaled_sum", "numpy")
def scaled_sum_reference(out, x, scale=1.0):
    """out[0] = scale * sum(x) (a mean with scale = 1 / x.size)."""
    _check_scaled_sum("numpy", out, x)
    out[0] = scale * x.sum()


@implements("softmax_cross_entropy_forward", "numpy")
def softmax_cross_entropy_forward_reference(loss, row_losses, probs, logits, labels):
    n, _ = _check_softmax("softmax_cross_entropy_forward", "numpy", probs, logits, labels)
    check_array("softmax_cross_entropy_forward", "row_losses", row_losses, "numpy", shape=(n,), dtype=None)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1))
    probs[...] = np.exp(shifted - log_sum[:, None])
    row_losses[...] = log_sum - shifted[np.arange(n), labels]
    loss[0] = row_losses.mean()


@implements("softmax_cross_entropy_backward", "numpy")
def softmax_cross_entropy_backward_reference(dlogits, probs, labels, scale):
    n, c = _check_softmax("softmax_cross_entropy_backward", "numpy", probs, probs, labels)
    check_array("softmax_cross_entropy_backward", "dlogits", dlogits, "numpy", shape=(n, c), dtype=None)
    dlogits[...] = probs
    dlogits[np.arange(n), labels] -= 1
    dlogits *= scale


@implements("mse_forward", "numpy")
def mse_forward_reference(loss, squared_error, pred, target):
    _check_mse("numpy", loss, squared_error, pred, target)
    squared_error[...] = (pred - target) ** 2
    loss[0] = squared_error.mean()


@implements("mse_backward", "numpy")
def mse_backward_reference(dpred, pred, target):
    shape = check_array("mse_backward", "pred", pred, "numpy", dtype=None)
    check_array("mse_backward", "target", target, "numpy", shape=shape, dtype=None)
    check_array("mse_backward", "dpred", dpred, "numpy", shape=shape, dtype=None)
    dpred[...] = 2 * (pred - target) / pred.size


@implements("argmax_rows", "numpy")
def argmax_rows_reference(out, x):
    _check_argmax("numpy", out, x)
    out[...] = x.argmax(axis=1)


@implements("count_equal", "numpy")
def count_equal_reference(out, a, b, accumulate=False):
    """out[0] = number of i with a[i] == b[i] (accumulate=True adds to it: a running count)."""
    _check_count("numpy", out, a, b)
    out[0] = np.count_nonzero(a == b) + (out[0] if accumulate else 0)


@implements("sum_of_squares", "numpy")
def sum_of_squares_reference(out, x):
    """out[0] = sum(x * x): the squared L2 norm of a flat gradient buffer (clip_grad_norm)."""
    _check_sum_of_squares("numpy", out, x)
    out[0] = np.dot(x, x)


# ------------------------------------------------------------------------------------------------
# CPU twin: Numba prange
# ------------------------------------------------------------------------------------------------


# Column sums on the CPU walk rows, never columns: a column of a row-major matrix is a strided walk that
# does not vectorize. Wide matrices (a Dense bias gradient): each thread owns CPU_COLUMN_BLOCK columns and
# adds row after row into a local accumulator (SIMD adds). Narrow ones (a conv bias gradient: 6 columns,
# 50,176 rows), whose rows are too short for SIMD: bands of CPU_BAND_ROWS rows in parallel, each read as
# one flat run of floats, CPU_LANES rows at a time (a CPU_LANES x cols wide accumulator, so element q of
# a run always lands in column q % cols); then the lanes and bands are added in order. The splits are
# fixed sizes, never the thread count: the result is the same on any number of threads.
CPU_COLUMN_BLOCK, CPU_BAND_ROWS, CPU_LANES = 64, 1024, 16


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _column_sums_wide_cpu(out, x, accumulate):
    rows, cols = x.shape
    for block in prange((cols + CPU_COLUMN_BLOCK - 1) // CPU_COLUMN_BLOCK):
        j0 = block * CPU_COLUMN_BLOCK
        width = min(CPU_COLUMN_BLOCK, cols - j0)
        acc = np.zeros(CPU_COLUMN_BLOCK, np.float32)  # local: stays in registers / L1, unlike out[]
        for i in range(rows):
            row = x[i, j0:j0 + width]
            for j in range(width):
                acc[j] += row[j]
        for j in range(width):
            out[j0 + j] = acc[j] + (out[j0 + j] if accumulate else np.float32(0.0))


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _column_sums_narrow_cpu(out, x, accumulate):
    rows, cols = x.shape
    flat = x.reshape(-1)
    width = cols * CPU_LANES
    bands = (rows + CPU_BAND_ROWS - 1) // CPU_BAND_ROWS
    lanes = np.zeros((bands, width), np.float32)  # a few KiB: no page faults
    for band in prange(bands):
        acc = lanes[band]
        p, stop = band * CPU_BAND_ROWS * cols, min((band + 1) * CPU_BAND_ROWS, rows) * cols
        while p + width <= stop:
            run = flat[p:p + width]
            for q in range(width):
                acc[q] += run[q]
            p += width
        for q in range(stop - p):  # the band's last rows (fewer than CPU_LANES)
            acc[q] += flat[p + q]
    for j in range(cols):
        total = out[j] if accumulate else np.float32(0.0)
        for band in range(bands):
            for lane in range(CPU_LANES):
                total += lanes[band, lane * cols + j]
        out[j] = total


@serial_below_grain
@njit(parallel=True, cache=True)
def _softmax_cross_entropy_cpu(row_losses, probs, logits, labels):
    n, c = logits.shape
    for i in prange(n):
        biggest = logits[i, 0]
        for j in range(1, c):
            biggest = max(biggest, logits[i, j])
        total = np.float32(0.0)
        for j in range(c):
            e = np.exp(logits[i, j] - biggest)
            probs[i, j] = e
            total += e
        for j in range(c):
            probs[i, j] /= total
        row_losses[i] = np.log(total) + biggest - logits[i, labels[i]]


@njit(cache=True)
def _mean_cpu(x):
    total = np.float64(0.0)  # a CPU scalar sum: float64 costs nothing here and loses nothing
    for i in range(x.size):
        total += x[i]
    return np.float32(total / x.size)


@njit(cache=True)
def _sum_cpu(x):
    total = np.float64(0.0)  # as in _mean_cpu
    for i in range(x.size):
        total += x[i]
    return total


@serial_below_grain
@njit(parallel=True, cache=True)
def _softmax_cross_entropy_backward_cpu(dlogits, probs, labels, scale):
    n, c = probs.shape
    for i in prange(n):
        for j in range(c):
            dlogits[i, j] = probs[i, j] * scale
        dlogits[i, labels[i]] -= scale


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _squared_error_cpu(out, pred, target):
    for i in prange(pred.size):
        d = pred[i] - target[i]
        out[i] = d * d


@serial_below_grain
@njit(parallel=True, cache=True, fastmath=True)
def _mse_backward_cpu(dpred, pred, target, scale):
    for i in prange(pred.size):
        dpred[i] = scale * (pred[i] - target[i])


@serial_below_grain
@njit(parallel=True, cache=True)
def _argmax_rows_cpu(out, x):
    n, c = x.shape
    for i in prange(n):
        best = 0
        for j in range(1, c):
            if x[i, j] > x[i, best]:
                best = j
        out[i] = best


@implements("copy_labels_checked", "cpu", only="host-side: the loss layer converts and range-checks the labels "
                                              "on the host before they reach any device")
@njit(cache=True)
def copy_labels_checked(out, labels, classes):
    """out[:] = labels as int32; returns how many lie outside [0, classes) (one pass; a host helper for
    the loss layer, which then names the range in its error)."""
    bad = 0
    for i in range(labels.size):
        label = labels[i]
        bad += (label < 0) | (label >= classes)
        out[i] = label
    return bad


@implements("column_sums", "cpu")
def column_sums_cpu(out, x, accumulate=False):
    rows, cols = _check_column_sums("cpu", out, x)
    if cols >= CPU_COLUMN_BLOCK or rows <= CPU_BAND_ROWS:
        _column_sums_wide_cpu(out, x, bool(accumulate))
    else:
        _column_sums_narrow_cpu(out, x, bool(accumulate))


@implements("scaled_sum", "cpu")
def scaled_sum_cpu(out, x, scale=1.0):
    _check_scaled_sum("cpu", out, x)
    out[0] = np.float32(scale * _sum_cpu(x))


@implements("softmax_cross_entropy_forward", "cpu")
def softmax_cross_entropy_forward_cpu(loss, row_losses, probs, logits, labels):
    n, _ = _check_softmax("softmax_cross_entropy_forward", "cpu", probs, logits, labels)
    check_array("softmax_cross_entropy_forward", "row_losses", row_losses, "cpu", shape=(n,))
    _check_scalar_out("softmax_cross_entropy_forward", "loss", loss, "cpu", np.float32)
    _softmax_cross_entropy_cpu(row_losses, probs, logits, labels)
    loss[0] = _mean_cpu(row_losses)


@implements("softmax_cross_entropy_backward", "cpu")
def softmax_cross_entropy_backward_cpu(dlogits, probs, labels, scale):
    n, c = _check_softmax("softmax_cross_entropy_backward", "cpu", probs, probs, labels)
    check_array("softmax_cross_entropy_backward", "dlogits", dlogits, "cpu", shape=(n, c))
    _softmax_cross_entropy_backward_cpu(dlogits, probs, labels, np.float32(scale))


@implements("mse_forward", "cpu")
def mse_forward_cpu(loss, squared_error, pred, target):
    _check_mse("cpu", loss, squared_error, pred, target)
    _squared_error_cpu(squared_error.reshape(-1), pred.reshape(-1), target.reshape(-1))
    loss[0] = _mean_cpu(squared_error.reshape(-1))


@implements("mse_backward", "cpu")
def mse_backward_cpu(dpred, pred, target):
    shape = check_array("mse_backward", "pred", pred, "cpu")
    check_array("mse_backward", "target", target, "cpu", shape=shape)
    check_array("mse_backward", "dpred", dpred, "cpu", shape=shape)
    _mse_backward_cpu(dpred.reshape(-1), pred.reshape(-1), target.reshape(-1), np.float32(2.0 / pred.size))


@implements("argmax_rows", "cpu")
def argmax_rows_cpu(out, x):
    _check_argmax("cpu", out, x)
    _argmax_rows_cpu(out, x)


@implements("count_equal", "cpu")
def count_equal_cpu(out, a, b, accumulate=False):
    _check_count("cpu", out, a, b)
    out[0] = np.count_nonzero(a == b) + (out[0] if accumulate else 0)


@serial_below_grain
@njit(parallel=True, cache=True)
def _sum_of_squares_cpu(x):
    total = np.float64(0.0)  # a prange reduction: each thread's partial, then their sum; float64 costs nothing
    for i in prange(x.size):
        total += np.float64(x[i]) * x[i]
    return np.float32(total)


@implements("sum_of_squares", "cpu")
def sum_of_squares_cpu(out, x):
    _check_sum_of_squares("cpu", out, x)
    out[0] = _sum_of_squares_cpu(x)


# ------------------------------------------------------------------------------------------------
# GPU kernels: grid-stride loops; one-block reductions fold in shared memory (no atomics)
# ------------------------------------------------------------------------------------------------
# (copy_labels_checked has none: it is host-side, see its registration.)


@gpu_kernel("void(float32[::1], float32[:, ::1], int32)", fastmath=True)
def column_sums_kernel(out, x, accumulate):
    """Blocks of (32 columns x 8 row stripes): coalesced row reads, then a shared-memory fold."""
    partial = cuda.shared.array((ROW_STRIPES, COLUMN_TILE), float32)
    rows, cols = x.shape
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    for tile in range(cuda.blockIdx.x, (cols + COLUMN_TILE - 1) // COLUMN_TILE, cuda.gridDim.x):
        j = tile * COLUMN_TILE + tx
        acc = float32(0.0)
        if j < cols:
            for i in range(ty, rows, ROW_STRIPES):
                acc += x[i, j]
        partial[ty, tx] = acc
        cuda.syncthreads()
        if ty == 0:
            for stripe in range(1, ROW_STRIPES):
                acc += partial[stripe, tx]
            if j < cols:
                out[j] = acc + out[j] if accumulate else acc
        cuda.syncthreads()  # the next tile reuses `partial`


# A tall, narrow x (a convolution's bias gradient: 6 columns of 200,704 rows in LeNet's first layer at
# batch 256) gives the kernel above one block whose threads each walk 25,000 rows one after another, and
# that one block dominated the layer's backward. So past ROW_CHUNK rows, sum in two passes: chunks of rows
# in parallel into partials (chunks, cols), then the kernel above over the partials, in a fixed order
# (deterministic, unlike atomic adds).
ROW_CHUNK = 1024


@gpu_kernel("void(float32[:, ::1], float32[:, ::1])", fastmath=True)
def column_chunk_sums_kernel(partials, x):
    """partials[c, j] = sum of x[i, j] over the rows i of chunk c; blocks of 32 columns x 8 row stripes."""
    partial = cuda.shared.array((ROW_STRIPES, COLUMN_TILE), float32)
    rows, cols = x.shape
    chunks = partials.shape[0]
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    for tile in range(cuda.blockIdx.x, (cols + COLUMN_TILE - 1) // COLUMN_TILE, cuda.gridDim.x):
        j = tile * COLUMN_TILE + tx
        for chunk in range(cuda.blockIdx.y, chunks, cuda.gridDim.y):
            acc = float32(0.0)
            if j < cols:
                for i in range(chunk * ROW_CHUNK + ty, min((chunk + 1) * ROW_CHUNK, rows), ROW_STRIPES):
                    acc += x[i, j]
            partial[ty, tx] = acc
            cuda.syncthreads()
            if ty == 0:
                for stripe in range(1, ROW_STRIPES):
                    acc += partial[stripe, tx]
                if j < cols:
                    partials[chunk, j] = acc
            cuda.syncthreads()  # the next chunk reuses `partial`


@device_function
def _fold_block(partial, t):
    """Tree-sum ``partial[:blockDim.x]`` into ``partial[0]`` (blockDim.x a power of two); every thread
    of the block must call it, since it synchronizes."""
    cuda.syncthreads()
    half = cuda.blockDim.x // 2
    while half > 0:
        if t < half:
            partial[t] += partial[t + half]
        cuda.syncthreads()
        half //= 2


@gpu_kernel("void(float32[::1], float32[::1], float32)", fastmath=True)
def scaled_sum_kernel(out, x, scale):
    """One block: out[0] = scale * sum(x), by a grid-stride sum per thread and a shared-memory tree."""
    partial = cuda.shared.array(REDUCE_SHARED, float32)
    t = cuda.threadIdx.x
    acc = float32(0.0)
    for i in range(t, x.size, cuda.blockDim.x):
        acc += x[i]
    partial[t] = acc
    _fold_block(partial, t)
    if t == 0:
        out[0] = partial[0] * scale


# A warp's 32 lanes can read each other's registers (shfl.sync): a tree sum over a warp needs no shared
# memory and no barrier, where the shared-memory tree above stores, waits and loads at every level.
@device_function
def _warp_sum(value):
    """The sum of ``value`` over a whole warp, in lane 0 (shfl_down: each step adds the upper half)."""
    offset = WARP_SIZE // 2
    while offset > 0:
        value += cuda.shfl_down_sync(FULL_MASK, value, offset)
        offset //= 2
    return value


@device_function
def _warp_sum_all(value):
    """The sum of ``value`` over a whole warp, in every lane (shfl_xor: each step swaps halves)."""
    offset = WARP_SIZE // 2
    while offset > 0:
        value += cuda.shfl_xor_sync(FULL_MASK, value, offset)
        offset //= 2
    return value


@device_function
def _warp_max_all(value):
    """The largest ``value`` of a whole warp, in every lane."""
    offset = WARP_SIZE // 2
    while offset > 0:
        value = max(value, cuda.shfl_xor_sync(FULL_MASK, value, offset))
        offset //= 2
    return value


@gpu_kernel("void(float32[::1], float32[::1], float32)", fastmath=True)
def scaled_sum_warp_shuffle_kernel(out, x, scale):
    """One block of whole warps: out[0] = scale * sum(x). Each warp sums its lanes with shuffles, then
    warp 0 sums the warps' sums the same way: one barrier, where the shared-memory tree takes log2(block)."""
    warp_sums = cuda.shared.array(WARP_SIZE, float32)
    t = cuda.threadIdx.x
    lane, warp = t % WARP_SIZE, t // WARP_SIZE
    acc = float32(0.0)
    for i in range(t, x.size, cuda.blockDim.x):
        acc += x[i]
    acc = _warp_sum(acc)
    if lane == 0:
        warp_sums[warp] = acc
    cuda.syncthreads()
    if warp == 0:
        acc = warp_sums[lane] if lane < cuda.blockDim.x // WARP_SIZE else float32(0.0)
        acc = _warp_sum(acc)
        if lane == 0:
            out[0] = acc * scale


@gpu_kernel("void(float32[::1], float32[:, ::1], float32[:, ::1], int32[::1])")
def softmax_cross_entropy_kernel(row_losses, probs, logits, labels):
    """One thread per row (C is small: 10 classes): stable softmax and that row's loss."""
    n, c = logits.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, n, stride):
        biggest = logits[i, 0]
        for j in range(1, c):
            biggest = max(biggest, logits[i, j])
        total = float32(0.0)
        for j in range(c):
            e = math.exp(logits[i, j] - biggest)
            probs[i, j] = e
            total += e
        inv = float32(1.0) / total
        for j in range(c):
            probs[i, j] *= inv
        label = labels[i]
        if 0 <= label < c:
            row_losses[i] = math.log(total) + biggest - logits[i, label]
        else:
            row_losses[i] = float32(math.nan)


@gpu_kernel("void(float32[::1], float32[:, ::1], float32[:, ::1], int32[::1])")
def softmax_cross_entropy_warp_per_row_kernel(row_losses, probs, logits, labels):
    """One warp per row (wide rows: a vocabulary): the lanes stride the row together, so each read of 32
    logits is one coalesced request; the row's max and sum reach every lane through xor shuffles."""
    n, c = logits.shape
    lane = cuda.threadIdx.x % WARP_SIZE
    for i in range(cuda.grid(1) // WARP_SIZE, n, cuda.gridsize(1) // WARP_SIZE):  # the same rows in every lane
        biggest = float32(-math.inf)
        for j in range(lane, c, WARP_SIZE):
            biggest = max(biggest, logits[i, j])
        biggest = _warp_max_all(biggest)
        total = float32(0.0)
        for j in range(lane, c, WARP_SIZE):
            e = math.exp(logits[i, j] - biggest)
            probs[i, j] = e
            total += e
        total = _warp_sum_all(total)
        inv = float32(1.0) / total
        for j in range(lane, c, WARP_SIZE):
            probs[i, j] *= inv
        label = labels[i]
        if lane == 0:
            if 0 <= label < c:
                row_losses[i] = math.log(total) + biggest - logits[i, label]
            else:
                row_losses[i] = float32(math.nan)


@gpu_kernel("void(float32[:, ::1], float32[:, ::1], int32[::1], float32)", fastmath=True)
def softmax_cross_entropy_backward_kernel(dlogits, probs, labels, scale):
    n, c = probs.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, n * c, stride):
        i = e // c
        j = e - i * c
        hit = float32(1.0) if labels[i] == j else float32(0.0)
        dlogits[i, j] = (probs[i, j] - hit) * scale


@gpu_kernel("void(float32[::1], float32[::1], float32[::1])", fastmath=True)
def squared_error_kernel(out, pred, target):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, pred.size, stride):
        d = pred[i] - target[i]
        out[i] = d * d


@gpu_kernel("void(float32[::1], float32[::1], float32[::1], float32)", fastmath=True)
def mse_backward_kernel(dpred, pred, target, scale):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, pred.size, stride):
        dpred[i] = scale * (pred[i] - target[i])


@gpu_kernel("void(int32[::1], float32[:, ::1])")
def argmax_rows_kernel(out, x):
    n, c = x.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, n, stride):
        best = 0
        for j in range(1, c):
            if x[i, j] > x[i, best]:
                best = j
        out[i] = best


@gpu_kernel("void(int32[::1], int32[::1], int32[::1], int32)")
def count_equal_kernel(out, a, b, accumulate):
    """One block counts matches: per-thread counts, then a shared-memory tree (no atomics)."""
    partial = cuda.shared.array(REDUCE_SHARED, int32)
    t = cuda.threadIdx.x
    acc = 0
    for i in range(t, a.size, cuda.blockDim.x):
        if a[i] == b[i]:
            acc += 1
    partial[t] = acc
    _fold_block(partial, t)
    if t == 0:
        out[0] = partial[0] + out[0] if accumulate else partial[0]


@gpu_kernel("void(float32[::1], float32[::1])", fastmath=True)
def sum_of_squares_partials_kernel(partials, x):
    """Each block: partials[block] = the sum of x[i]^2 over its grid-stride share (scaled_sum_kernel adds the
    partials up): a buffer of millions of gradients needs more than the one block a per-sample vector does."""
    partial = cuda.shared.array(REDUCE_SHARED, float32)
    t = cuda.threadIdx.x
    acc = float32(0.0)
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        acc += x[i] * x[i]
    partial[t] = acc
    _fold_block(partial, t)
    if t == 0:
        partials[cuda.blockIdx.x] = partial[0]


# ------------------------------------------------------------------------------------------------
# Launchers: validate, then pick the grid
# ------------------------------------------------------------------------------------------------


@implements("column_sums", "cuda")
def column_sums_cuda(out, x, accumulate=False, stream=0):
    rows, cols = _check_column_sums("cuda", out, x)
    grid = tiles_2d(1, cols, 1, COLUMN_TILE)[0]
    chunks = math.ceil(rows / ROW_CHUNK)
    if chunks > 1:
        partials = scratch("column-sum partials", (chunks, cols))
        chunk_grid = (grid, min(chunks, 2) if SIMULATOR else min(chunks, 65535))
        column_chunk_sums_kernel[chunk_grid, (COLUMN_TILE, ROW_STRIPES), stream](partials, x)
        x = partials
    column_sums_kernel[grid, (COLUMN_TILE, ROW_STRIPES), stream](out, x, np.int32(accumulate))


def _scaled_sum(out, x, scale, version, stream):
    kernel = scaled_sum_warp_shuffle_kernel if version == "warp_shuffle" else scaled_sum_kernel
    kernel[1, REDUCE_THREADS, stream](out, x, np.float32(scale))


# The simulator runs the versions the tests pick; on a GPU, shuffles (GPU tier: tests -m gpu).
DEFAULT_SUM = "shared_tree" if SIMULATOR else "warp_shuffle"


@implements("scaled_sum", "cuda")
def scaled_sum_cuda(out, x, scale=1.0, version=None, stream=0):
    """out[0] = scale * sum(x) in one block; ``version`` one of SUM_VERSIONS."""
    _check_scaled_sum("cuda", out, x)
    version = DEFAULT_SUM if version is None else version
    check_in("scaled_sum", "version", version, SUM_VERSIONS)
    _scaled_sum(out, x, scale, version, stream)


@implements("softmax_cross_entropy_forward", "cuda")
def softmax_cross_entropy_forward_cuda(loss, row_losses, probs, logits, labels, block=None, stream=0,
                                       version=None):
    """``version`` one of SOFTMAX_VERSIONS; by default a warp per row for rows of a warp or more (on a GPU)."""
    n, c = _check_softmax("softmax_cross_entropy_forward", "cuda", probs, logits, labels)
    check_array("softmax_cross_entropy_forward", "row_losses", row_losses, "cuda", shape=(n,))
    _check_scalar_out("softmax_cross_entropy_forward", "loss", loss, "cuda", np.float32)
    if version is None:
        version = "warp_per_row" if c >= WARP_SIZE and not SIMULATOR else "thread_per_row"
    check_in("softmax_cross_entropy_forward", "version", version, SOFTMAX_VERSIONS)
    if version == "warp_per_row":
        _whole_warps("softmax_cross_entropy_forward", block)
        launch_1d(softmax_cross_entropy_warp_per_row_kernel, n * WARP_SIZE, block, stream)(
            row_losses, probs, logits, labels)
    else:
        launch_1d(softmax_cross_entropy_kernel, n, block, stream)(row_losses, probs, logits, labels)
    _scaled_sum(loss, row_losses, 1.0 / n, DEFAULT_SUM, stream)


@implements("softmax_cross_entropy_backward", "cuda")
def softmax_cross_entropy_backward_cuda(dlogits, probs, labels, scale, block=None, stream=0):
    n, c = _check_softmax("softmax_cross_entropy_backward", "cuda", probs, probs, labels)
    check_array("softmax_cross_entropy_backward", "dlogits", dlogits, "cuda", shape=(n, c))
    launch_1d(softmax_cross_entropy_backward_kernel, n * c, block, stream)(dlogits, probs, labels, np.float32(scale))


@implements("mse_forward", "cuda")
def mse_forward_cuda(loss, squared_error, pred, target, block=None, stream=0):
    _check_mse("cuda", loss, squared_error, pred, target)
    flat = squared_error.reshape(squared_error.size)
    launch_1d(squared_error_kernel, pred.size, block, stream)(flat, pred.reshape(pred.size),
                                                              target.reshape(target.size))
    _scaled_sum(loss, flat, 1.0 / pred.size, DEFAULT_SUM, stream)


@implements("mse_backward", "cuda")
def mse_backward_cuda(dpred, pred, target, block=None, stream=0):
    shape = check_array("mse_backward", "pred", pred, "cuda")
    check_array("mse_backward", "target", target, "cuda", shape=shape)
    check_array("mse_backward", "dpred", dpred, "cuda", shape=shape)
    launch_1d(mse_backward_kernel, pred.size, block, stream)(
        dpred.reshape(dpred.size), pred.reshape(pred.size), target.reshape(target.size), np.float32(2.0 / pred.size))


@implements("argmax_rows", "cuda")
def argmax_rows_cuda(out, x, block=None, stream=0):
    _check_argmax("cuda", out, x)
    launch_1d(argmax_rows_kernel, x.shape[0], block, stream)(out, x)


@implements("count_equal", "cuda")
def count_equal_cuda(out, a, b, accumulate=False, stream=0):
    _check_count("cuda", out, a, b)
    count_equal_kernel[1, REDUCE_THREADS, stream](out, a, b, np.int32(accumulate))


@implements("sum_of_squares", "cuda")
def sum_of_squares_cuda(out, x, stream=0):
    _check_sum_of_squares("cuda", out, x)
    blocks = max(1, min(math.ceil(x.size / REDUCE_THREADS), 2 if SIMULATOR else REDUCE_MAX_PARTIALS))
    partials = scratch("sum-of-squares partials", (blocks,))
    sum_of_squares_partials_kernel[blocks, REDUCE_THREADS, stream](partials, x)
    scaled_sum_kernel[1, REDUCE_THREADS, stream](out, partials, np.float32(1.0))
