#!/usr/bin/env python
"""The course's chapters as Jupyter notebooks: docs/tutorials/NN-*.md -> docs/notebooks/NN-*.ipynb.

    python scripts/notebooks.py            # regenerate every notebook (after editing a chapter)
    python scripts/notebooks.py --check    # exit 1, naming them, when a notebook is stale

The Markdown stays the one source (jupytext reads it: each ```python block becomes a code cell, the rest
Markdown, and so do the ```bash blocks: commands to read, not to run). Each notebook starts with a setup
cell that finds the tilegrad checkout it sits in (or installs
tilegrad when there is none, as on a fresh notebook GPU) and runs CUDA kernels on the GPU when there is one,
else in Numba's simulator; plots show inline (a chapter's `matplotlib.use("Agg")`, there for the test
suite, is left out of the notebook). Notebooks are committed without outputs; tests/test_notebooks.py
checks they are fresh and executes every one of them (TILEGRAD_NOTEBOOKS=quick: chapters 2 and 4 only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "docs" / "tutorials"
NOTEBOOKS = ROOT / "docs" / "notebooks"
SETUP = '''# Setup: use the tilegrad checkout this notebook sits in, or install tilegrad (e.g. on a notebook GPU);
# CUDA kernels then run on the GPU when there is one, else in Numba's CUDA simulator (before numba loads).
import os
import subprocess
import sys
from pathlib import Path

root = next((p for p in (Path.cwd(), *Path.cwd().parents) if (p / "cli.py").is_file() and (p / "engine").is_dir()),
            None)
if root is not None:
    os.chdir(root)
    sys.path.insert(0, str(root))
else:
    try:
        import engine  # noqa: F401  (tilegrad is installed)
    except ImportError:  # TILEGRAD_PIP: what to install, e.g. "tilegrad[cuda] @ git+https://.../tilegrad"
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", os.environ.get("TILEGRAD_PIP", "tilegrad[cuda]")],
                       check=True)
from hardware import cuda_probe

print("CUDA kernels run on", "the GPU" if cuda_probe.gpu_or_simulator() == "gpu" else "Numba's simulator (no GPU)")
%matplotlib inline'''


def chapter_notebook(chapter: Path):
    """The notebook of one chapter (a ``nbformat`` node), setup cell first."""
    import jupytext
    import nbformat

    notebook = jupytext.reads(chapter.read_text(), fmt="md")
    for number, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and cell.source.startswith("%%"):  # a ```bash or ```text block: shown, not run
            language, _, body = cell.source[2:].partition("\n")
            notebook.cells[number] = cell = nbformat.v4.new_markdown_cell(f"```{language.strip()}\n{body}\n```")
        if cell.cell_type == "code":
            cell.source = "\n".join(line for line in cell.source.splitlines()
                                    if line.strip() not in ('matplotlib.use("Agg")', "matplotlib.use('Agg')"))
    notebook.cells.insert(0, nbformat.v4.new_code_cell(SETUP))
    notebook.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"},
                         "tilegrad": {"generated_from": f"docs/tutorials/{chapter.name}",
                                      "by": "scripts/notebooks.py"}}
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number}"  # stable ids: regenerating an unchanged chapter changes nothing
        cell.pop("outputs", None) if cell.cell_type != "code" else cell.update(outputs=[], execution_count=None)
        cell.metadata = {}
    return notebook


def render(notebook) -> str:
    import nbformat

    return nbformat.writes(notebook) + "\n"


def chapters() -> list[Path]:
    return sorted(CHAPTERS.glob("[0-9][0-9]-*.md"))


def notebook_path(chapter: Path) -> Path:
    return NOTEBOOKS / f"{chapter.stem}.ipynb"


def stale() -> list[str]:
    """The notebooks that differ from what their chapter generates (or are missing, or have no chapter)."""
    expected = {notebook_path(c).name: render(chapter_notebook(c)) for c in chapters()}
    found = {p.name for p in NOTEBOOKS.glob("*.ipynb")}
    wrong = [name for name, text in expected.items()
             if not (NOTEBOOKS / name).is_file() or (NOTEBOOKS / name).read_text() != text]
    return sorted(wrong + [name for name in found - set(expected)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say which notebooks are stale (exit 1 if any)")
    args = parser.parse_args(argv)
    if args.check:
        wrong = stale()
        for name in wrong:
            print(f"stale: docs/notebooks/{name} (run python scripts/notebooks.py)", file=sys.stderr)
        return 1 if wrong else 0
    NOTEBOOKS.mkdir(exist_ok=True)
    for chapter in chapters():
        notebook_path(chapter).write_text(render(chapter_notebook(chapter)))
    for orphan in set(NOTEBOOKS.glob("*.ipynb")) - {notebook_path(c) for c in chapters()}:
        orphan.unlink()
    print(f"{len(chapters())} notebooks written to {NOTEBOOKS.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
