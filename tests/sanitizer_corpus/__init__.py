"""The sanitizer's validation corpus: small Numba CUDA kernels ported from public checkers' suites
(GPUVerify, Oclgrind, GKLEE, compute-sanitizer-samples, Faial), each seeded bug beside its fixed twin.

One module per case. Each says where it comes from in one comment line and declares:
- ``EXPECT``: the findings the sanitizer must report, built with :func:`finding` from marker comments
  (``# <- RACE-W``) so that line numbers never drift; ``[]`` for a fixed twin (silent: no error, no warning);
- ``MEMORY`` (optional): hand-counted memory-profile figures for marked lines, built with :func:`traffic`;
- ``PLAIN`` (optional): what the plain simulator does with the bug, e.g. ``"IndexError"`` when it raises
  (most bugs run silently there, which is the point);
- ``XFAIL`` (optional): why the sanitizer does not meet the expectation yet (a known sanitizer bug, named
  with the sanitizer commit it was seen on); the expectation stays as it should be;
- ``launch()``: allocates tiny inputs and launches the kernel (1-4 blocks of at most 64 threads).

A case runs as a script too, the way a student would check one: ``python cli.py sanitize
tests/sanitizer_corpus/race_on_shared.py``.

``scripts/sanitizer_corpus.py`` scores the sanitizer on every case (precision and recall per kind) and
``tests/test_sanitizer_corpus.py`` holds it to them. A finding matches an expected one when its kind and
its set of lines (in the case's file) are equal.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # the cases import _corpus_expect by its plain name (they run as scripts too)

from _corpus_expect import KINDS, finding, marked, traffic  # noqa: E402,F401  (the corpus's vocabulary)

SEVERITY_ORDER = ("error", "warning", "info")


# -- running the corpus --------------------------------------------------------------------------------
@dataclass
class Case:
    name: str
    module: object
    path: Path
    expect: list
    memory: list
    plain: str | None
    xfail: str | None = None

    @property
    def seeded(self) -> bool:
        """A case with a seeded bug (an error or warning expected); else a fixed twin or a profile case."""
        return any(f["severity"] in ("error", "warning") for f in self.expect)


def names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_"))


def load(name: str) -> Case:
    if str(HERE.parent) not in sys.path:
        sys.path.insert(0, str(HERE.parent))
    module = importlib.import_module(f"sanitizer_corpus.{name}")
    return Case(name, module, Path(module.__file__).resolve(), list(module.EXPECT),
                list(getattr(module, "MEMORY", [])), getattr(module, "PLAIN", None),
                getattr(module, "XFAIL", None))


def cases() -> list[Case]:
    return [load(name) for name in names()]


def twin(name: str) -> str:
    """The fixed twin's name of a seeded case: ``NAME_fixed``."""
    return f"{name}_fixed"


@dataclass
class Outcome:
    """What the sanitizer said about one case: its findings and memory rows in the case's own file."""
    case: Case
    findings: list = field(default_factory=list)
    memory: list = field(default_factory=list)
    raised: str | None = None

    def verdict(self) -> list:
        """What the sanitizer concluded, comparable between schedules: per kind, space and lines, the most
        severe severity (examples, counts and the hazard's direction depend on which thread came first)."""
        worst = {}
        for f in self.findings:
            key = (f["kind"], f["space"], tuple(sorted(set(f["lines"]))))
            worst[key] = min(worst.get(key, "info"), f["severity"], key=SEVERITY_ORDER.index)
        return sorted((*key, severity) for key, severity in worst.items())


def run(case: Case, schedule: str = "in-order", seed: int = 0) -> Outcome:
    """Launch ``case`` under ``sanitize(tools="all")``; an exception the launch raises is kept, not raised."""
    from sanitizer import sanitize

    raised = None
    with sanitize(tools="all", schedule=schedule, seed=seed) as report, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # arithmetic on poisoned (never written) values
        try:
            case.module.launch()
        except Exception as exc:  # noqa: BLE001 - a buggy kernel may raise; the report still stands
            raised = f"{type(exc).__name__}: {exc}"
    outcome = Outcome(case, raised=raised)
    for launch in report.to_json()["launches"]:
        outcome.findings += [f for f in launch["findings"] if _same_file(f["file"], case.path)]
        outcome.memory += [m for m in launch["memory"] if _same_file(m["file"], case.path)]
    return outcome


def _same_file(name: str, path: Path) -> bool:
    try:
        return Path(name).resolve() == path
    except (OSError, ValueError):
        return False


def _key(f: dict) -> tuple:
    return f["kind"], tuple(sorted(set(f["lines"])))


def score(outcome: Outcome) -> dict:
    """True positives, false positives and false negatives of one case, per kind (kind and lines match;
    several findings on the same kind and lines, e.g. RAW and WAW on one line, count once)."""
    expected = {_key(f) for f in outcome.case.expect}
    found = {_key(f) for f in outcome.findings}
    counts = {kind: {"tp": 0, "fp": 0, "fn": 0} for kind in KINDS}
    for kind, _ in expected & found:
        counts[kind]["tp"] += 1
    for kind, _ in found - expected:
        counts[kind]["fp"] += 1
    for kind, _ in expected - found:
        counts[kind]["fn"] += 1
    return counts


def detail_mismatches(outcome: Outcome) -> list[str]:
    """For each expected finding that was found: the declared space, hazard, scope and severity that differ."""
    problems = []
    for want in outcome.case.expect:
        same = [f for f in outcome.findings if _key(f) == _key(want)]
        if not same:
            continue
        for attr in ("space", "hazard", "scope", "severity"):
            if want[attr] is not None and all(f[attr] != want[attr] for f in same):
                got = sorted({str(f[attr]) for f in same})
                problems.append(f"{want['kind']} at lines {want['lines']}: {attr} {got}, expected {want[attr]}")
    return problems


def memory_mismatches(outcome: Outcome) -> list[str]:
    """Each hand-counted figure of ``MEMORY`` that the profile does not equal (or a row it lacks)."""
    problems = []
    for want in outcome.case.memory:
        rows = [m for m in outcome.memory
                if m["line"] == want["line"] and m["space"] == want["space"] and m["op"] == want["op"]]
        if not rows:
            problems.append(f"no {want['space']} {want['op']} row for line {want['line']}")
            continue
        for name, value in want.items():
            if name not in ("line", "space", "op") and rows[0][name] != value:
                problems.append(f"line {want['line']} {want['space']} {want['op']}: {name} {rows[0][name]}, "
                                f"hand count {value}")
    return problems


def unexpected_errors(outcome: Outcome) -> list[dict]:
    """Errors and warnings the case does not expect (a fixed twin must have none)."""
    expected = {_key(f) for f in outcome.case.expect}
    return [f for f in outcome.findings if f["severity"] in ("error", "warning") and _key(f) not in expected]
