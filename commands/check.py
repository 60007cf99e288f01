"""``python cli.py check``: every kernel against its reference, every layer by gradcheck, as pass/fail."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from .common import CliError, add_device_option, console

TESTS = Path(__file__).resolve().parent.parent / "tests"

# `check` runs what it promises, found by what each test file imports: a Hypothesis property run on a backend
# (`for_all`, tests/support.py) or a layer's gradient check (`gradcheck`). A new kernel's or layer's test file is
# graded without being listed anywhere, and tests of the tool around them (CLI, docs, layout) stay out.
GRADERS = {"for_all", "gradcheck"}


def check_files(tests: Path = TESTS) -> list[Path]:
    return sorted(path for path in tests.glob("test_*.py") if GRADERS & _imported_names(path))


def _imported_names(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_text(), str(path))
    except SyntaxError:
        return set(GRADERS)  # let pytest run it and report the broken file as a failed check
    return {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "check", help="every kernel against its reference, every layer by gradcheck: pass/fail",
        description="Run the Hypothesis properties of every kernel and the gradient checks of "
                    "every layer on the chosen device and print a pass/fail table; a failure "
                    "shows the smallest failing input Hypothesis found. Exit status 1 on any "
                    "failure: run it after editing a kernel.")
    add_device_option(parser)
    parser.add_argument("--only", metavar="NAME",
                        help="only checks whose name contains NAME (e.g. gemm, maxpool, adam)")
    parser.set_defaults(run=run)


def run(args) -> int:
    import os
    import subprocess
    import tempfile
    import xml.etree.ElementTree as ET

    from engine import Device
    from hardware import cuda_probe

    device = args.device or "auto"
    dev = Device(device)  # one-line error for cuda without a GPU or the simulator
    files = check_files() if TESTS.is_dir() else []
    if not files:
        raise CliError(f"`check` runs the property tests in {TESTS}, which this installation lacks; "
                       "use a checkout of tilegrad")
    # the cuda cases carry the `gpu` marker; the cpu run takes everything else
    selection = "gpu" if dev.name == "cuda" else "not gpu"
    env = dict(os.environ)
    if dev.simulator:
        env[cuda_probe.SIMULATOR_VARIABLE] = "1"
        selection = "gpu and not slow"
    report = Path(tempfile.mkdtemp()) / "check.xml"
    cmd = [sys.executable, "-m", "pytest", *map(str, files), "-q", "-p", "no:cacheprovider",
           "-m", selection, f"--junitxml={report}", "-o", "addopts=", "--tb=short"]
    if args.only:
        cmd += ["-k", args.only]
    print(f"checking kernel properties and layer gradients on {dev!r}"
          + (f" (only {args.only!r})" if args.only else "") + " ...", file=sys.stderr)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if not report.exists():
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise CliError(f"pytest did not run: {last}")
    cases = ET.parse(report).getroot().iter("testcase")
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"tilegrad check on {dev!r}", title_justify="left")
    for column in ("check", "result", "seconds"):
        table.add_column(column)
    failures, counted, skipped_notes = [], 0, []
    for case in cases:
        name = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
        failed = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if skipped is not None:
            skipped_notes.append(f"{name}: {skipped.get('message', '')}")
            continue
        counted += 1
        result = "[red]FAIL[/red]" if failed is not None else "[green]pass[/green]"
        table.add_row(escape(name), result, f"{float(case.get('time', 0)):.2f}")
        if failed is not None:
            failures.append((name, (failed.text or failed.get("message", ""))))
    out = console()
    if counted:
        out.print(table)
    for name, text in failures:
        out.print(f"[red]FAILED {escape(name)}[/red]")
        out.print(_shorten(text), markup=False, highlight=False)
    if counted == 0:
        for note in skipped_notes:
            out.print(f"skipped {note}", markup=False, highlight=False)
        if skipped_notes:
            raise CliError(f"nothing was graded for {args.only!r}: every matching check was skipped (see above)")
        raise CliError(f"no check matched {args.only!r}" if args.only else "no checks ran")
    out.print(f"{counted - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


def _shorten(text: str, lines: int = 40) -> str:
    """The end of a failure report: Hypothesis prints the smallest failing input there."""
    body = text.strip().splitlines()
    return "\n".join(body[-lines:])
