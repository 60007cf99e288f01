"""``python cli.py check``: every kernel against its reference, every layer by gradcheck, as pass/fail."""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .common import CliError, add_device_option, console

TESTS = Path(__file__).resolve().parent.parent / "tests"

# `check` runs what it promises, found by what each test file imports: a Hypothesis property run on a backend
# (`for_all`, tests/support.py) or a layer's gradient check (`gradcheck`). A new kernel's or layer's test file is
# graded without being listed anywhere, and tests of the tool around them (CLI, docs, layout) stay out.
GRADERS = {"for_all", "gradcheck"}
EXERCISES = "test_exercises.py"
MESSAGE_LINES = 6  # of a failure's message, by default; --full shows pytest's whole report


def check_files(tests: Path = TESTS) -> list[Path]:
    return sorted(path for path in tests.glob("test_*.py") if GRADERS & _imported_names(path))


def _imported_names(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_text(), str(path))
    except SyntaxError:
        return set(GRADERS)  # let pytest run it and report the broken file as a failed check
    return {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}


# -- names ---------------------------------------------------------------------------------------------
@dataclass
class Check:
    """One test function: ``name`` is what ``--only`` takes (the function's name without ``test_``)."""
    name: str
    file: Path
    function: str
    kind: str  # exercise, property, gradcheck or test

    @property
    def node(self) -> str:
        return f"{self.file}::{self.function}"


def checks(files) -> list[Check]:
    """Every check in ``files``, read from the source (nothing imported: fast, no numba)."""
    found = []
    for path in files:
        try:
            tree = ast.parse(path.read_text(), str(path))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                kind = ("exercise" if path.name == EXERCISES else "property" if "for_all" in used
                        else "gradcheck" if "gradcheck" in used else "test")
                found.append(Check(node.name.removeprefix("test_"), path, node.name, kind))
    return found


def exact(only: str, known: list[Check]) -> list[Check]:
    """The checks named exactly ``only`` (case-insensitive, ``test_`` prefix optional); [] when none is."""
    key = only.strip().lower().removeprefix("test_")
    return [c for c in known if c.name.lower() == key]


def close_names(only: str, names) -> list[str]:
    import difflib

    key = only.strip().lower().removeprefix("test_")
    names = sorted(set(names))
    near = difflib.get_close_matches(key, names, n=5, cutoff=0.6)
    return near or [n for n in names if any(part and part in n for part in key.split("_") if len(part) > 2)][:5]


# -- failures ------------------------------------------------------------------------------------------
EXAMPLE_HEADS = ("Falsifying example:", "Failing test case:", "Falsifying explicit example:")
STOPS = ("assert ", "You can reproduce", "Explanation:", "+ Exception Group", "Unreliable test timings")
SHORT_LOCATION = re.compile(r"^(?P<path>\S.*?):(?P<line>\d+): in (?P<function>\S+)$")  # pytest --tb=short
LONG_LOCATION = re.compile(r'^\s*File "(?P<path>.+)", line (?P<line>\d+), in (?P<function>\S+)$')  # Python's


@dataclass
class Failure:
    """What a student needs from a failure report, in a few lines."""
    message: list[str] = field(default_factory=list)  # the error, without pytest's assert introspection
    inputs: str | None = None  # the smallest failing example Hypothesis found
    raised_at: str | None = None  # where the error was raised, when not in the test itself
    more: int = 0  # message lines left out


def summarize(text: str) -> list[Failure]:
    """Read pytest's short report of one failed check (``--tb=short``): one ``Failure``, or one per distinct
    failure when Hypothesis found several (pytest then prints Python's traceback of an exception group)."""
    lines = text.splitlines()
    if any(line.lstrip().startswith("+ Exception Group Traceback") for line in lines[:3]):
        blocks = _sub_exceptions(lines)
        if blocks:
            return [_from_traceback(block) for block in blocks]
    errors = [line[4:] if line.startswith("E   ") else "" for line in lines if line == "E" or line.startswith("E ")]
    if not errors:  # no `E` lines (a collection error, say): its last lines
        errors = [line for line in lines if line.strip()][-MESSAGE_LINES:]
    return [_failure(errors, _raised_at(lines, SHORT_LOCATION))]


def _sub_exceptions(lines: list[str]) -> list[list[str]]:
    """The tracebacks inside an exception group's report, their ``|`` margins removed."""
    blocks, block = [], None
    for line in lines:
        if re.match(r"^\s*\+[-+]*-+ (\d+|\.\.\.)", line) or re.match(r"^\s*\+-+\s*$", line):
            block = [] if re.search(r" \d+ -", line) else None
            if block is not None:
                blocks.append(block)
        elif block is not None:
            block.append(re.sub(r"^\s*\| ?", "", line))
    return blocks


def _from_traceback(lines: list[str]) -> Failure:
    """A failure from Python's own traceback format: the message starts at the first unindented line."""
    start = next((i for i, line in enumerate(lines) if line and not line[0].isspace() and not line.startswith(
        ("Traceback", "During handling", "The above exception"))), len(lines))
    return _failure(lines[start:], _raised_at(lines[:start], LONG_LOCATION))


def _failure(errors: list[str], raised_at: str | None) -> Failure:
    failure, message = Failure(raised_at=raised_at), []
    for i, line in enumerate(errors):
        if line.startswith(EXAMPLE_HEADS):
            failure.inputs = _example(errors[i:])
            break
        if line.startswith(STOPS) or line == "assert":
            heads = [j for j in range(i, len(errors)) if errors[j].startswith(EXAMPLE_HEADS)]
            failure.inputs = _example(errors[heads[0]:]) if heads else None
            break  # what follows is pytest's introspection of the assert, or Hypothesis' advice
        message.append(line)
    while message and not message[-1].strip():
        message.pop()
    if message:
        message[0] = message[0].removeprefix("AssertionError: ")
    failure.message, failure.more = message[:MESSAGE_LINES], max(0, len(message) - MESSAGE_LINES)
    return failure


def _example(lines: list[str]) -> str:
    """``Failing test case: check(`` ``c={'n': 1, 'h': 1},  # or any other generated value`` ``)`` as ``n=1, h=1``."""
    source, call = "", None
    for line in [lines[0].split(":", 1)[1], *lines[1:]]:
        code = "" if line.strip().startswith("#") else line.split("  #", 1)[0].strip()
        source = f"{source} {code}".strip()
        try:
            call = ast.parse(source, mode="eval").body
            break
        except SyntaxError:
            continue
    if not isinstance(call, ast.Call):
        return re.sub(r"\s+", " ", lines[0].split(":", 1)[1]).strip()
    if len(call.keywords) == 1 and isinstance(call.keywords[0].value, ast.Dict):  # one dict of parameters
        pairs = call.keywords[0].value
        if all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in pairs.keys):
            return ", ".join(f"{k.value}={ast.unparse(v)}" for k, v in zip(pairs.keys, pairs.values))
    return ", ".join([ast.unparse(a) for a in call.args] + [f"{k.arg}={ast.unparse(k.value)}" for k in call.keywords])


def _raised_at(lines: list[str], location: re.Pattern) -> str | None:
    """The innermost traceback entry outside the installed packages and Python, when it is not in a test file:
    the student's kernel or one of tilegrad's."""
    for line in reversed(lines):
        found = location.match(line)
        if not found or "site-packages" in found["path"] or "/lib/python" in found["path"] \
                or found["path"].startswith("<"):
            continue
        path = Path(found["path"])
        if path.parent.name == "tests" and path.name.startswith(("test_", "support", "conftest")):
            return None  # the test's own lines: the message says what it checked
        return f"{found['path']}:{found['line']} in {found['function']}"
    return None


def show_failure(out, name: str, text: str, full: bool) -> None:
    from rich.text import Text

    out.print(Text(f"FAILED {name}", style="red"))
    if full:  # plain text: `file.py:100:` is no emoji and `[cpu]` no markup
        out.print(text.rstrip(), markup=False, emoji=False, highlight=False, soft_wrap=True)
        return
    failures = summarize(text)
    lines = []
    for number, failure in enumerate(failures, 1):
        if len(failures) > 1:
            lines.append(f"-- distinct failure {number} of {len(failures)}:")
        lines += failure.message
        if failure.more:
            lines.append(f"... ({failure.more} more lines with --full)")
        if failure.raised_at:
            lines.append(f"raised at {failure.raised_at}")
        if failure.inputs:
            lines.append(f"smallest failing input: {failure.inputs}")
    for line in lines or ["(no message: --full shows pytest's report)"]:
        out.print("  " + line, markup=False, emoji=False, highlight=False, soft_wrap=True)


# -- the command ---------------------------------------------------------------------------------------
def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "check", help="every kernel against its reference, every layer by gradcheck: pass/fail",
        description="Run the Hypothesis properties of every kernel, the gradient checks of every layer and the "
                    "course's exercise graders on the chosen device and print a pass/fail table; each failure "
                    "shows its message (wrong or never-written indices, the launch shape), the smallest failing "
                    "input Hypothesis found and where the error was raised. Exit status 1 on any failure: run it "
                    "after editing a kernel.")
    add_device_option(parser)
    parser.add_argument("--only", metavar="NAME",
                        help="only the check named NAME if there is one (exactly, e.g. leaky_relu runs that exercise "
                             "and not leaky_relu_layer), else every check whose name contains NAME (e.g. gemm, "
                             "maxpool, adam); --list shows the names")
    parser.add_argument("--list", action="store_true",
                        help="list the checks (with --only: the ones it selects) and how many cases each runs on "
                             "this device, without running them")
    parser.add_argument("--full", "--verbose", "-v", dest="full", action="store_true",
                        help="show pytest's whole report of each failure (traceback, assertion introspection, "
                             "Hypothesis' reproduce line) instead of its few key lines")
    parser.add_argument("--sanitize", action="store_true",
                        help="run every check under the simulator's sanitizer (races, barrier divergence, bounds, "
                             "uninitialized reads): any error or warning fails the check, leading with the finding "
                             "(needs --device sim)")
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
    known = checks(files)
    only = getattr(args, "only", None)
    chosen = exact(only, known) if only else []
    # the cuda cases carry the `gpu` marker; the cpu run takes everything else
    selection = "gpu" if dev.name == "cuda" else "not gpu"
    env = dict(os.environ)
    if dev.simulator:
        env[cuda_probe.SIMULATOR_VARIABLE] = "1"
        selection = "gpu and not slow"
    if getattr(args, "sanitize", False):  # tests/conftest.py then runs each check under sanitizer.sanitize()
        if not dev.simulator:
            raise CliError("--sanitize watches CUDA kernels in Numba's simulator: add --device sim")
        env["TILEGRAD_SANITIZE"] = "1"
    cmd = [sys.executable, "-m", "pytest", *([c.node for c in chosen] or map(str, files)), "-q",
           "-p", "no:cacheprovider", "-m", selection, "-o", "addopts="]
    if only and not chosen:
        cmd += ["-k", only]
    if getattr(args, "list", False):
        return _list(cmd, env, known, dev, only, chosen)

    report = Path(tempfile.mkdtemp()) / "check.xml"
    cmd += [f"--junitxml={report}", "--tb=short"]
    what = f" (only {chosen[0].name})" if chosen else f" (only names containing {only!r})" if only else ""
    print(f"checking kernel properties and layer gradients on {dev!r}{what} ...", file=sys.stderr)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if not report.exists():
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise CliError(f"pytest did not run: {last}")
    cases = ET.parse(report).getroot().iter("testcase")
    from rich.table import Table
    from rich.text import Text

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
        result = Text("FAIL", style="red") if failed is not None else Text("pass", style="green")
        table.add_row(Text(name), result, f"{float(case.get('time', 0)):.2f}")
        if failed is not None:
            failures.append((name, (failed.text or failed.get("message", ""))))
    out = console()
    if counted:
        out.print(table)
    for name, text in failures:
        show_failure(out, name, text, getattr(args, "full", False))
    if counted == 0:
        for note in skipped_notes:
            out.print(f"skipped {note}", markup=False, emoji=False, highlight=False)
        if skipped_notes:
            raise CliError(f"nothing was graded for {only!r}: every matching check was skipped (see above)")
        raise CliError(_nothing_matched(only, chosen, known, dev))
    out.print(f"{counted - len(failures)} passed, {len(failures)} failed")
    if failures and not getattr(args, "full", False):
        out.print("(add --full for pytest's whole report of each failure)", markup=False, emoji=False)
    return 1 if failures else 0


def _nothing_matched(only, chosen, known, dev) -> str:
    if not only:
        return "no checks ran"
    if chosen:
        return (f"check {chosen[0].name!r} has no case that runs on {dev!r} "
                "(`check --list` shows what each device runs)")
    near = close_names(only, [c.name for c in known])
    return (f"no check matched {only!r}" + (f"; close names: {', '.join(near)}" if near else "")
            + " (`check --list` shows them all)")


def _list(cmd, env, known: list[Check], dev, only, chosen) -> int:
    """The checks --only selects (all without it), from pytest's collection: nothing runs, nothing compiles."""
    import subprocess

    proc = subprocess.run([*cmd, "--collect-only"], env=env, capture_output=True, text=True)
    cases: dict[tuple[str, str], int] = {}
    for line in proc.stdout.splitlines():
        if "::" in line and not line.startswith(" "):
            path, function = line.split("::")[0], line.split("::")[-1].split("[")[0]
            key = (Path(path).name, function)
            cases[key] = cases.get(key, 0) + 1
    if proc.returncode not in (0, 5) and not cases:
        last = (proc.stdout.strip() or proc.stderr.strip() or f"exit {proc.returncode}").splitlines()[-1]
        raise CliError(f"pytest could not collect the checks: {last}")
    shown = chosen if chosen else [c for c in known if (c.file.name, c.function) in cases] if only else known
    if not shown:
        raise CliError(_nothing_matched(only, chosen, known, dev))
    width = max(len(c.name) for c in shown) + 2
    print(f"{'check':{width}}{'kind':11}{'cases here':12}file")
    for c in shown:
        n = cases.get((c.file.name, c.function), 0)
        print(f"{c.name:{width}}{c.kind:11}{(str(n) if n else '-'):12}{c.file.name}")
    print(f"{len(shown)} check{'s' * (len(shown) != 1)}; 'cases here' counts the cases that run on {dev!r} "
          "('-': none, try another --device). Run one with: python cli.py check --only NAME", file=sys.stderr)
    return 0
