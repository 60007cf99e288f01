"""`check` for an instructor: grades in the formats course platforms read (Gradescope's results.json, JUnit
XML), the points table, tables within 100 columns, --only's matching, unattempted exercises named, and
scripts/grade_folder.py over a folder of students. The few end-to-end runs grade one fast CPU exercise."""

import ast
import csv
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from commands.check import (
    FAIL,
    NOT_ATTEMPTED,
    PASS,
    SKIPPED,
    Result,
    _select,
    _write_report,
    check_files,
    checks,
    gradescope_json,
    junit_xml,
    points_table,
    text_table,
)

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "docs" / "tutorials" / "solutions"
SHORT_FAILURE = """tests/test_exercises.py:100: in test_rnn_step
E   AssertionError: rnn_tanh_backward (1, 1)
E   wrong: 1 of 1 outputs beyond rtol=1e-05 atol=1e-06, first: [0, 0] got 1 expected 2
E   Failing test case: check(
E       c={'n': 1, 'h': 1, 'seed': 0},  # or any other generated value
E   )"""


def sample_results():
    return [Result("leaky_relu", "cpu", "exercise", "test_exercises.py", PASS, 0.5, ""),
            Result("leaky_relu", "cuda-sim", "exercise", "test_exercises.py", FAIL, 1.5, SHORT_FAILURE),
            Result("adam", "", "exercise", "test_exercises.py", NOT_ATTEMPTED, 0.0,
                   "not attempted yet (adam_step still raises NotImplementedError)"),
            Result("gemm_matches_float64_reference", "numpy", "property", "test_gemm.py", SKIPPED, 0.0, "no BLAS")]


def cli(*args, env_extra=None, timeout=900):
    env = {**os.environ, **(env_extra or {})}
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


# -- the formats, against their structure ----------------------------------------------------------------
def test_junit_xml_has_the_structure_github_classroom_reads():
    results = sample_results()
    root = ET.fromstring(junit_xml(results, "tilegrad check on Device('cpu')"))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(results) == int(suite.get("tests")) == int(root.get("tests"))
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["leaky_relu[cuda-sim]", "adam"], "a stub earns no credit"
    assert int(suite.get("failures")) == len(failed) == int(root.get("failures"))
    assert int(suite.get("skipped")) == sum(c.find("skipped") is not None for c in cases) == 1
    assert int(suite.get("errors")) == 0
    assert all(c.get("classname") and float(c.get("time")) >= 0 for c in cases)
    wrong = failed[0].find("failure")
    assert wrong.get("message") == "rnn_tanh_backward (1, 1)"
    assert "smallest failing input: n=1, h=1, seed=0" in wrong.text, "the few-line report, not pytest's"
    assert failed[1].find("failure").get("type") == "NotAttempted"


# Gradescope's documented results.json (gradescope-autograders.readthedocs.io, "Output format"): the keys
# this project writes, with their types; `score` on each test, `max_score` for partial credit.
GRADESCOPE_TOP = {"score": (int, float), "execution_time": (int, float), "output": str, "visibility": str,
                  "stdout_visibility": str, "tests": list}
GRADESCOPE_TEST = {"name": str, "score": (int, float), "max_score": (int, float), "status": str, "output": str,
                   "visibility": str}
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


def assert_gradescope_schema(data):
    for key, kind in GRADESCOPE_TOP.items():
        assert isinstance(data[key], kind), (key, data.get(key))
    assert data["visibility"] in VISIBILITIES and data["stdout_visibility"] in VISIBILITIES
    assert set(data) <= set(GRADESCOPE_TOP), set(data) - set(GRADESCOPE_TOP)
    for test in data["tests"]:
        assert set(test) == set(GRADESCOPE_TEST), test
        for key, kind in GRADESCOPE_TEST.items():
            assert isinstance(test[key], kind), (key, test)
        assert test["visibility"] in VISIBILITIES and test["status"] in ("passed", "failed")
        assert 0 <= test["score"] <= test["max_score"]
    assert abs(data["score"] - sum(t["score"] for t in data["tests"])) < 1e-6


def test_gradescope_results_follow_the_schema_and_share_points_among_cases():
    data = gradescope_json(sample_results(), {"leaky_relu": 10, "adam": 8}, 12.0, "1 passed, 1 failed")
    assert_gradescope_schema(data)
    tests = {t["name"]: t for t in data["tests"]}
    assert set(tests) == {"leaky_relu", "adam"}, "a skipped check is no test"
    assert tests["leaky_relu"]["score"] == 5 and tests["leaky_relu"]["max_score"] == 10, "CPU twin: half"
    assert "smallest failing input: n=1, h=1, seed=0" in tests["leaky_relu"]["output"]
    assert tests["adam"]["score"] == 0 and "not attempted yet" in tests["adam"]["output"]
    assert data["score"] == 5


def test_json_report_lists_every_case_with_its_feedback(tmp_path):
    out = tmp_path / "check.json"
    _write_report("json", str(out), sample_results(), "Device('cpu')", 3.0, "1 passed, 1 failed")
    data = json.loads(out.read_text())
    assert data["summary"] == "1 passed, 1 failed" and len(data["results"]) == 4
    failed = next(r for r in data["results"] if r["status"] == FAIL)
    assert failed["check"] == "leaky_relu" and failed["case"] == "cuda-sim"
    assert "smallest failing input: n=1, h=1, seed=0" in failed["feedback"]


def test_the_points_table_covers_every_exercise_and_nothing_else():
    points = points_table()
    exercises = {c.name for c in checks(check_files()) if c.kind == "exercise"}
    assert set(points) == exercises, "docs/tutorials/exercises/points.json: one entry per graded exercise"
    assert all(p > 0 for p in points.values())


# -- tables within 100 columns, --only as documented ------------------------------------------------------
def test_the_check_table_fits_100_columns_and_wide_shows_everything():
    long = Result("the_gpu_launcher_picks_gather_for_a_character_vocabulary_and_atomic_for_words", "cuda-sim",
                  "property", "test_embedding.py", PASS, 1.0, "")
    lines, cut = text_table([long, *sample_results()], wide=False)
    assert cut and max(map(len, lines)) <= 100 and "~" in lines[1]
    wide, cut = text_table([long], wide=True)
    assert not cut and long.check in wide[1] and "test_embedding.py" in wide[1] and "property" in wide[1]


def test_only_matches_check_names_as_documented():
    class Args:
        only, exercises = "gemm", False

    known = checks(check_files())
    chosen = {c.name for c in _select(Args, known)}
    assert "gemm_tiled" in chosen and "gemm_matches_float64_reference" in chosen
    assert all("gemm" in name for name in chosen), "names containing it, not names in a file that does"
    Args.only = "leaky_relu"
    assert [c.name for c in _select(Args, known)] == ["leaky_relu"], "an exact name wins"
    Args.only, Args.exercises = None, True
    assert {c.kind for c in _select(Args, known)} == {"exercise"}


def test_sampled_sizes_are_sorted_so_the_smallest_failing_input_is_the_smallest():
    """Hypothesis shrinks a sampled_from value toward the start of its list: an unsorted list of sizes would
    report a larger failing size than a smaller one that fails too."""
    tree = ast.parse((ROOT / "tests" / "test_exercises.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "sampled_from" and node.args:
            values = node.args[0]
            if isinstance(values, ast.List) and all(isinstance(v, ast.Constant) for v in values.elts):
                numbers = [v.value for v in values.elts]
                assert numbers == sorted(numbers), f"line {node.lineno}: {numbers}"


# -- end to end: one fast CPU exercise --------------------------------------------------------------------
def test_stubs_are_named_as_not_attempted_without_warnings():
    result = cli("check", "--exercises", "--device", "cpu")
    assert result.returncode == 1, result.stderr[-2000:]
    summary = result.stdout[result.stdout.index("0 passed, 0 failed\nnot attempted yet: "):]
    for name in ("adam", "avgpool", "lstm_backward", "momentum", "rnn_step"):
        assert name in summary
    assert "Warning" not in result.stdout + result.stderr
    assert max(map(len, result.stdout.splitlines())) <= 100


def test_gradescope_and_junit_files_from_a_wrong_and_an_unattempted_submission(tmp_path):
    wrong = (SOLUTIONS / "rnn_step.py").read_text().replace("(np.float32(1.0) - v * v)", "(np.float32(1.0) - v)")
    (tmp_path / "rnn_step.py").write_text(wrong)
    out = tmp_path / "results.json"
    result = cli("check", "--only", "rnn_step", "--format", "gradescope", "--output", str(out),
                 env_extra={"TILEGRAD_EXERCISES": str(tmp_path)})
    assert result.returncode == 1 and out.exists(), result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert_gradescope_schema(data)
    (test,) = data["tests"]
    assert test["name"] == "rnn_step" and test["score"] == 0 and test["max_score"] == points_table()["rnn_step"]
    assert "smallest failing input: n=1, h=1" in test["output"] and len(test["output"].splitlines()) <= 8

    stub = cli("check", "--only", "rnn_step", "--format", "junit")  # the shipped stub, to standard output
    root = ET.fromstring(stub.stdout)
    (case,) = root.iter("testcase")
    assert case.find("failure").get("type") == "NotAttempted" and root.get("failures") == "1"


def test_check_list_fits_100_columns():
    listed = cli("check", "--list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert max(map(len, listed.stdout.splitlines())) <= 100
    assert "file" not in listed.stdout.splitlines()[0] and "--wide" in listed.stderr
    wide = cli("check", "--list", "--wide")
    assert "test_gemm.py" in wide.stdout


def test_grade_folder_writes_one_row_per_student_and_survives_a_crash(tmp_path):
    good, crash, empty = (tmp_path / "students" / name for name in ("alice", "bob", "carol"))
    for folder in (good, crash, empty):
        folder.mkdir(parents=True)
    (good / "rnn_step.py").write_text((SOLUTIONS / "rnn_step.py").read_text())
    (crash / "rnn_step.py").write_text("import os\nos._exit(3)  # kills the grader mid-run\n")
    grades = tmp_path / "grades.csv"
    result = subprocess.run([sys.executable, "scripts/grade_folder.py", str(tmp_path / "students"), "--output",
                             str(grades), "--only", "rnn_step"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {row["student"]: row for row in csv.DictReader(grades.open())}
    full = points_table()["rnn_step"]
    assert set(rows) == {"alice", "bob", "carol"}
    assert float(rows["alice"]["rnn_step"]) == full and float(rows["alice"]["total"]) == full
    assert float(rows["bob"]["total"]) == 0 and "rnn_step:" in rows["bob"]["note"], "a crash is 0 with a note"
    assert float(rows["carol"]["total"]) == 0 and rows["carol"]["note"] == "", "a missing file is just 0"
