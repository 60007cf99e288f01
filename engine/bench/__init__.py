"""``python cli.py bench``: the GPU against a multi-core CPU, measured honestly on this machine."""

from .report import print_table, save_plot
from .runner import ALL_OPS, BenchConfig, run_bench

__all__ = ["ALL_OPS", "BenchConfig", "run_bench", "print_table", "save_plot"]
