#!/usr/bin/env bash
# The prepared one-command GPU check (issue "GPU truth 1"). Runs with the GPU machine's own python3
# (numba, numba-cuda, CuPy, PyTorch, pytest, hypothesis, rich, matplotlib, scikit-learn are there;
# nothing can be installed), from the repository root, in well under 8 minutes:
#   1. GPU, driver and package versions          (versions.txt)
#   2. the gpu test tier: every kernel and layer test on the device   (pytest-gpu.log, .xml)
#   3. compute-sanitizer memcheck, racecheck, synccheck over scripts/launch_every_kernel.py
#   4. python3 cli.py bench --device all --peers  (bench.json, bench.png, bench.txt)
#   5. launch overhead per kernel launch           (launch-overhead.json, for "GPU truth 3")
#   6. LeNet on digits for a few epochs on cuda    (train-lenet.json)
# Every log goes into one folder ($OUT when the device tool runs it, else ./gpu-check-out); a summary
# table comes last. Each step has its own time limit and all together stay under TOTAL_LIMIT (450 s),
# so one slow step cannot eat the others. Run it through the device tool with timeout_s=540.
#
# Dry run without a GPU (the simulator, CPU bench, MLP on CPU): DRY_RUN=1 scripts/gpu_check.sh
set -u
cd "$(dirname "$0")/.."
OUTDIR=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUTDIR"
# the device tool returns at most 8 files: logs are written here, then packed into one archive at the end
LOGDIR=$(mktemp -d)
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-/tmp/tilegrad-numba-cache}
DRY=${DRY_RUN:-0}
declare -a NAMES STATUS ELAPSED
started=$(date +%s)

TOTAL_LIMIT=${TOTAL_LIMIT:-450}  # seconds for all steps together: the summary always gets printed in time

step() {  # step NAME LIMIT_S LOGFILE COMMAND...
  local name=$1 limit=$2 log=$3; shift 3
  local t0=$(date +%s)
  local left=$(( TOTAL_LIMIT - (t0 - started) ))
  if [ "$left" -lt 20 ]; then
    NAMES+=("$name"); ELAPSED+=(0); STATUS+=("SKIPPED (time)"); return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== $name (limit ${limit}s) -> $log"
  timeout --signal=INT --kill-after=20 "$limit" "$@" >"$LOGDIR/$log" 2>&1
  local rc=$?
  NAMES+=("$name"); ELAPSED+=($(( $(date +%s) - t0 )))
  case $rc in 0) STATUS+=("pass");; 124|130|137) STATUS+=("TIMEOUT");; *) STATUS+=("FAIL rc=$rc");; esac
  tail -n 3 "$LOGDIR/$log"
}

if [ "$DRY" = 1 ]; then
  export NUMBA_ENABLE_CUDASIM=1
  DEVICE=sim
else
  DEVICE=cuda
fi

step "versions" 30 versions.txt bash -c "
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || echo 'nvidia-smi: not available';
  $PY - <<'PY'
import importlib.metadata as md, platform
print('python', platform.python_version())
for p in ('numba', 'numba-cuda', 'numpy', 'cupy-cuda13x', 'torch', 'cuda-bindings', 'pytest', 'hypothesis'):
    try: print(p, md.version(p))
    except md.PackageNotFoundError: print(p, 'not installed')
PY
  $PY cli.py info"

step "gpu test tier" 150 pytest-gpu.log $PY -m pytest tests -m gpu -q -p no:cacheprovider -o addopts= \
  --junitxml="$LOGDIR/pytest-gpu.xml"

SANITIZER=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
for tool in memcheck racecheck synccheck; do
  if [ "$DRY" = 1 ] || [ -z "$SANITIZER" ]; then
    why=$([ "$DRY" = 1 ] && echo "dry run" || echo "compute-sanitizer not found")
    step "launch every kernel (no sanitizer: $why)" 120 "sanitizer-$tool.log" \
      $PY scripts/launch_every_kernel.py
    [ "$DRY" = 1 ] && break
  else
    step "compute-sanitizer $tool" 75 "sanitizer-$tool.log" "$SANITIZER" --tool "$tool" --error-exitcode 1 \
      --print-limit 20 $PY scripts/launch_every_kernel.py
  fi
done

step "launch overhead" 40 launch-overhead.json $PY scripts/launch_overhead.py

if [ "$DRY" = 1 ]; then
  step "bench (CPU, quick: dry run)" 150 bench.txt $PY cli.py bench --quick --device cpu --ops gemm,optim \
    --json "$LOGDIR/bench.json" --plot "$LOGDIR/bench.png"
  step "train mlp on cpu (dry run)" 120 train.txt $PY cli.py train --model mlp --epochs 2 --device cpu \
    --json "$LOGDIR/train-lenet.json"
else
  step "bench --device all --peers" 180 bench.txt $PY cli.py bench --device all --peers \
    --json "$LOGDIR/bench.json" --plot "$LOGDIR/bench.png"
  step "train lenet on cuda" 60 train.txt $PY cli.py train --model lenet --epochs 4 --device cuda \
    --json "$LOGDIR/train-lenet.json" --plot "$LOGDIR/train-lenet.png"
fi

{
  echo "=== summary ($(( $(date +%s) - started )) s, device $DEVICE)"
  printf '%-55s %-14s %6s\n' step result seconds
  for i in "${!NAMES[@]}"; do
    printf '%-55s %-14s %6s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${ELAPSED[$i]}"
  done
  grep -E "passed|failed" "$LOGDIR/pytest-gpu.log" | tail -1
  grep -hE "ERROR SUMMARY|kernels launched" "$LOGDIR"/sanitizer-*.log 2>/dev/null
} > "$LOGDIR/summary.txt"
for f in summary.txt bench.json bench.png train-lenet.json train-lenet.png launch-overhead.json; do
  [ -f "$LOGDIR/$f" ] && cp "$LOGDIR/$f" "$OUTDIR/"
done
tar -czf "$OUTDIR/gpu-check-logs.tar.gz" -C "$LOGDIR" .
echo
cat "$LOGDIR/summary.txt"
echo "files in $OUTDIR: $(ls "$OUTDIR" | tr '\n' ' ')"
fails=0
for st in "${STATUS[@]}"; do [ "$st" = pass ] || fails=$((fails + 1)); done
exit $(( fails > 0 ))
