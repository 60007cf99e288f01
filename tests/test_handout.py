"""`python cli.py handout DIR`: the student's folder holds the chapters, stubs and graders, and no solution."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from commands.common import CliError
from commands.handout import write_handout

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT / "docs" / "tutorials"


def normalized(source: str) -> list[str]:
    """Code lines without indentation, blank lines or comments: what a copy would keep."""
    lines = (line.split("  #", 1)[0].strip() for line in source.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def functions(path: Path) -> dict[str, list[str]]:
    """Each function's (and method's) body as normalized lines, its docstring left out."""
    source = path.read_text()
    found = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            found[node.name] = normalized("\n".join(ast.get_source_segment(source, b) for b in body))
    return found


def solution_blocks() -> dict[str, list[str]]:
    """Every solution function whose body differs from the stub's: its whole body (docstring aside), normalized."""
    blocks = {}
    for solution in sorted((TUTORIALS / "solutions").glob("*.py")):
        stub = functions(TUTORIALS / "exercises" / solution.name)
        for name, body in functions(solution).items():
            if body and body != stub.get(name):
                blocks[f"{solution.name}:{name}"] = body
    return blocks


def leaks(folder: Path) -> list[str]:
    """The solution functions whose whole body appears, in order and together, in a file of ``folder``."""
    texts = ["\n".join(normalized(p.read_text(errors="replace"))) for p in folder.rglob("*")
             if p.is_file() and p.suffix in (".py", ".md", ".ipynb", ".txt", ".json")]
    found = []
    for name, lines in solution_blocks().items():
        block = "\n".join(lines)
        if any(block in text for text in texts):
            found.append(name)
    return found


def test_the_handout_has_no_solution_and_the_instructors_copy_has_them_all(tmp_path):
    blocks = solution_blocks()
    assert len(blocks) >= 12, "every solution function is checked (kernels, CPU twins, the layer's backward)"
    student = tmp_path / "student"
    write_handout(student)
    assert not list(student.rglob("solutions")) and not (student / "docs" / "tutorials" / "solutions").exists()
    assert leaks(student) == []
    instructor = tmp_path / "instructor"
    write_handout(instructor, with_solutions=True)
    assert sorted(leaks(instructor)) == sorted(blocks), "the grep finds every solution where it is"


def test_the_handout_holds_chapters_stubs_graders_and_data(tmp_path):
    folder = tmp_path / "h"
    write_handout(folder)
    chapters = sorted(p.name for p in (folder / "docs" / "tutorials").glob("0*.md"))
    assert chapters == sorted(p.name for p in TUTORIALS.glob("0*.md"))
    stubs = {p.name for p in (folder / "docs" / "tutorials" / "exercises").glob("*.py")}
    assert stubs == {p.name for p in (TUTORIALS / "exercises").glob("*.py")}
    readme = re.search(r'^readme = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M)[1]
    for needed in (readme, "cli.py", "pyproject.toml", "tests/test_exercises.py", "tests/support.py",
                   "tests/conftest.py", "docs/tutorials/exercises/points.json", "engine/texts", "HANDOUT.md"):
        assert (folder / needed).exists(), needed
    notebooks = ROOT / "docs" / "notebooks"
    if notebooks.is_dir():
        handed = {p.name for p in (folder / "docs" / "notebooks").iterdir()}
        assert {p.name for p in notebooks.glob("*.ipynb")} <= handed
    # its grader runs there: an untouched stub is reported as not attempted yet
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_ENABLE_CUDASIM", "TILEGRAD_EXERCISES")}
    result = subprocess.run([sys.executable, "cli.py", "check", "--only", "rnn_step"], cwd=folder, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1 and "not attempted yet: rnn_step" in result.stdout, result.stderr[-2000:]


def test_handout_refuses_a_non_empty_folder_and_force_removes_old_solutions(tmp_path):
    folder = tmp_path / "h"
    write_handout(folder, with_solutions=True)
    with pytest.raises(CliError, match="not empty.*--force"):
        write_handout(folder)
    write_handout(folder, force=True)
    assert not (folder / "docs" / "tutorials" / "solutions").exists() and leaks(folder) == []
    with pytest.raises(CliError, match="inside the source tree"):
        write_handout(ROOT / "handout")
