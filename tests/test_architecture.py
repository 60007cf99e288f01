"""The direction rules of docs/architecture.md, written once: every module imports only from floors below
its own (or from its own package). Lazy imports inside functions count as much as those at the top."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Bottom to top. A module may import its own package and any package on a lower floor, nothing else.
FLOORS = [
    ("ground floor", {"hardware"}),
    ("simulator checker", {"sanitizer"}),
    ("kernel layer", {"cuda_kernels"}),
    ("runtime", {"runtime"}),
    ("layers and optimizers", {"layers", "optim"}),
    ("engine", {"engine"}),
    ("bench", {"bench"}),
    ("commands", {"commands"}),
    ("entry point", {"cli"}),
]
FLOOR_OF = {package: level for level, (_, packages) in enumerate(FLOORS) for package in sorted(packages)}
# What the layers may take from the kernel layer besides device.kernels: sizes and buffer shapes.
LAYERS_MAY_IMPORT = {"cuda_kernels.shapes"}
# Modules that must import nothing outside the standard library at import time.
STANDARD_LIBRARY_ONLY = ["hardware/cuda_probe.py", "hardware/__init__.py", "cuda_kernels/shapes.py"]


def source_files():
    for package in FLOOR_OF:
        path = ROOT / f"{package}.py"
        yield from [path] if path.exists() else sorted((ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, top_level_only: bool = False):
    """(line, imported module) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            # ``from cuda_kernels import shapes`` imports the module cuda_kernels.shapes
            yield node.lineno, name
            for alias in node.names:
                yield node.lineno, f"{name}.{alias.name}"


def test_every_package_is_on_a_floor():
    """A new top-level package must be given a floor here before it can be imported from."""
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - set(FLOOR_OF) == set(), "give these packages a floor in FLOORS"


@pytest.mark.parametrize("path", list(source_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_only_go_down(path):
    own = module_name(path).split(".")[0]
    floor = FLOOR_OF[own]
    wrong = []
    for line, name in imports(path):
        top = name.split(".")[0]
        if top not in FLOOR_OF or top == own:
            continue
        if FLOOR_OF[top] >= floor:
            wrong.append(f"line {line}: {name} ({FLOORS[FLOOR_OF[top]][0]}, not below {FLOORS[floor][0]})")
        elif own == "layers" and top == "cuda_kernels" and not any(
                name == allowed or name.startswith(allowed + ".") for allowed in LAYERS_MAY_IMPORT):
            if name != "cuda_kernels":
                wrong.append(f"line {line}: {name} (layers call device.kernels; they import only {LAYERS_MAY_IMPORT})")
    assert not wrong, f"{path.relative_to(ROOT)} imports upward or sideways:\n" + "\n".join(wrong)


@pytest.mark.parametrize("relative", STANDARD_LIBRARY_ONLY)
def test_ground_floor_modules_import_only_the_standard_library(relative):
    path = ROOT / relative
    foreign = sorted({name for _, name in imports(path, top_level_only=True)
                      if name.split(".")[0] not in sys.stdlib_module_names | {"__future__"}
                      and name.split(".")[0] != module_name(path).split(".")[0]})
    assert not foreign, f"{relative} must import only the standard library at import time, imports {foreign}"


def test_the_rules_catch_an_upward_import(tmp_path, monkeypatch):
    """The checker itself: a kernel module that imports the engine is reported."""
    fake = tmp_path / "cuda_kernels" / "bad.py"
    fake.parent.mkdir()
    fake.write_text("def f():\n    from engine.training import fit\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    with pytest.raises(AssertionError, match="engine.training"):
        test_imports_only_go_down(fake)


def test_architecture_doc_names_every_floor_and_only_files_that_exist():
    """docs/architecture.md is the map: every package on it, and every path it names still there."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    missing_packages = [p for p in FLOOR_OF if f"`{p}/`" not in text and f"`{p}.py`" not in text]
    assert not missing_packages, f"docs/architecture.md does not place {missing_packages} on a floor"
    paths = set(re.findall(r"`((?:[a-z_]+/)+[a-z_]+\.(?:py|md))`", text))
    gone = sorted(p for p in paths if not (ROOT / p).exists())
    assert not gone, f"docs/architecture.md names files that do not exist: {gone}"
