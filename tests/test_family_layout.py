"""Every kernel family file reads the same way, and every op is on every backend unless it says why not.

Layout (docs/architecture.md): the module docstring (napkin math; for multi-version families the versions
and what each teaches), the imports, then these banners in this order, each three lines exactly:

    # ------------------------------------------------------------------------------------------------
    # Reference: <optional short text>
    # ------------------------------------------------------------------------------------------------

titled ``Reference``, ``CPU twin``, ``GPU kernels`` (naive to fast), ``Launchers``, optionally preceded by
``Checks`` (the argument-check helpers), with an optional ``Element update`` between Reference and CPU twin
(a per-element body compiled once for the CPU twin and once for the GPU kernel). A section a family has
no code for (a CPU-only op has no GPU kernels) keeps its banner, with a comment line right under it saying
why. Registrations sit in the section of their backend: ``@implements(op, "numpy")`` under Reference,
``"cpu"`` under CPU twin, ``"cuda"`` under Launchers, and ``@gpu_kernel`` under GPU kernels.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ["batchnorm", "conv", "conv_image_gemm", "conv_implicit_gemm", "elementwise", "embedding", "gemm",
            "gemm_cuda_c", "gru", "layernorm", "lstm", "maxpool", "optimizers", "reductions", "rnn"]
SECTIONS = ("Reference", "CPU twin", "GPU kernels", "Launchers")
OPTIONAL_FIRST = "Checks"
OPTIONAL_SHARED = "Element update"  # one body for both backends: between Reference and CPU twin
RULE = "# " + "-" * 96
# Where each kind of registration belongs: @implements by backend, and GPU kernels.
HOME = {"numpy": "Reference", "cpu": "CPU twin", "cuda": "Launchers", "gpu_kernel": "GPU kernels"}


def family_path(name: str) -> Path:
    return ROOT / "cuda_kernels" / f"{name}.py"


def banners(lines: list[str]) -> list[tuple[int, str]]:
    """(1-based line of the title, title) for every well-formed banner, read top to bottom."""
    found, i = [], 0
    while i < len(lines) - 2:
        if lines[i] == RULE and lines[i + 2] == RULE and lines[i + 1].startswith("# "):
            found.append((i + 2, lines[i + 1][2:]))
            i += 3
        else:
            i += 1
    return found


def section_name(title: str) -> str | None:
    for name in (OPTIONAL_FIRST, OPTIONAL_SHARED, *SECTIONS):
        if title == name or title.startswith(name + ": "):
            return name
    return None


def layout_problems(text: str) -> list[str]:
    """What is wrong with one family file's sections (empty: nothing)."""
    lines = text.splitlines()
    tree = ast.parse(text)
    problems = []
    if ast.get_docstring(tree) is None:
        problems.append("no module docstring (napkin math, versions)")
    found = banners(lines)
    in_banners = {line for title_line, _ in found for line in (title_line - 1, title_line + 1)}
    for number, line in enumerate(lines, 1):
        if re.fullmatch(r"# -{10,}", line) and number not in in_banners:
            problems.append(f"line {number}: a rule line that is not part of a three-line banner "
                            f"('{RULE[:12]}...' 96 dashes, '# Title', the rule again)")
    names = [section_name(title) for _, title in found]
    for (number, title), name in zip(found, names):
        if name is None:
            problems.append(f"line {number}: banner {title!r} is none of "
                            f"{(OPTIONAL_FIRST, OPTIONAL_SHARED, *SECTIONS)}")
    expected = list(SECTIONS)
    if OPTIONAL_SHARED in names:
        expected.insert(1, OPTIONAL_SHARED)
    if names[:1] == [OPTIONAL_FIRST]:
        expected.insert(0, OPTIONAL_FIRST)
    if names != expected:
        problems.append(f"banners in this order: {names}; expected {expected}")
        return problems
    imports = [node.lineno for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    if imports and found[0][0] < max(imports):
        problems.append(f"line {found[0][0]}: the first banner comes before the imports end (line {max(imports)})")
    # Each section runs from its banner to the next one.
    bounds = [(name, number + 1, found[k + 1][0] - 2 if k + 1 < len(found) else len(lines))
              for k, (name, (number, _)) in enumerate(zip(names, found))]

    def section_of(line: int) -> str | None:
        return next((name for name, first, last in bounds if first <= line <= last), None)

    for name, first, last in bounds:
        code = [node for node in tree.body if first <= node.lineno <= last]
        if not code:
            below = lines[first] if first + 1 <= last else ""  # the line right under the closing rule
            if not below.startswith("# ") or re.fullmatch(r"# -+", below):
                problems.append(f"section {name!r} (line {first - 1}) holds no code: say why in a comment line "
                                f"right under its banner (e.g. the op exists on one backend only)")
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call else decorator
            kind = None
            if isinstance(target, ast.Name) and target.id == "implements" and call and len(call.args) >= 2 \
                    and isinstance(call.args[1], ast.Constant):
                kind = call.args[1].value
            elif isinstance(target, ast.Name) and target.id == "gpu_kernel":
                kind = "gpu_kernel"
            if kind in HOME:
                where = section_of(decorator.lineno)
                if where != HOME[kind]:
                    what = "@gpu_kernel" if kind == "gpu_kernel" else f"@implements(..., {kind!r})"
                    problems.append(f"line {decorator.lineno}: {node.name} ({what}) sits under {where!r}, "
                                    f"belongs under {HOME[kind]!r}")
    return problems


@pytest.mark.parametrize("family", FAMILIES)
def test_family_file_has_the_sections_in_order(family):
    problems = layout_problems(family_path(family).read_text())
    assert not problems, f"cuda_kernels/{family}.py:\n" + "\n".join(problems)


def test_every_family_file_is_listed():
    """A new family file joins FAMILIES (the helpers beside them are not families)."""
    helpers = {"__init__", "backend", "blas_calls", "capture", "ceilings", "checks", "cpu_tanh", "launch",
               "numpy_compat", "ptx", "shapes", "threads"}
    files = {p.stem for p in (ROOT / "cuda_kernels").glob("*.py")}
    assert files - helpers - set(FAMILIES) == set(), "a new family file: add it to FAMILIES (or to helpers)"


def test_the_layout_check_catches_a_wrong_order_and_a_misplaced_kernel():
    def banner(title):
        return f"{RULE}\n# {title}\n{RULE}\n"

    good = ('"""Doc."""\nimport numpy\n\n' + banner("Reference") + "\n@implements('op', 'numpy')\ndef f(): pass\n"
            + banner("CPU twin") + "# None: GPU only, because.\n" + banner("GPU kernels: naive to fast")
            + "@gpu_kernel('void()')\ndef k(): pass\n" + banner("Launchers")
            + "@implements('op', 'cuda')\ndef g(): pass\n")
    assert layout_problems(good) == []
    assert any("order" in p for p in layout_problems(good.replace("# CPU twin", "# Launchers", 1)))
    misplaced = good.replace("def f(): pass", "def f(): pass\n@gpu_kernel('v')\ndef k2(): pass")
    assert any("belongs under 'GPU kernels'" in p for p in layout_problems(misplaced))
    assert any("holds no code" in p for p in layout_problems(good.replace("# None: GPU only, because.\n", "")))
    assert any("rule line" in p for p in layout_problems(good.replace("# Reference\n", "# Reference\n# more\n")))


# ------------------------------------------------------------------------------------------------
# The backend registry: every op on every backend, or a declared reason
# ------------------------------------------------------------------------------------------------


def test_every_op_is_on_every_backend_unless_declared_single_backend():
    import cuda_kernels
    from cuda_kernels import backend

    assert backend.registry_problems() == []
    ops = cuda_kernels.all_ops()
    single = cuda_kernels.single_backend_ops()
    for op, (name, why) in single.items():
        assert [b for b in backend.BACKEND_NAMES if op in ops[b]] == [name], op
        assert why.strip(), op
    # the ones known today: host-side label conversion, and the CPU's per-image convolution
    assert single["copy_labels_checked"][0] == "cpu"
    assert single["conv2d_image_gemm_forward"][0] == single["conv2d_image_gemm_backward"][0] == "cpu"


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the registry, so that a test can register fake ops."""
    from cuda_kernels import backend

    monkeypatch.setattr(backend, "_REGISTRY", {name: dict(ops) for name, ops in backend._REGISTRY.items()})
    monkeypatch.setattr(backend, "_ONLY", dict(backend._ONLY))
    return backend


def test_an_op_on_one_backend_without_a_reason_is_an_error(scratch_registry):
    backend = scratch_registry
    backend.implements("made_up_op", "cpu")(lambda: None)
    assert any("made_up_op" in p for p in backend.registry_problems())
    with pytest.raises(ValueError, match="made_up_op"):
        backend.check_registry()


def test_a_declared_single_backend_op_passes_and_cannot_spread(scratch_registry):
    backend = scratch_registry
    backend.implements("made_up_op", "cpu", only="for this test")(lambda: None)
    assert backend.registry_problems() == []
    assert backend.single_backend_ops()["made_up_op"] == ("cpu", "for this test")
    with pytest.raises(ValueError, match="cpu'-only"):
        backend.implements("made_up_op", "cuda")(lambda: None)
    with pytest.raises(ValueError, match="already registered"):
        backend.implements("copy_labels_checked_2", "numpy")(lambda: None)
        backend.implements("copy_labels_checked_2", "cpu", only="late")(lambda: None)
    with pytest.raises(ValueError, match="say why"):
        backend.implements("another_op", "cpu", only=" ")
