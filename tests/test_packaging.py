"""The package as a user installs it: every package folder is shipped, the command says its version.
(.ci/run also builds the wheel and runs `tilegrad` from outside the checkout: scripts/check_installed.sh.)"""

import subprocess
import sys
from pathlib import Path

import pytest
import setuptools

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_shipped_and_nothing_else():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(config["packages"]) == {"find"}, "packages are discovered, not listed"
    shipped = set(setuptools.find_packages(str(ROOT), **config["packages"]["find"]))
    folders = {p.parent.name for p in ROOT.glob("*/__init__.py")}  # the checkout's top-level packages
    assert {name.split(".")[0] for name in shipped} == folders
    assert {"hardware", "cuda_kernels", "runtime", "layers", "optim", "engine", "bench", "commands"} <= shipped


def test_version_names_the_distribution():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    out = subprocess.run([sys.executable, "cli.py", "--version"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"tilegrad {version}", out.stdout + out.stderr
