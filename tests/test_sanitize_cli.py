"""``python cli.py sanitize SCRIPT``, end to end: exit statuses, --json, and the one-line cases."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RACY = """
import sys
import numpy as np
from numba import cuda, float32

@cuda.jit
def shift(out, x):
    tile = cuda.shared.array(64, float32)
    t = cuda.threadIdx.x
    tile[t] = x[t]
    {barrier}
    if t < 63:
        out[t] = tile[t + 1]

shift[1, 64](np.zeros(64, np.float32), np.arange(64, dtype=np.float32))
print("argv", sys.argv[1:])
if "--fail" in sys.argv:
    raise RuntimeError("failed after the launch")
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 0)
"""


def sanitize(tmp_path, source: str | None, *args, name="script.py"):
    script = tmp_path / name
    if source is not None:
        script.write_text(textwrap.dedent(source))
    command = [sys.executable, "cli.py", "sanitize", *args[:-1], str(script), *args[-1]] if args else \
        [sys.executable, "cli.py", "sanitize", str(script)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_racy_script_exits_1_with_the_race_and_writes_the_json_schema(tmp_path):
    out = tmp_path / "report.json"
    done = sanitize(tmp_path, RACY.replace("{barrier}", "pass"), "--json", str(out), ["alpha", "--beta"])
    assert done.returncode == 1, done.stderr
    assert "argv ['alpha', '--beta']" in done.stdout  # the script's own sys.argv, options included
    assert "Race reported between Write access at" in done.stdout and "script.py:10" in done.stdout
    data = json.loads(out.read_text())
    finding = data["launches"][0]["findings"][0]
    assert (finding["kind"], finding["hazard"], finding["lines"]) == ("race", "RAW", [10, 13])
    assert set(data["launches"][0]) == {"kernel", "grid", "block", "findings", "memory"}


def test_a_clean_script_keeps_its_own_exit_status(tmp_path):
    done = sanitize(tmp_path, RACY.replace("{barrier}", "cuda.syncthreads()"), "--tool", "race,sync", ["3"])
    assert done.returncode == 3, done.stdout + done.stderr
    assert "ERROR SUMMARY: 0 errors, 0 warnings in 0 of 1 launch" in done.stdout


def test_a_script_that_raises_after_a_launch_is_reported_with_what_was_found(tmp_path):
    done = sanitize(tmp_path, RACY.replace("{barrier}", "pass"), ["--fail"])
    assert done.returncode == 1
    assert "Race reported" in done.stdout
    assert "raised RuntimeError: failed after the launch after 1 kernel launch" in done.stderr


def test_no_launch_raising_first_and_a_missing_script_each_get_one_line(tmp_path):
    done = sanitize(tmp_path, "print('hello')\n", name="quiet.py")
    assert done.returncode == 0 and done.stderr.strip().endswith("launched no CUDA kernel: nothing was checked")
    done = sanitize(tmp_path, "raise ValueError('bad input')\n", name="broken.py")
    assert done.returncode == 1
    assert "raised ValueError: bad input before launching any CUDA kernel" in done.stderr.splitlines()[-1]
    done = sanitize(tmp_path, None, name="missing.py")
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        f"error: sanitize: {tmp_path / 'missing.py'} does not exist"]
