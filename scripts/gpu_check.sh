#!/usr/bin/env bash
# The prepared one-command GPU check (issue "GPU truth 1"). Runs with the GPU machine's own python3
# (numba, numba-cuda, CuPy, PyTorch, pytest, hypothesis, rich, matplotlib, scikit-learn are there;
# nothing can be installed), from the repository root, in well under 8 minutes:
#   1. GPU, driver and package versions          (versions.txt)
#   2. the gpu test tier: every kernel and layer test on the device   (pytest-gpu.log, .xml)
#   3. python3 cli.py bench --device all --peers  (bench.json, bench.png, bench.txt)
#   3b. the GEMM ladder vs cuBLAS/cuDNN, SASS facts (gemm-ladder.json; scripts/gemm_ladder_gpu.py)
#   4. launch overhead per kernel launch           (launch-overhead.json, for "GPU truth 3")
#   5. compute-sanitizer memcheck, racecheck, synccheck over scripts/launch_every_kernel.py
#   6. LeNet on digits for a few epochs on cuda    (train-lenet.json)
# The order is the order of value: if time runs out, what is lost is the end. The bench, stopped at its
# limit, still writes the rows it measured (its JSON says where it stopped).
# Every log goes into one folder ($OUT when the device tool runs it, else ./gpu-check-out); a summary
# table comes last. Each step has its own time limit and all together stay under TOTAL_LIMIT (400 s),
# so one slow step cannot eat the others. Run it through the device tool with timeout_s=450: that leaves
# a 15-minute device budget room for a second, shorter call that reruns what failed.
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
export COLUMNS=${COLUMNS:-220}  # rich tables in the logs: one line per row, not wrapped at 80
declare -a NAMES STATUS ELAPSED
started=$(date +%s)

TOTAL_LIMIT=${TOTAL_LIMIT:-400}  # seconds for all steps together: the summary always gets printed in time
# ONLY=bench,train reruns some steps (keys: versions,tests,bench,ladder,graph,launch,memcheck,racecheck,synccheck,
# train)
ONLY=${ONLY:-}
# what the bench step times: a rerun that follows up on GPU rows alone can skip the CPU (BENCH_DEVICE=cuda)
BENCH_DEVICE=${BENCH_DEVICE:-all}
BENCH_OPS=${BENCH_OPS:-gemm,optim,train,conv,pool,elementwise,rnn}

step() {  # step KEY NAME LIMIT_S LOGFILE COMMAND...
  local key=$1 name=$2 limit=$3 log=$4; shift 4
  if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$key,"* ]]; then return; fi
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

step versions "versions" 30 versions.txt bash -c "
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || echo 'nvidia-smi: not available';
  $PY - <<'PY'
import importlib.metadata as md, platform
print('python', platform.python_version())
for p in ('numba', 'numba-cuda', 'numpy', 'cupy-cuda13x', 'torch', 'cuda-bindings', 'pytest', 'hypothesis'):
    try: print(p, md.version(p))
    except md.PackageNotFoundError: print(p, 'not installed')
PY
  $PY cli.py info"

WARMUP_PID=
if [ "$DRY" != 1 ] && { [ -z "$ONLY" ] || [[ ",$ONLY," == *",bench,"* ]]; }; then
  # Compile (and cache in NUMBA_CACHE_DIR) the CPU twins while the GPU tests run, on cores they leave idle:
  # the bench then starts warm instead of spending its first minute in Numba's CPU compiler.
  timeout 150 $PY cli.py bench --quick --device cpu >"$LOGDIR/cpu-warmup.log" 2>&1 &
  WARMUP_PID=$!
fi

step tests "gpu test tier" 110 pytest-gpu.log $PY -m pytest tests -m gpu -q -p no:cacheprovider -o addopts= \
  --junitxml="$LOGDIR/pytest-gpu.xml"

if [ -n "$WARMUP_PID" ]; then  # at most 30 s more for the warm-up, then stop it: it must not run beside the bench
  for _ in $(seq 30); do kill -0 "$WARMUP_PID" 2>/dev/null || break; sleep 1; done
  kill -TERM "$WARMUP_PID" 2>/dev/null; wait "$WARMUP_PID" 2>/dev/null
fi

if [ "$DRY" = 1 ]; then
  step bench "bench (CPU, quick: dry run)" 150 bench.txt $PY cli.py bench --quick --device cpu --ops gemm,optim \
    --json "$LOGDIR/bench.json" --plot "$LOGDIR/bench.png"
else
  step bench "bench --device $BENCH_DEVICE --peers" 200 bench.txt $PY cli.py bench --device "$BENCH_DEVICE" --peers \
    --ops "$BENCH_OPS" --json "$LOGDIR/bench.json" --plot "$LOGDIR/bench.png"
fi

# the GEMM ladder (issue #19): every rung, the CUDA C twin and TF32 tensor cores vs cuBLAS at 1024^3 and 4096^3
# (TF32 on for the *_tf32 row), LeNet c2 fwd+bwd vs cuDNN, SASS facts per GEMM kernel (gemm-ladder.json)
if [ "$DRY" = 1 ]; then
  step ladder "gemm ladder (skipped: dry run)" 5 gemm-ladder.log echo "the ladder times a real GPU only"
else
  step ladder "gemm ladder vs cuBLAS + SASS facts" 150 gemm-ladder.log $PY scripts/gemm_ladder_gpu.py \
    --out "$LOGDIR/gemm-ladder.json"
fi

# the whole training step as one CUDA graph (issue #18): replayed == eager (cosine, dropout, Adam), then ms/step
# for LeNet b64/b256 and MLP b256/b1024: tilegrad eager/graph vs PyTorch eager/graph (graph-step.json, in the tar)
if [ "$DRY" = 1 ]; then
  step graph "cuda graph step (skipped: dry run)" 5 graph-step.log echo "the graph step times a real GPU only"
else
  step graph "cuda graph step vs torch" 90 graph-step.log $PY scripts/graph_step_gpu.py \
    --out "$LOGDIR/graph-step.json"
fi

# its JSON line alone in the .json (numba-cuda's warnings go to the .log)
step launch "launch overhead" 40 launch-overhead.log bash -c \
  "$PY scripts/launch_overhead.py > '$LOGDIR/launch-overhead.json'"

SANITIZER=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
for tool in memcheck racecheck synccheck; do
  if [ "$DRY" = 1 ] || [ -z "$SANITIZER" ]; then
    why=$([ "$DRY" = 1 ] && echo "dry run" || echo "compute-sanitizer not found")
    step "$tool" "launch every kernel (no sanitizer: $why)" 120 "sanitizer-$tool.log" \
      $PY scripts/launch_every_kernel.py
    [ "$DRY" = 1 ] && break
  else
    step "$tool" "compute-sanitizer $tool" 45 "sanitizer-$tool.log" "$SANITIZER" --tool "$tool" --error-exitcode 1 \
      --print-limit 20 $PY scripts/launch_every_kernel.py
  fi
done

if [ "$DRY" = 1 ]; then
  step train "train mlp on cpu (dry run)" 120 train.txt $PY cli.py train --model mlp --epochs 2 --device cpu \
    --json "$LOGDIR/train-lenet.json"
else
  step train "train lenet on cuda" 40 train.txt $PY cli.py train --model lenet --epochs 4 --device cuda \
    --json "$LOGDIR/train-lenet.json" --plot "$LOGDIR/train-lenet.png"
fi

{
  echo "=== summary ($(( $(date +%s) - started )) s, device $DEVICE)"
  printf '%-55s %-14s %6s\n' step result seconds
  for i in "${!NAMES[@]}"; do
    printf '%-55s %-14s %6s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${ELAPSED[$i]}"
  done
  grep -sE "passed|failed" "$LOGDIR/pytest-gpu.log" | tail -1
  grep -hE "ERROR SUMMARY|kernels launched" "$LOGDIR"/sanitizer-*.log 2>/dev/null
  grep -h "bench interrupted" "$LOGDIR/bench.txt" 2>/dev/null
} > "$LOGDIR/summary.txt"
for f in summary.txt bench.json bench.png gemm-ladder.json train-lenet.json train-lenet.png launch-overhead.json; do
  [ -f "$LOGDIR/$f" ] && cp "$LOGDIR/$f" "$OUTDIR/"
done
tar -czf "$OUTDIR/gpu-check-logs.tar.gz" -C "$LOGDIR" .
echo
cat "$LOGDIR/summary.txt"
echo "files in $OUTDIR: $(ls "$OUTDIR" | tr '\n' ' ')"
fails=0
for st in "${STATUS[@]}"; do [ "$st" = pass ] || fails=$((fails + 1)); done
exit $(( fails > 0 ))
