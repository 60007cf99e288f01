#!/usr/bin/env bash
# The installed package, not the checkout: build the wheel, install it into a fresh virtual environment
# and run the `tilegrad` command from a folder outside the source tree (so nothing is imported from it).
# Run by .ci/run after the tests; run it yourself with `bash scripts/check_installed.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -m pip wheel -q --no-deps --wheel-dir "$work/wheel" .
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip
"$work/venv/bin/python" -m pip install -q "$work"/wheel/tilegrad-*.whl

mkdir "$work/elsewhere"
cd "$work/elsewhere"
export PATH="$work/venv/bin:$PATH"
echo "== installed: $(tilegrad --version)"
tilegrad bench --quick --ops gemm --device cpu
tilegrad train --model mlp --epochs 1 --device cpu
# every module came from site-packages, none from the checkout
python - <<'PY'
import cli, commands, engine, layers
for module in (cli, commands, engine, layers):
    assert "site-packages" in module.__file__, f"{module.__name__} imported from {module.__file__}"
print("== installed package OK: imported from site-packages")
PY
