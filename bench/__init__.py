"""``python cli.py bench``: the GPU against a multi-core CPU, measured honestly on this machine.

Imported lazily so that the peer worker (``python -m bench.peers``) runs in a process that never
loads numba: a second OpenMP runtime spinning beside PyTorch's would slow the peer down unfairly.
"""

from importlib import import_module

_EXPORTS = {"ALL_OPS": "runner", "BenchConfig": "runner", "run_bench": "runner", "print_table": "report",
            "save_plot": "report"}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f"bench.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
