"""What every command shares: the one-line error, the ``--device`` option, the console and JSON output."""

from __future__ import annotations

import argparse
import json
import os
import sys

DEVICE_CHOICES = ("auto", "cpu", "cuda", "sim")
DEVICE_HELP = "where to compute (default auto: cuda with a real GPU, else cpu); sim = the CUDA simulator"
MODEL_CHOICES = ("mlp", "lenet", "rnn", "lstm", "gru", "charlm")


class CliError(Exception):
    """A problem to report in one line, with a non-zero exit status."""


def add_device_option(parser: argparse.ArgumentParser, help: str = DEVICE_HELP, extra_choices: tuple = (),
                      before_command: bool = False) -> None:
    """``--device``, accepted before the command (the top parser) and after it (each command's parser).

    A command's own ``--device`` defaults to SUPPRESS: it sets ``args.device`` only when given, so it
    never overwrites a ``--device`` given before the command with a default."""
    parser.add_argument("--device", choices=DEVICE_CHOICES + tuple(extra_choices),
                        default=None if before_command else argparse.SUPPRESS, help=help)


THREADS_HELP = ("CPU threads for the parallel loops (default: every core; at most the pool's size, NUMBA_NUM_THREADS). "
                "On a machine where another program keeps a core busy, --threads 1 can be faster")


def add_threads_option(parser: argparse.ArgumentParser, help: str = THREADS_HELP) -> None:
    """``--threads N``: how many CPU threads tilegrad's parallel loops use (``use_threads`` applies it)."""
    parser.add_argument("--threads", type=int, default=None, metavar="N", help=help)


def use_threads(threads: int | None) -> str:
    """Apply ``--threads`` (when given: 1 .. the pool's size, else one CliError) and return the run header's
    CPU part, e.g. "2 CPU threads (passive wait, omp layer)"."""
    from cuda_kernels.threads import describe_threads, set_threads

    if threads is not None:
        try:
            set_threads(threads)
        except ValueError as exc:
            raise CliError(f"--{exc}") from None
    return describe_threads()


def prepare(device: str | None) -> None:
    """Runs before numba is imported: the simulator can only be chosen now."""
    from hardware import cuda_probe
    from hardware.cpu_threads import apply_for_this_process

    apply_for_this_process()  # the thread pool's wait policy and layer, read when numba loads its pool
    if device == "sim":
        cuda_probe.enable_simulator()
    cuda_probe.ensure_numba_cache_dir()


def console():
    """A console for tables: the terminal's width, or 100 columns when the output is piped (every table
    outside bench and check fits 100 columns)."""
    from rich.console import Console

    probe = Console()
    return probe if probe.is_terminal else Console(width=100)


def check_output_file(option: str, path, *, suffixes: tuple[str, ...] = (), replace: bool = False,
                      kind: str | None = None, force: bool = False, same_run=None) -> None:
    """Before any work: ``path`` (given as ``option``) can be written, or one ``CliError`` says why not.

    The rule is ``engine.outputs``' for every file tilegrad writes: its folder must exist (a typo in a folder
    name is an error, not a new folder); ``kind`` (checkpoint, predictions, json, plot): an existing file is
    replaced only when it holds the same kind (a checkpoint: of the same run, ``same_run``), unless ``force``.
    ``suffixes``: the accepted extensions, without dots (the first ones are named in the message)."""
    from engine import outputs

    try:
        if kind is not None:
            outputs.check_target(path, kind, option, force=force, same_run=same_run, suffixes=suffixes)
        else:
            outputs.check_suffix(path, option, suffixes)
            outputs.check_folder(path, option, replace=replace)
    except outputs.OutputError as exc:
        raise CliError(str(exc)) from None


def check_finite(option: str, value, *, minimum=None, above=None, below=None, maximum=None) -> None:
    """A number read from the command line is finite and in range, or one ``CliError`` naming ``option``."""
    import math

    if value is None:
        return
    bounds = [f">= {minimum:g}" if minimum is not None else "", f"> {above:g}" if above is not None else "",
              f"< {below:g}" if below is not None else "", f"<= {maximum:g}" if maximum is not None else ""]
    wanted = " and ".join(b for b in bounds if b)
    if (above == 0 or (minimum == 1 and not isinstance(value, float))) and wanted in ("> 0", ">= 1"):
        wanted = "positive"
    if isinstance(value, float) and not math.isfinite(value):
        raise CliError(f"{option} must be a finite number{f' ({wanted})' if wanted else ''}, got {value}")
    if (minimum is not None and value < minimum) or (above is not None and value <= above) or \
            (below is not None and value >= below) or (maximum is not None and value > maximum):
        raise CliError(f"{option} must be {wanted}, got {value:g}" if isinstance(value, float) else
                       f"{option} must be {wanted}, got {value}")


def write_json(path, data) -> None:
    """``data`` as JSON, written atomically (engine.outputs); the folder must exist (checked before the work)."""
    from engine import outputs

    text = json.dumps(data, indent=1, default=float)
    outputs.write_atomic(path, lambda f: f.write(text), mode="w")


def report_failure(exc) -> None:
    """One line; under MPI, the failing rank says it once and stops every other rank."""
    from engine.distributed import SIZE_VARIABLES

    if any(os.environ.get(name, "1") not in ("", "1") for name in SIZE_VARIABLES):
        import time

        from engine.distributed import get_world

        world = get_world()
        if not world.is_root:  # an error every rank hits is shown once, by rank 0, which stops them all
            time.sleep(1.0)
        print(f"error (rank {world.rank} of {world.size}): {exc}", file=sys.stderr, flush=True)
        time.sleep(0.5)  # the launcher forwards output asynchronously: let the line leave before the abort
        world.abort(1)
        os._exit(1)
    print(f"error: {exc}", file=sys.stderr)
