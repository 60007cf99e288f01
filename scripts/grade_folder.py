#!/usr/bin/env python
"""Grade a folder of student folders into one CSV: one row per student, one column per exercise, the total.

    python scripts/grade_folder.py submissions/ --output grades.csv [--only NAME] [--timeout 1800]

Each folder inside ROOT holds one student's exercise files (leaky_relu.py, gemm_tiled.py, ... as in
docs/tutorials/exercises/). Every folder is graded by `cli.py check --exercises --format gradescope` with
TILEGRAD_EXERCISES set to it, so the points are those of docs/tutorials/exercises/points.json. A submission
that crashes the grader (a segfault in a CPU kernel, an exit) or runs past --timeout is graded again one
exercise at a time, so only what it broke gets 0, with a note; the batch never stops. The grader runs the
students' code: run this in a container.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commands.check import check_files, checks, points_table  # noqa: E402  (the standard library only)


def exercise_names(only: str | None = None) -> list[str]:
    names = [c.name for c in checks(check_files()) if c.kind == "exercise"]
    if only:
        names = [n for n in names if n == only] or [n for n in names if only in n]
    return names


def grade(folder: Path, names: list[str], timeout: float, only: str | None = None) -> tuple[dict, str]:
    """({exercise: score}, note) for one student's folder; note is '' when everything ran."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        cmd = [sys.executable, str(ROOT / "cli.py"), "check", "--exercises", "--format", "gradescope", "--output",
               str(out), *(["--only", only] if only else [])]
        env = {**os.environ, "TILEGRAD_EXERCISES": str(folder.resolve())}
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
            problem = "" if out.exists() else _last_line(proc.stderr) or f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            problem = f"timed out after {timeout:g} s"
        if not problem:
            tests = json.loads(out.read_text())["tests"]
            return {t["name"]: t["score"] for t in tests if t["name"] in names}, ""
    if len(names) > 1:  # find what broke it: each exercise alone
        scores, notes = {}, []
        for name in names:
            score, note = grade(folder, [name], timeout, only=name)
            scores.update(score)
            notes += [note] if note else []
        return scores, "; ".join(notes)
    return {names[0]: 0.0}, f"{names[0]}: {problem}"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Each folder inside ROOT is one student (its name is the CSV's "
                                            "first column); files directly in ROOT are ignored.")
    parser.add_argument("root", metavar="ROOT", help="the folder of student folders")
    parser.add_argument("--output", required=True, metavar="CSV", help="the grades, one row per student")
    parser.add_argument("--only", metavar="NAME", help="grade only this exercise (as `check --only` matches)")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds one student's grading may take before it is stopped (default 1800)")
    args = parser.parse_args(argv)
    root, output = Path(args.root), Path(args.output)
    if not root.is_dir():
        parser.error(f"ROOT {root}: not a folder")
    if not output.parent.is_dir():
        parser.error(f"--output {output}: the folder {output.parent} does not exist")
    students = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not students:
        parser.error(f"ROOT {root}: no student folders inside")
    names = exercise_names(args.only)
    if not names:
        parser.error(f"--only {args.only}: no exercise matches")
    points = points_table()
    with output.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *names, "total", "max", "note"])
        for i, student in enumerate(students, 1):
            scores, note = grade(student, names, args.timeout, args.only)
            row = [scores.get(name, 0.0) for name in names]
            writer.writerow([student.name, *row, round(sum(row), 4), sum(points.get(n, 0.0) for n in names), note])
            f.flush()
            print(f"[{i}/{len(students)}] {student.name}: {round(sum(row), 4)}" + (f" ({note})" if note else ""),
                  file=sys.stderr)
    print(f"grades written to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
