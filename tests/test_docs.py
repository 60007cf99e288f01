"""Docs that cannot drift: every ```python block in the README and docs/ runs here."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def python_blocks(path: Path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


CASES = [pytest.param(path, i, code, id=f"{path.relative_to(ROOT)}#{i}")
         for path in DOCS for i, code in enumerate(python_blocks(path))]


@pytest.mark.parametrize(("path", "index", "code"), CASES)
def test_doc_example_runs(path, index, code, capsys):
    exec(compile(code, f"{path.name}[block {index}]", "exec"), {"__name__": "__doc_example__"})


def test_readme_quick_start_has_exactly_two_commands():
    quick = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert len(re.findall(r"```bash\n(.*?)```", quick, re.S)) == 2
