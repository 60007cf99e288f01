"""The sanitizer held to its validation corpus (tests/sanitizer_corpus/): every seeded bug found at its
lines with its declared space, hazard, scope and severity, every fixed twin silent (no error, no
warning), the memory profile equal to the hand counts, and the same verdicts under two random schedules
(``scripts/sanitizer_corpus.py --schedules 5`` checks five and prints precision and recall per kind).

The corpus itself is checked without the sanitizer too: each case is well formed, has its twin, and runs
in the plain simulator, most bugs silently (which is why the sanitizer exists)."""

from functools import cache

import pytest
import sanitizer_corpus as corpus

import sanitizer
from cuda_kernels import SIMULATOR

HAS_SANITIZER = hasattr(sanitizer, "sanitize")
needs_sanitizer = pytest.mark.skipif(
    not HAS_SANITIZER, reason="sanitizer.sanitize does not exist yet (the sanitizer branch is not merged)")
needs_simulator = pytest.mark.skipif(not SIMULATOR, reason="kernels run on a real GPU here, not in the simulator")
NAMES = corpus.names()
SEEDED = [name for name in NAMES if corpus.load(name).seeded]
SILENT = [name for name in NAMES if not corpus.load(name).seeded]
PROFILED = [name for name in NAMES if corpus.load(name).memory]
RANDOM_SEEDS = (1, 2)


def known(names):
    """The names as parameters, a case with a known sanitizer bug (its XFAIL) marked xfail with that reason."""
    return [pytest.param(name, marks=pytest.mark.xfail(reason=corpus.load(name).xfail))
            if corpus.load(name).xfail else name for name in names]


@cache
def outcome(name: str, schedule: str = "in-order", seed: int = 0) -> corpus.Outcome:
    return corpus.run(corpus.load(name), schedule, seed)


# -- the corpus on its own -------------------------------------------------------------------------------
def test_corpus_covers_every_kind_with_enough_cases():
    cases = corpus.cases()
    assert len(cases) >= 25, len(cases)
    kinds = {f["kind"] for case in cases for f in case.expect}
    assert kinds == set(corpus.KINDS), kinds
    spaces = {(f["kind"], f["space"]) for case in cases for f in case.expect}
    for needed in [("race", "shared"), ("race", "global"), ("out_of_bounds", "global"), ("out_of_bounds", "shared"),
                   ("out_of_bounds", "local"), ("uninitialized_read", "shared"), ("uninitialized_read", "global")]:
        assert needed in spaces, needed
    scopes = {f["scope"] for case in cases for f in case.expect}
    assert {"intra-warp", "inter-block"} <= scopes, scopes
    assert any(f["severity"] == "info" for case in cases for f in case.expect), "no same-value (info) case"


@pytest.mark.parametrize("name", NAMES)
def test_case_is_well_formed(name):
    case = corpus.load(name)
    source = case.path.read_text().splitlines()
    assert source[0].startswith('"""'), f"{name}: a docstring saying what the kernel does first"
    assert sum(line.startswith("# Ported from: ") for line in source) == 1, f"{name}: one '# Ported from:' line"
    assert callable(case.module.launch)
    for f in case.expect:
        assert f["lines"] and all(1 <= line <= len(source) for line in f["lines"]), (name, f)
    if case.seeded:
        assert corpus.twin(name) in NAMES, f"{name}: its fixed twin {corpus.twin(name)}.py is missing"
        assert not corpus.load(corpus.twin(name)).seeded, f"{corpus.twin(name)}: a fixed twin expects no error"


@needs_simulator
@pytest.mark.parametrize("name", SEEDED)
def test_plain_simulator_hides_the_bug(name):
    """Each seeded bug runs silently in the plain simulator, except where the case says it raises (a positive
    out-of-bounds index is the one thing NumPy's indexing catches)."""
    case = corpus.load(name)
    if case.plain is None:
        case.module.launch()
    else:
        with pytest.raises(Exception) as caught:
            case.module.launch()
        assert type(caught.value).__name__ == case.plain


# -- the sanitizer on the corpus -------------------------------------------------------------------------
@needs_simulator
@needs_sanitizer
@pytest.mark.parametrize("name", known(SEEDED + [n for n in SILENT if corpus.load(n).expect]))
def test_seeded_bug_found_at_its_lines(name):
    result = outcome(name)
    found = [(f["kind"], sorted(set(f["lines"])), f["severity"]) for f in result.findings]
    assert not any(c["fn"] for c in corpus.score(result).values()), \
        f"{name}: expected {[(f['kind'], f['lines']) for f in result.case.expect]}, found {found}"
    assert not corpus.detail_mismatches(result), f"{name}: " + "; ".join(corpus.detail_mismatches(result))
    extra = [(f["kind"], f["lines"], f["example"]) for f in corpus.unexpected_errors(result)]
    assert not extra, f"{name}: errors beside the seeded bug: {extra}"


@needs_simulator
@needs_sanitizer
@pytest.mark.parametrize("name", known(SILENT))
def test_fixed_twin_is_silent(name):
    result = outcome(name)
    noisy = [(f["kind"], f["severity"], f["lines"], f["example"]) for f in corpus.unexpected_errors(result)]
    assert not noisy, f"{name}: errors or warnings on a kernel without a bug: {noisy}"
    assert result.raised is None, f"{name}: the launch raised under the sanitizer: {result.raised}"


@needs_simulator
@needs_sanitizer
@pytest.mark.parametrize("name", known(PROFILED))
def test_memory_profile_equals_hand_counts(name):
    problems = corpus.memory_mismatches(outcome(name))
    assert not problems, f"{name}: " + "; ".join(problems)


@needs_simulator
@needs_sanitizer
@pytest.mark.parametrize("name", NAMES)
def test_verdict_is_the_same_under_random_schedules(name):
    expected = outcome(name).verdict()
    for seed in RANDOM_SEEDS:
        got = outcome(name, "random", seed).verdict()
        assert got == expected, f"{name}: schedule random seed {seed}: {got}, in order: {expected}"


# -- the fix_racy exercise (chapter 10) ------------------------------------------------------------------
def _exercise(folder: str):
    import importlib.util

    path = corpus.HERE.parent.parent / "docs" / "tutorials" / folder / "fix_racy.py"
    spec = importlib.util.spec_from_file_location(f"fix_racy_{folder}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path


def test_fix_racy_stub_is_recognised_and_the_solution_is_not():
    import test_exercises as grader

    stub, _ = _exercise("exercises")
    solution, _ = _exercise("solutions")
    assert grader._body_fingerprint(stub.block_sum_kernel.py_func) == grader.FIX_RACY_STUB, \
        "the fix_racy stub changed: update FIX_RACY_STUB in tests/test_exercises.py"
    assert grader._body_fingerprint(solution.block_sum_kernel.py_func) != grader.FIX_RACY_STUB


@needs_simulator
@needs_sanitizer
def test_fix_racy_grader_leads_with_the_sanitizers_first_finding():
    """The racy stub, graded: the failure's first line is the sanitizer's finding in words, at the stub's lines."""
    import numpy as np
    import test_exercises as grader
    from numba import cuda

    stub, path = _exercise("exercises")
    source = path.read_text().splitlines()
    load = 1 + next(i for i, line in enumerate(source) if "partial[tx] = x[i]" in line)
    read = 1 + next(i for i, line in enumerate(source) if "partial[tx] += partial[tx + stride]" in line)
    out = cuda.to_device(np.zeros(2, np.float32))
    _, first = grader.sanitized(lambda: stub.block_sum_kernel[2, stub.THREADS](
        out, cuda.to_device(np.ones(100, np.float32))))
    assert first is not None, "the racy stub passed the sanitizer"
    headline, fix = first.splitlines()
    assert headline.startswith("sanitizer: error: Race reported between Write access at ") and \
        f"fix_racy.py:{load} and Read access at " in headline and f"fix_racy.py:{read} [RAW, shared" in headline, first
    assert fix == f"fix? a cuda.syncthreads() after the write at line {load}, before the read at line {read}?", fix
