"""``python cli.py check``: every kernel against its reference, every layer by gradcheck, as pass/fail."""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .common import CliError, add_device_option, check_output_file

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
                or found["path"].startswith("<") or "sanitizer" in Path(found["path"]).parts[:-1]:
            continue  # (the sanitizer's checks raise inside it: the kernel's line that called it is the place)
        path = Path(found["path"])
        if path.parent.name == "tests" and path.name.startswith(("test_", "support", "conftest")):
            return None  # the test's own lines: the message says what it checked
        return f"{found['path']}:{found['line']} in {found['function']}"
    return None


def failure_lines(text: str) -> list[str]:
    """A failure's few lines: the message, where it was raised, the smallest failing input."""
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
    return lines or ["(no message: --full shows pytest's report)"]


# -- results -------------------------------------------------------------------------------------------
PASS, FAIL, NOT_ATTEMPTED, SKIPPED = "pass", "FAIL", "not attempted", "skipped"
NOT_ATTEMPTED_MARK = "not attempted yet"  # how tests/test_exercises.py skips an untouched stub
WIDTH = 100  # every table fits 100 columns; --wide prints every column whole
POINTS = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "exercises" / "points.json"
FORMATS = ("text", "json", "junit", "gradescope")


@dataclass
class Result:
    """One case of one check, as pytest's JUnit report gave it."""
    check: str  # the check's name, what --only takes
    case: str  # the parametrization ('cpu', 'cuda-sim', ...), '' when none
    kind: str
    file: str
    status: str  # PASS, FAIL, NOT_ATTEMPTED or SKIPPED
    seconds: float
    report: str  # pytest's short report of a failure, or the reason of a skip

    @property
    def label(self) -> str:
        return f"{self.check}[{self.case}]" if self.case else self.check

    def feedback(self) -> list[str]:
        if self.status == FAIL:
            return failure_lines(self.report)
        return [self.report] if self.report else []


def read_report(path: Path, known: list[Check]) -> list[Result]:
    import xml.etree.ElementTree as ET

    kinds = {(c.file.name, c.function): c.kind for c in known}
    results = []
    for case in ET.parse(path).getroot().iter("testcase"):
        file = case.get("classname", "").split(".")[-1] + ".py"
        name = case.get("name", "")
        function, _, param = name.partition("[")
        failed = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if failed is not None:
            status, report = FAIL, failed.text or failed.get("message", "")
        elif skipped is not None:
            report = skipped.get("message", "")
            status = NOT_ATTEMPTED if report.startswith(NOT_ATTEMPTED_MARK) else SKIPPED
        else:
            status, report = PASS, ""
        results.append(Result(function.removeprefix("test_"), param.rstrip("]"), kinds.get((file, function), "test"),
                              file, status, float(case.get("time", 0) or 0), report))
    return results


def not_attempted(results: list[Result]) -> list[str]:
    """Exercises whose every case that ran is an untouched stub."""
    by_check: dict[str, set[str]] = {}
    for r in results:
        by_check.setdefault(r.check, set()).add(r.status)
    return sorted(name for name, statuses in by_check.items() if statuses == {NOT_ATTEMPTED})


def points_table(path: Path = POINTS) -> dict[str, float]:
    """The points of each exercise, from the instructor-editable table (keys starting with '_' are notes)."""
    import json

    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"the points table {path} cannot be read: {exc}") from None
    bad = [k for k, v in table.items() if not k.startswith("_") and (not isinstance(v, (int, float)) or v < 0)]
    if bad:
        raise CliError(f"the points table {path}: {bad[0]!r} must be a number of points >= 0")
    return {k: float(v) for k, v in table.items() if not k.startswith("_")}


def text_table(results: list[Result], wide: bool) -> tuple[list[str], bool]:
    """The pass/fail table as lines (and whether a name was cut to fit ``WIDTH`` columns)."""
    status_width, seconds_width = max(len(NOT_ATTEMPTED), 6), 8
    if wide:
        columns = [("file", [r.file for r in results]), ("check", [r.check for r in results]),
                   ("case", [r.case or "-" for r in results]), ("kind", [r.kind for r in results])]
        widths = [max(len(title), *map(len, values)) for title, values in columns]
        lines = ["  ".join(t.ljust(w) for (t, _), w in zip(columns, widths))
                 + f"  {'result':{status_width}}  {'seconds':>{seconds_width}}"]
        for i, r in enumerate(results):
            lines.append("  ".join(values[i].ljust(w) for (_, values), w in zip(columns, widths))
                         + f"  {r.status:{status_width}}  {r.seconds:>{seconds_width}.2f}")
        return lines, False
    room = WIDTH - status_width - seconds_width - 4
    width = min(room, max(len("check"), *(len(r.label) for r in results)))
    cut = False
    lines = [f"{'check':{width}}  {'result':{status_width}}  {'seconds':>{seconds_width}}"]
    for r in results:
        label = r.label
        if len(label) > width:
            label, cut = label[:width - 1] + "~", True
        seconds = f"{r.seconds:.2f}" if r.status in (PASS, FAIL) else "-"
        lines.append(f"{label:{width}}  {r.status:{status_width}}  {seconds:>{seconds_width}}")
    return lines, cut


def junit_xml(results: list[Result], suite: str) -> str:
    """JUnit XML (GitHub Classroom, CI): one testcase per case; an untouched stub is a failure (no credit)."""
    import xml.etree.ElementTree as ET

    failures = sum(r.status in (FAIL, NOT_ATTEMPTED) for r in results)
    skipped = sum(r.status == SKIPPED for r in results)
    seconds = f"{sum(r.seconds for r in results):.3f}"
    counts = {"tests": str(len(results)), "failures": str(failures), "errors": "0", "skipped": str(skipped),
              "time": seconds}
    root = ET.Element("testsuites", {"name": "tilegrad check", **counts})
    testsuite = ET.SubElement(root, "testsuite", {"name": suite, **counts})
    for r in results:
        case = ET.SubElement(testsuite, "testcase", {"classname": r.file.removesuffix(".py"), "name": r.label,
                                                     "time": f"{r.seconds:.3f}"})
        lines = r.feedback()
        if r.status in (FAIL, NOT_ATTEMPTED):
            element = ET.SubElement(case, "failure", {"message": lines[0] if lines else r.status,
                                                      "type": "NotAttempted" if r.status == NOT_ATTEMPTED
                                                      else "AssertionError"})
            element.text = "\n".join(lines)
        elif r.status == SKIPPED:
            ET.SubElement(case, "skipped", {"message": lines[0] if lines else ""})
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def gradescope_json(results: list[Result], points: dict[str, float], seconds: float, summary: str) -> dict:
    """Gradescope's results.json: one test per check, its points shared equally among the cases that ran
    (a CPU twin and a CUDA kernel each earn half); checks outside the points table are worth 0."""
    tests = []
    for name in dict.fromkeys(r.check for r in results):
        cases = [r for r in results if r.check == name and r.status != SKIPPED]
        if not cases:
            continue
        max_score = points.get(name, 0.0)
        passed = sum(r.status == PASS for r in cases)
        output = []
        for r in cases:
            if r.status == PASS:
                output.append(f"{r.label}: passed")
            else:
                output.append(f"{r.label}: {'failed' if r.status == FAIL else NOT_ATTEMPTED_MARK}")
                output += ["  " + line for line in r.feedback()]
        tests.append({"name": name, "score": round(max_score * passed / len(cases), 4), "max_score": max_score,
                      "status": "passed" if passed == len(cases) else "failed", "output": "\n".join(output),
                      "visibility": "visible"})
    return {"score": round(sum(t["score"] for t in tests), 4), "execution_time": round(seconds, 1),
            "output": summary, "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


# -- the command ---------------------------------------------------------------------------------------
def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "check", help="every kernel against its reference, every layer by gradcheck: pass/fail",
        description="Run the Hypothesis properties of every kernel, the gradient checks of every layer and the "
                    "course's exercise graders on the chosen device and print a pass/fail table; each failure "
                    "shows its message (wrong or never-written indices, the launch shape), the smallest failing "
                    "input Hypothesis found (after shrinking) and where the error was raised; the summary names "
                    "the exercises not attempted yet. Exit status 1 on any failure: run it after editing a "
                    "kernel. For a course: --exercises grades every part of every exercise in one run, "
                    "--format gradescope|junit|json writes grades a platform reads, and TILEGRAD_EXERCISES=DIR "
                    "grades the exercise files in DIR instead of docs/tutorials/exercises.")
    add_device_option(parser)
    parser.add_argument("--only", metavar="NAME",
                        help="only the check named NAME if there is one (exactly, e.g. leaky_relu runs that exercise "
                             "and not leaky_relu_layer), else every check whose name contains NAME (e.g. gemm: "
                             "gemm_tiled and every GEMM property); --list shows the names")
    parser.add_argument("--exercises", action="store_true",
                        help="only the course's exercise graders, every part in one run: the CPU twins and the "
                             "CUDA kernels (on the GPU, else in the simulator); --device narrows it to one")
    parser.add_argument("--list", action="store_true",
                        help="list the checks (with --only: the ones it selects) and how many cases each runs on "
                             "this device, without running them")
    parser.add_argument("--full", "--verbose", "-v", dest="full", action="store_true",
                        help="show pytest's whole report of each failure (traceback, assertion introspection, "
                             "Hypothesis' reproduce line) instead of its few key lines")
    parser.add_argument("--wide", action="store_true",
                        help=f"print every column whole (file, check, case, kind), wider than {WIDTH} columns")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="text (the table), json (every case with its feedback lines), junit (JUnit XML: "
                             "GitHub Classroom, CI) or gradescope (results.json, points from "
                             "docs/tutorials/exercises/points.json)")
    parser.add_argument("--output", metavar="FILE",
                        help="write the report to FILE instead of standard output (e.g. "
                             "/autograder/results/results.json)")
    parser.add_argument("--sanitize", action="store_true",
                        help="run every check under the simulator's sanitizer (races, barrier divergence, bounds, "
                             "uninitialized reads): any error or warning fails the check, leading with the finding "
                             "(needs --device sim)")
    parser.set_defaults(run=run)


def _select(args, known: list[Check]) -> list[Check]:
    """What --only and --exercises select ([] for everything)."""
    only = getattr(args, "only", None)
    pool = [c for c in known if c.kind == "exercise"] if getattr(args, "exercises", False) else known
    if not only:
        return pool if len(pool) < len(known) else []
    key = only.strip().lower().removeprefix("test_")
    return exact(only, pool) or [c for c in pool if key in c.name.lower()]


def run(args) -> int:
    import os
    import subprocess
    import tempfile
    import time

    from engine import Device
    from hardware import cuda_probe

    device = args.device or "auto"
    dev = Device(device)  # one-line error for cuda without a GPU or the simulator
    files = check_files() if TESTS.is_dir() else []
    if not files:
        raise CliError(f"`check` runs the property tests in {TESTS}, which this installation lacks; "
                       "use a checkout of tilegrad")
    output = getattr(args, "output", None)
    if output:
        check_output_file("--output", output)
    known = checks(files)
    only = getattr(args, "only", None)
    chosen = _select(args, known)
    if only and not chosen:
        raise CliError(_nothing_matched(only, [], known, dev))
    # the cuda cases carry the `gpu` marker; the cpu run takes everything else
    env = dict(os.environ)
    selection = "gpu" if dev.name == "cuda" else "not gpu"
    if dev.simulator:
        env[cuda_probe.SIMULATOR_VARIABLE] = "1"
        selection = "gpu and not slow"
    if getattr(args, "exercises", False) and args.device is None:  # every part: CPU twins and CUDA kernels
        selection = "exercise"
        if not cuda_probe.real_gpu_count():
            env[cuda_probe.SIMULATOR_VARIABLE] = "1"
    if getattr(args, "sanitize", False):  # tests/conftest.py then runs each check under sanitizer.sanitize()
        if not dev.simulator:
            raise CliError("--sanitize watches CUDA kernels in Numba's simulator: add --device sim")
        env["TILEGRAD_SANITIZE"] = "1"
    cmd = [sys.executable, "-m", "pytest", *([c.node for c in chosen] or map(str, files)), "-q",
           "-p", "no:cacheprovider", "-m", selection, "-o", "addopts=", "-W", "ignore"]
    if getattr(args, "list", False):
        return _list(cmd, env, known, dev, only, chosen, getattr(args, "wide", False))

    report = Path(tempfile.mkdtemp()) / "check.xml"
    cmd += [f"--junitxml={report}", "--tb=short"]
    what = (f" (only {chosen[0].name})" if len(chosen) == 1 else f" (only names containing {only!r})" if only
            else " (the exercises)" if chosen else "")
    print(f"checking kernel properties and layer gradients on {dev!r}{what} ...", file=sys.stderr)
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if not report.exists():
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise CliError(f"pytest did not run: {last}")
    results = read_report(report, known)
    seconds = time.perf_counter() - started
    graded = [r for r in results if r.status in (PASS, FAIL)]
    failures = [r for r in graded if r.status == FAIL]
    unattempted = not_attempted(results)
    ran = {r.check for r in results}
    not_here = [c.name for c in (chosen or known) if c.name not in ran and (chosen or c.kind == "exercise")]
    summary = f"{len(graded) - len(failures)} passed, {len(failures)} failed"
    if unattempted:
        summary += f"; not attempted yet: {', '.join(unattempted)}"
    if not_here:
        summary += f"; no case on {dev!r}: {', '.join(not_here)}"
    fmt = getattr(args, "format", "text") or "text"
    if fmt != "text":
        _write_report(fmt, output, results, dev, seconds, summary)
        return 1 if failures else 0

    from io import StringIO

    out = StringIO()
    for r in results:
        if r.status == SKIPPED:
            print(f"skipped {r.label}: {r.report}", file=out)
    if results:
        lines, cut = text_table(results, getattr(args, "wide", False))
        print(f"tilegrad check on {dev!r}", file=out)
        print(lines[0], file=out)
        print("-" * min(WIDTH, max(map(len, lines))), file=out)
        for line in lines[1:]:
            print(line, file=out)
        if cut:
            print("(names cut to fit 100 columns, marked ~: --wide shows them whole)", file=out)
    for r in failures:
        print(f"FAILED {r.label}", file=out)
        body = r.report.rstrip().splitlines() if getattr(args, "full", False) else failure_lines(r.report)
        for line in body:
            print(("" if getattr(args, "full", False) else "  ") + line, file=out)
    for r in results if only else []:  # what to write next, for the exercise a student asked about
        if r.status == NOT_ATTEMPTED:
            print(f"not attempted yet: {r.label} ({r.report.removeprefix(NOT_ATTEMPTED_MARK).strip(' ()')})",
                  file=out)
    text_summary = _wrapped(summary)
    if not graded and unattempted:  # stubs only: the summary names them, and nothing passed
        print(text_summary, file=out)
        _emit(out.getvalue(), output)
        return 1
    if not graded:
        _emit(out.getvalue(), output)
        if results:
            raise CliError(f"nothing was graded for {only!r}: every matching check was skipped or "
                           f"not attempted yet (see above)" if only else "nothing was graded (see above)")
        raise CliError(_nothing_matched(only, chosen, known, dev))
    print(text_summary, file=out)
    if not_here and not dev.simulator and dev.name == "cpu":
        print("(the CUDA parts run with --device sim, or with --exercises for every part at once)", file=out)
    if failures and not getattr(args, "full", False):
        print("(add --full for pytest's whole report of each failure)", file=out)
    _emit(out.getvalue(), output)
    return 1 if failures else 0


def _wrapped(summary: str) -> str:
    """The summary's parts on lines of their own, each within ``WIDTH`` columns."""
    import textwrap

    return "\n".join(textwrap.fill(part, WIDTH, subsequent_indent="  ", break_on_hyphens=False)
                     for part in summary.split("; "))


def _emit(text: str, output) -> None:
    if output:
        Path(output).write_text(text)
        print(f"report written to {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def _write_report(fmt, output, results, dev, seconds, summary) -> None:
    import json

    if fmt == "junit":
        text = junit_xml(results, f"tilegrad check on {dev!r}")
    elif fmt == "gradescope":
        text = json.dumps(gradescope_json(results, points_table(), seconds, summary), indent=1) + "\n"
    else:
        text = json.dumps({"device": repr(dev), "summary": summary, "seconds": round(seconds, 1),
                           "results": [{"check": r.check, "case": r.case, "kind": r.kind, "file": r.file,
                                        "status": r.status, "seconds": round(r.seconds, 3),
                                        "feedback": r.feedback()} for r in results]}, indent=1) + "\n"
    _emit(text, output)
    print(summary, file=sys.stderr)


def _nothing_matched(only, chosen, known, dev) -> str:
    if not only:
        return "no checks ran"
    if chosen:
        names = ", ".join(c.name for c in chosen[:5])
        return (f"check {names!r} has no case that runs on {dev!r} "
                "(`check --list` shows what each device runs)")
    near = close_names(only, [c.name for c in known])
    return (f"no check matched {only!r}" + (f"; close names: {', '.join(near)}" if near else "")
            + " (`check --list` shows them all)")


def _list(cmd, env, known: list[Check], dev, only, chosen, wide: bool = False) -> int:
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
    shown = chosen or known
    if not shown:
        raise CliError(_nothing_matched(only, chosen, known, dev))
    width = max(len("check"), *(len(c.name) for c in shown))
    if not wide:
        width = min(width, WIDTH - 2 - 9 - 2 - 10)
    cut = False
    header = f"{'check':{width}}  {'kind':9}  {'cases here':>10}" + ("  file" if wide else "")
    print(header)
    for c in shown:
        n = cases.get((c.file.name, c.function), 0)
        name = c.name
        if len(name) > width:
            name, cut = name[:width - 1] + "~", True
        print(f"{name:{width}}  {c.kind:9}  {(str(n) if n else '-'):>10}" + (f"  {c.file.name}" if wide else ""))
    import textwrap

    note = (f"{len(shown)} check{'s' * (len(shown) != 1)}; 'cases here' counts the cases that run on {dev!r} "
            "('-': none, try another --device). Run one with: python cli.py check --only NAME"
            + ("; names cut to fit (~): --wide shows them whole, and each check's file" if cut else
               "; --wide adds each check's file" if not wide else ""))
    print(textwrap.fill(note, WIDTH, break_on_hyphens=False), file=sys.stderr)
    return 0
