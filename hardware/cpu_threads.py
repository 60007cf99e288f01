"""CPU thread defaults that survive a busy machine, set in the environment before Numba starts its pool.

Numba's OpenMP workers (GNU libgomp) spin on their core for a while after each parallel region, waiting
for the next one. On an idle machine that saves a wake-up; when another process needs that core, the
spinning worker and the other process share it, every region waits for the slowest worker, and a training
step of many small regions runs tens of times slower than on one thread (docs/benchmarks.md). So tilegrad's
default is a *passive* wait (workers sleep at once), the OpenMP layer first, and small loops on the calling
thread (``cuda_kernels/threads.py``: ``serial_below_grain``).

libgomp reads ``OMP_WAIT_POLICY`` and ``GOMP_SPINCOUNT`` once, when Numba loads it (the first parallel loop),
and Numba reads ``NUMBA_*`` when it is imported: :func:`apply_thread_defaults` runs before either, from
``cuda_kernels`` and the CLI. A setting the user gave is kept: ``OMP_WAIT_POLICY=active`` or any
``GOMP_SPINCOUNT`` means spin as asked, and ``NUMBA_THREADING_LAYER`` (or ``_PRIORITY``) chooses the layer.
Standard library only (the ground floor).
"""

from __future__ import annotations

import os

WAIT_POLICY = "OMP_WAIT_POLICY"
SPIN_COUNT = "GOMP_SPINCOUNT"
LAYER = "NUMBA_THREADING_LAYER"
LAYER_PRIORITY = "NUMBA_THREADING_LAYER_PRIORITY"
# OpenMP first (the layer measured), then TBB when installed, then Numba's own workqueue (Numba's default
# order puts TBB first, so a TBB someone else installed would change the layer under the user's feet).
DEFAULTS = {WAIT_POLICY: "PASSIVE", LAYER_PRIORITY: "omp tbb workqueue"}
# Variables that mean the user chose the wait themselves: then tilegrad sets no wait policy at all.
USER_WAIT_CHOICES = (WAIT_POLICY, SPIN_COUNT, "KMP_BLOCKTIME")
# Variables that mean the user chose the layer themselves.
USER_LAYER_CHOICES = (LAYER, LAYER_PRIORITY)


def apply_thread_defaults(environ=None) -> dict[str, str]:
    """Put tilegrad's thread defaults into ``environ`` (default ``os.environ``) where the user set nothing of
    their own; returns the variables it set (empty when every choice was the user's)."""
    environ = os.environ if environ is None else environ
    chosen = {}
    if not any(environ.get(name) for name in USER_WAIT_CHOICES):
        chosen[WAIT_POLICY] = DEFAULTS[WAIT_POLICY]
    if not any(environ.get(name) for name in USER_LAYER_CHOICES):
        chosen[LAYER_PRIORITY] = DEFAULTS[LAYER_PRIORITY]
    environ.update(chosen)
    return chosen


def wait_policy(environ=None) -> str:
    """How the pool's workers wait between loops, in words: "passive" (sleep at once), "active" (spin), or
    "spin N" (GOMP_SPINCOUNT), with "(tilegrad's default)" or "(set by the user)"."""
    environ = os.environ if environ is None else environ
    whose = "tilegrad's default" if _SET_HERE.get(WAIT_POLICY) == environ.get(WAIT_POLICY) else "set by the user"
    if environ.get(SPIN_COUNT):
        return f"spin {environ[SPIN_COUNT]} (GOMP_SPINCOUNT, set by the user)"
    policy = (environ.get(WAIT_POLICY) or "").lower()
    if policy in ("passive", "active"):
        return f"{policy} ({whose})"
    return "active for a while, then sleep (libgomp's default)"


_SET_HERE: dict[str, str] = {}  # what apply_for_this_process set in this process


def apply_for_this_process() -> dict[str, str]:
    """:func:`apply_thread_defaults` on ``os.environ``, once per process, remembering what it set (so
    :func:`wait_policy` can say whose setting it is)."""
    if not _SET_HERE.get("_done"):
        _SET_HERE.update(apply_thread_defaults())
        _SET_HERE["_done"] = "1"
    return {k: v for k, v in _SET_HERE.items() if k != "_done"}


def environment_without_our_defaults(environ=None) -> dict[str, str]:
    """A copy of ``environ`` (default ``os.environ``) without the thread defaults this process put there: what a
    peer (PyTorch in the bench) must run under to be measured with its own defaults, not tilegrad's."""
    environ = os.environ if environ is None else environ
    ours = {k: v for k, v in _SET_HERE.items() if k != "_done"}
    return {k: v for k, v in environ.items() if ours.get(k) != v}
