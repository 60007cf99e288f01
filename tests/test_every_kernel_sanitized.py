"""Every kernel of the project stays free of sanitizer errors and warnings: `scripts/launch_every_kernel.py`
(each registered kernel launched at awkward shapes and checked against its reference) under
`python cli.py sanitize --tool all`, in one child process.

Marked `slow` (minutes in the simulator: every registered kernel, every access watched), which keeps it in
the default tier that CI runs; `pytest -m "not slow"` leaves it out while editing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_every_kernel_is_free_of_sanitizer_errors_and_warnings(tmp_path):
    from sanitizer.report import Report

    found = tmp_path / "every_kernel.json"
    done = subprocess.run([sys.executable, "cli.py", "sanitize", "--tool", "all", "--json", str(found),
                           "scripts/launch_every_kernel.py"], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert found.exists(), f"the sanitizer wrote no report (exit {done.returncode}): {done.stderr[-2000:]}"
    report = Report.from_json(json.loads(found.read_text()))
    problems = [(launch.kernel, finding) for launch in report.launches for finding in launch.findings
                if finding.severity != "info"]
    if problems:
        kernels = sorted({kernel for kernel, _ in problems})
        kernel, first = problems[0]
        pytest.fail(f"{len(problems)} sanitizer finding{'s' * (len(problems) != 1)} in {', '.join(kernels)}; the "
                    f"first, in {kernel}: {first.one_line()}\nfix? {first.hint()}\n(`python cli.py sanitize "
                    "scripts/launch_every_kernel.py` prints them all)", pytrace=False)
    wrong = [line for line in done.stdout.splitlines() if line.startswith(("WRONG", "not launched"))]
    assert done.returncode == 0, f"every launch is clean, but the script failed: {wrong or done.stderr[-2000:]}"
    assert len({launch.kernel for launch in report.launches}) >= 2, "the script launched (almost) nothing"
