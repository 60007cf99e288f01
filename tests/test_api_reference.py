"""docs/api.md is generated from the docstrings and kept current; every public name has a docstring."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_generator():
    spec = importlib.util.spec_from_file_location("api_reference", ROOT / "scripts" / "api_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_public_name_has_a_docstring():
    _, missing = load_generator().collect()
    assert not missing, f"public names without a docstring: {missing}"


def test_api_reference_is_current():
    text, _ = load_generator().collect()
    assert (ROOT / "docs" / "api.md").read_text() == text, "docs/api.md is stale: run python scripts/api_reference.py"
