"""The sanitizer wired into the tests (tests/conftest.py): `check --sanitize` (TILEGRAD_SANITIZE=1) fails a
check whose kernels have a finding, and a course grader's failure leads with the sanitizer's finding."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TESTS = '''
import numpy as np
import pytest
from numba import cuda, float32


@cuda.jit
def shift(out, x):
    tile = cuda.shared.array(64, float32)
    t = cuda.threadIdx.x
    tile[t] = x[t]
    BARRIER
    if t < 63:
        out[t] = tile[t + 1]


def launch():
    out = np.zeros(64, np.float32)
    shift[1, 64](out, np.arange(64, dtype=np.float32))
    return out


def test_racy_kernel_with_a_passing_check():
    launch()


@pytest.mark.exercise
def test_racy_grader_failing():
    launch()
    raise AssertionError("shift n=64\\nwrong: got -0.70, expected -1.88")


def test_no_kernel():
    assert 1 + 1 == 2
'''


def run_pytest(tmp_path, sanitize: str | None, barrier: str = "pass") -> dict:
    """Run the tests above with tests/conftest.py as a plugin; {test name: failure text or None}."""
    (tmp_path / "test_wired.py").write_text(textwrap.dedent(TESTS).replace("BARRIER", barrier))
    env = {k: v for k, v in os.environ.items() if k != "TILEGRAD_SANITIZE"}
    env["NUMBA_ENABLE_CUDASIM"] = "1"
    if sanitize is not None:
        env["TILEGRAD_SANITIZE"] = sanitize
    report = tmp_path / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-q",
                    "-W", "ignore::pytest.PytestUnknownMarkWarning", "--tb=short", f"--junitxml={report}",
                    str(tmp_path / "test_wired.py")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert report.exists()
    results = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        failed = case.find("failure") if case.find("failure") is not None else case.find("error")
        results[case.get("name")] = None if failed is None else (failed.text or failed.get("message", ""))
    return results


def first_lines(text: str) -> list[str]:
    from commands.check import summarize

    return summarize(text)[0].message


def test_check_sanitize_fails_a_racy_kernel_and_a_grader_failure_leads_with_the_finding(tmp_path):
    results = run_pytest(tmp_path, "1")
    assert results["test_no_kernel"] is None
    # the check itself passes; the sanitizer fails it, with the race first
    lines = first_lines(results["test_racy_kernel_with_a_passing_check"])
    assert lines[0].startswith("sanitizer: error: Race reported between Write access at"), lines
    assert "test_wired.py:11" in lines[0] and "[RAW, shared" in lines[0], lines
    assert lines[1].startswith("fix? a cuda.syncthreads() after the write at line 11"), lines
    # a failing grader: the finding first, then the grader's own message
    lines = first_lines(results["test_racy_grader_failing"])
    assert lines[0].startswith("sanitizer: error: Race reported"), lines
    assert "wrong: got -0.70, expected -1.88" in lines, lines


def test_without_check_sanitize_only_a_grader_failure_is_annotated(tmp_path):
    results = run_pytest(tmp_path, None)
    assert results["test_racy_kernel_with_a_passing_check"] is None  # not sanitized, not failed
    lines = first_lines(results["test_racy_grader_failing"])
    assert lines[0].startswith("sanitizer: error: Race reported"), lines
    assert lines[2:4] == ["shift n=64", "wrong: got -0.70, expected -1.88"], lines
    # with the barrier, the grader's failure is its own message alone
    fixed = run_pytest(tmp_path, None, "cuda.syncthreads()")
    assert first_lines(fixed["test_racy_grader_failing"])[:2] == ["shift n=64", "wrong: got -0.70, expected -1.88"]


STUDENT_LEAKY_RELU = """
import numpy as np
from numba import cuda, float32, njit, prange


@cuda.jit
def leaky_relu_kernel(out, x, slope):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, stride):
        v = x[i]
        left = x[i - 1]  # never used; x[-1] at i = 0, which the plain simulator wraps silently
        out[i] = v if v > float32(0.0) else slope * v


@njit(parallel=True)
def leaky_relu_cpu(out, x, slope):
    for i in prange(x.size):
        out[i] = x[i] if x[i] > np.float32(0.0) else slope * x[i]
"""


def test_check_sanitize_end_to_end_on_a_student_kernel_that_passes_without_it(tmp_path):
    (tmp_path / "leaky_relu.py").write_text(STUDENT_LEAKY_RELU)
    env = dict(os.environ, TILEGRAD_EXERCISES=str(tmp_path))
    command = [sys.executable, "cli.py", "--device", "sim", "check", "--only", "leaky_relu"]
    plain = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert plain.returncode == 0 and "1 passed, 0 failed" in plain.stdout, plain.stdout[-3000:] + plain.stderr[-2000:]
    done = subprocess.run([*command, "--sanitize"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    shown = done.stdout.splitlines()
    failed = next(i for i, line in enumerate(shown) if line.startswith("FAILED"))
    assert shown[failed + 1].strip().startswith("sanitizer: error: Invalid __global__ access at"), shown[failed:]
    assert "leaky_relu.py:11" in shown[failed + 1] and "index out of bounds" in shown[failed + 1], shown[failed:]
    refused = subprocess.run([sys.executable, "cli.py", "--device", "cpu", "check", "--sanitize", "--only",
                              "leaky_relu"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "add --device sim" in refused.stderr, refused.stderr
