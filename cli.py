#!/usr/bin/env python
"""tilegrad's command line: learn and measure how deep learning runs on a GPU and on a multi-core CPU.

    python cli.py bench --quick             GPU vs multi-core CPU: every op, timed, checked, vs ceilings
    python cli.py train --model lenet       train a model on the bundled digits (or MNIST) with progress
    python cli.py sample --checkpoint F     text from a character language model (train --model charlm)
    python cli.py predict --checkpoint F    classes and probabilities from a checkpoint (--dataset or --input)
    python cli.py check [--only NAME]       every kernel against its reference, every layer by gradcheck
    python cli.py profile --model lenet     where one training step's time goes, layer by layer
    python cli.py inspect [KERNEL] [--ptx]  registers, shared and local memory of each CUDA kernel (sm_90)
    python cli.py info                      what this machine has: devices, simulator, versions, BLAS
    python cli.py sanitize SCRIPT [ARGS]    a script's CUDA kernels in the simulator: races, barriers, bounds
    python cli.py summary --model lstm      a model's layers, output shapes and parameter counts
    python cli.py handout DIR               a course's student folder: chapters, exercise stubs, graders

--device cpu|cuda|sim|auto (before or after the subcommand) picks where to compute; `sim` runs the
CUDA kernels in Numba's simulator (correct, very slow, never timed as if it were a GPU).
"""

from __future__ import annotations

import argparse
import os
import sys

# each command module imports only the standard library until it runs: numba loads after prepare()
from commands import bench, check, handout, info, inspect_kernels, predict, profile, sample, sanitize, train
from commands import summary as summary_command
from commands.common import CliError, add_device_option, prepare, report_failure

# in the order --help lists them
COMMANDS = (info, inspect_kernels, bench, train, sample, predict, check, profile, sanitize, summary_command, handout)


def version() -> str:
    """The installed distribution's version (a source checkout that was never installed says so)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return f"tilegrad {installed_version('tilegrad')}"
    except PackageNotFoundError:
        return "tilegrad (source checkout, not installed: pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    # the installed `tilegrad` command and `python cli.py` are the same program; --help names the one used
    prog = "tilegrad" if os.path.basename(sys.argv[0]) == "tilegrad" else "python cli.py"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=version())
    add_device_option(parser, before_command=True,
                      help="where to compute (default: auto = cuda with a real GPU, else cpu); "
                           "sim = CUDA kernels in Numba's simulator")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        prepare(args.device)
        return args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CliError, ValueError, TypeError, RuntimeError, OSError, ArithmeticError) as exc:
        report_failure(exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
