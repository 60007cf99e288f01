"""``python cli.py handout DIR``: the student's folder for a course, without the solutions."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from .common import CliError

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = Path("docs") / "tutorials" / "solutions"
# what a student runs: the engine and the CLI, the chapters (and their notebooks), the exercise stubs and the
# points table, the graders with what they import; the bundled data ship inside the packages (engine/texts)
PACKAGES = ("hardware", "sanitizer", "cuda_kernels", "runtime", "layers", "optim", "engine", "bench", "commands")
FILES = ("cli.py", "pyproject.toml", "README.md", "LICENSE", "tests/conftest.py", "tests/support.py",
         "tests/test_exercises.py")
FOLDERS = ("docs/tutorials", "docs/notebooks")
DOCS = ("docs/architecture.md", "docs/api.md")
SKIP = ("__pycache__", ".hypothesis", ".ipynb_checkpoints", ".pytest_cache")
GUIDE = """# {title}

The chapters are in docs/tutorials/ (start with README.md there){notebooks}. Each graded exercise is a
file in docs/tutorials/exercises/ with the function to write.

    pip install -e ".[dev]"                          # once (add the cuda extra on a GPU machine)
    python cli.py check --only NAME                  # grade one exercise (its CPU part)
    python cli.py --device sim check --only NAME     # its CUDA part, in the simulator
    python cli.py check --exercises                  # every part of every exercise at once

The points per exercise are in docs/tutorials/exercises/points.json.{solutions}
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "handout", help="write the student's folder for a course: chapters, notebooks, exercise stubs, graders",
        description="Write DIR: what a student needs for the course, without the reference solutions: the "
                    "chapters (Markdown, and the notebooks), the exercise stubs and points table, the graders "
                    "(`python cli.py check` runs there) and the engine and data they run on. --with-solutions "
                    "adds docs/tutorials/solutions/ for an instructor's copy.")
    parser.add_argument("dir", metavar="DIR", help="the folder to write (created; must be empty unless --force)")
    parser.add_argument("--with-solutions", action="store_true",
                        help="include the reference solutions (an instructor's copy)")
    parser.add_argument("--force", action="store_true",
                        help="write into a non-empty DIR, replacing the files the handout holds (a solutions "
                             "folder left there by an instructor's copy is removed from a student's)")
    parser.set_defaults(run=run)


def handout_files(with_solutions: bool = False) -> list[Path]:
    """The handout's files, relative to the source tree."""
    files = [Path(f) for f in FILES + DOCS if (ROOT / f).is_file()]
    for folder in PACKAGES + FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            relative = path.relative_to(ROOT)
            if not path.is_file() or any(part in SKIP or part.endswith(".egg-info") for part in relative.parts):
                continue
            if not with_solutions and SOLUTIONS in relative.parents:
                continue
            files.append(relative)
    return files


def write_handout(target: Path, with_solutions: bool = False, force: bool = False) -> list[Path]:
    target = target.resolve()
    if target == ROOT or ROOT in target.parents:
        raise CliError(f"handout {target}: that is inside the source tree; choose a folder outside it")
    if target.exists() and not target.is_dir():
        raise CliError(f"handout {target}: that is a file, not a folder")
    if target.exists() and any(target.iterdir()) and not force:
        raise CliError(f"handout {target}: the folder is not empty; choose an empty one, or add --force")
    if not target.parent.is_dir():
        raise CliError(f"handout {target}: the folder {target.parent} does not exist")
    files = handout_files(with_solutions)
    for relative in files:
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / relative, target / relative)
    if not with_solutions and (target / SOLUTIONS).exists():  # left by an instructor's copy: never in a student's
        shutil.rmtree(target / SOLUTIONS)
    has_notebooks = (target / "docs" / "notebooks").is_dir()
    notebooks = ";\neach chapter is also a notebook in docs/notebooks/" if has_notebooks else ""
    solutions = ("\nThis is the instructor's copy: the reference solutions are in docs/tutorials/solutions/;\n"
                 "grade them with TILEGRAD_EXERCISES=docs/tutorials/solutions python cli.py check --exercises.\n"
                 if with_solutions else "")
    title = "tilegrad course: instructor's copy" if with_solutions else "tilegrad course: student handout"
    (target / "HANDOUT.md").write_text(GUIDE.format(title=title, notebooks=notebooks, solutions=solutions))
    return files


def run(args) -> int:
    files = write_handout(Path(args.dir), args.with_solutions, args.force)
    exercises = sum(1 for f in files if f.parent == Path("docs/tutorials/exercises") and f.suffix == ".py")
    chapters = sum(1 for f in files if f.parent == Path("docs/tutorials") and f.name[:1].isdigit())
    notebooks = sum(1 for f in files if f.suffix == ".ipynb")
    print(f"handout written to {args.dir}: {len(files) + 1} files, {chapters} chapters, {notebooks} notebooks, "
          f"{exercises} exercise stubs" + (", with the solutions" if args.with_solutions else ", no solutions"),
          file=sys.stderr)
    return 0
