"""Docs that cannot drift: every ```python block in the README and docs/ runs here, in order, the
blocks of one page sharing one namespace (as a reader running them one after another would)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def python_blocks(path: Path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


PAGES = [pytest.param(path, id=str(path.relative_to(ROOT))) for path in DOCS if python_blocks(path)]


@pytest.mark.parametrize("path", PAGES)
def test_doc_examples_run(path, monkeypatch):
    from cuda_kernels import SIMULATOR

    if not SIMULATOR and "sanitize(" in path.read_text():
        pytest.skip("the sanitizer runs CUDA kernels in the simulator only: this page runs in the default tier")
    monkeypatch.chdir(ROOT)
    namespace = {"__name__": "__doc_example__"}
    for i, code in enumerate(python_blocks(path)):
        exec(compile(code, f"{path.name}[block {i}]", "exec"), namespace)


def test_readme_quick_start_has_exactly_two_commands():
    quick = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert len(re.findall(r"```bash\n(.*?)```", quick, re.S)) == 2


def test_every_tutorial_chapter_exists_and_ends_with_exercises():
    chapters = sorted((ROOT / "docs" / "tutorials").glob("0*.md"))
    assert len(chapters) == 9
    for chapter in chapters:
        text = chapter.read_text()
        assert "## Exercises" in text and python_blocks(chapter), chapter.name


def test_chapter_two_runs_without_a_gpu_and_without_the_simulator_variable(tmp_path):
    """A reader with no GPU who never heard of NUMBA_ENABLE_CUDASIM runs chapter 2 as it is."""
    import os
    import subprocess
    import sys

    from hardware import cuda_probe

    if cuda_probe.real_gpu_count():
        pytest.skip("a real GPU is present: the chapter runs on it")
    script = tmp_path / "chapter2.py"
    script.write_text("\n".join(python_blocks(ROOT / "docs" / "tutorials" / "02-first-kernel.md")))
    env = {k: v for k, v in os.environ.items() if k != cuda_probe.SIMULATOR_VARIABLE}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's packages, as a reader's python started in it imports them
    out = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("CUDA kernels run on the simulator"), out.stdout[:200]
