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
    """A console for tables: the terminal's width, or 160 columns when the output is piped."""
    from rich.console import Console

    probe = Console()
    return probe if probe.is_terminal else Console(width=160)


def check_output_file(option: str, path, *, suffixes: tuple[str, ...] = (), replace: bool = False) -> None:
    """Before any work: ``path`` (given as ``option``) can be written, or one ``CliError`` says why not.

    Its folder must exist (a typo in a folder name is an error, not a new folder). ``replace``: the file
    is written as a temporary file in its folder and renamed over the old one (checkpoints), so the
    folder must be writable; otherwise an existing file is written in place (so ``/dev/stdout`` works).
    ``suffixes``: the accepted extensions, without dots (the first ones are named in the message)."""
    from pathlib import Path

    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise CliError(f"{option} {path}: that is a folder; give a file name")
    if suffixes and target.suffix.lower().lstrip(".") not in suffixes:
        what = f"'{target.suffix}' is not a format it writes" if target.suffix else "the name has no extension"
        others = f" (also .{', .'.join(suffixes[3:])})" if suffixes[3:] else ""
        raise CliError(f"{option} {path}: {what}; end the name in .{', .'.join(suffixes[:3])}{others}")
    if not folder.is_dir():
        what = f"{folder} is a file, not a folder" if folder.exists() else f"the folder {folder} does not exist"
        raise CliError(f"{option} {path}: {what}")
    if target.exists() and not replace:
        if not os.access(target, os.W_OK):
            raise CliError(f"{option} {path}: the file is not writable")
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise CliError(f"{option} {path}: no permission to write in the folder {folder}")


def write_json(path, data) -> None:
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1, default=float))


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
