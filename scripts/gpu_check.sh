#!/usr/bin/env bash
# The one-command GPU check, sized for one GPU window of nine minutes (issue 27). Runs with the GPU machine's
# own python3 (numba, numba-cuda, CuPy, PyTorch, pytest, hypothesis are there; nothing can be installed), from
# any directory. The steps, in order of value (if time runs out, what is lost is the end):
#   1. versions          GPU, driver, packages, `cli.py info`                          (versions.txt)
#   2. gpu test tier     `pytest -m gpu`: every kernel and layer test on the device, the captured-step tests,
#                        the PyTorch agreement tests                                    (pytest-gpu.log, .xml)
#   3. graph step        captured step vs eager and vs PyTorch eager and graph: LeNet b256, MLP b1024, LSTM
#                        (scripts/graph_step_gpu.py)                                    (graph-step.json)
#   4. gemm ladder       every GEMM rung, the CUDA C twin and TF32 vs cuBLAS; conv im2col and implicit GEMM vs
#                        cuDNN; SASS facts (scripts/gemm_ladder_gpu.py)                  (gemm-ladder.json)
#   5. sanitizer         compute-sanitizer memcheck, racecheck, synccheck, each over one run of
#                        scripts/launch_every_kernel.py (every kernel, the NVRTC ones too); one line
#                        "skipped: no compute-sanitizer" where the machine has none
#   6. train             LeNet, then the char LM, on cuda (CUDA graphs on: fit's default on a GPU)
# Each step has its own time limit; the limits add up to TOTAL_LIMIT (510 s), so the whole run, summary and
# archive included, ends within nine minutes: run it through the device tool with timeout_s=570.
# Results in one folder ($OUT when the device tool runs it, else ./gpu-check-out): summary.txt (each step's
# status, seconds and limit), the JSON results, and every log in gpu-check-logs.tar.gz.
#
# DRY_RUN=1 scripts/gpu_check.sh rehearses it here, with no GPU: every step runs its commands in a cheap mode
# (pytest --collect-only, the scripts' --dry-run, the CLI's arguments parsed), and the summary shows each step's
# time and that the limits fit. The ranks check is a second command: scripts/gpu_ranks_check.sh.
set -u
cd "$(dirname "$0")/.."
OUTDIR=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUTDIR"
LOGDIR=$(mktemp -d)  # the device tool returns at most 8 files: logs go here, packed into one archive at the end
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-/tmp/tilegrad-numba-cache}
export COLUMNS=${COLUMNS:-220}  # rich tables in the logs: one line per row, not wrapped at 80
DRY=${DRY_RUN:-0}
WINDOW=540        # seconds of GPU time this run must fit
TOTAL_LIMIT=${TOTAL_LIMIT:-510}  # all steps together; the rest of the window is the summary and the archive
ONLY=${ONLY:-}    # ONLY=graph,train reruns some steps (keys: versions,tests,graph,ladder,sanitizer,train; corpus: opt-in)
declare -a NAMES STATUS ELAPSED LIMITS
started=$(date +%s)
planned=0

if [ "$DRY" = 1 ]; then
  export NUMBA_ENABLE_CUDASIM=1
  DEVICE=sim
else
  DEVICE=cuda
fi

record() {  # record NAME STATUS SECONDS LIMIT
  NAMES+=("$1"); STATUS+=("$2"); ELAPSED+=("$3"); LIMITS+=("$4")
}

step() {  # step KEY NAME LIMIT_S LOGFILE COMMAND...
  local key=$1 name=$2 limit=$3 log=$4; shift 4
  if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$key,"* ]]; then return; fi
  planned=$(( planned + limit ))
  local t0=$(date +%s)
  local left=$(( TOTAL_LIMIT - (t0 - started) ))
  if [ "$left" -lt 10 ]; then record "$name" "SKIPPED (time)" 0 "$limit"; return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== $name (limit ${limit}s) -> $log"
  timeout --signal=INT --kill-after=10 "$limit" "$@" >"$LOGDIR/$log" 2>&1
  local rc=$?
  local status
  case $rc in 0) status=pass;; 124|130|137) status=TIMEOUT;; *) status="FAIL rc=$rc";; esac
  record "$name" "$status" $(( $(date +%s) - t0 )) "$limit"
  tail -n 3 "$LOGDIR/$log"
}

# a dry run's rehearsal of a CLI step: the CLI's parser reads exactly the arguments the GPU run passes
CLI_ARGS=(-c "import sys, cli; print('would run: cli.py', *sys.argv[1:]); print(cli.build_parser().parse_args(sys.argv[1:]))")

# 1. versions ---------------------------------------------------------------------------------------------------
step versions "versions" 20 versions.txt bash -c "
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,compute_cap --format=csv 2>&1 || echo 'nvidia-smi: not available';
  $PY - <<'PY'
import importlib.metadata as md, platform
print('python', platform.python_version())
for p in ('numba', 'numba-cuda', 'numpy', 'cupy-cuda13x', 'torch', 'cuda-bindings', 'cuda-core', 'pytest', 'hypothesis'):
    try: print(p, md.version(p))
    except md.PackageNotFoundError: print(p, 'not installed')
PY
  $PY cli.py --device $DEVICE info"

# 2. the gpu test tier (PyTorch agreement tests included: they are marked gpu) ----------------------------------
if [ "$DRY" = 1 ]; then
  step tests "gpu test tier (collect only: dry run)" 140 pytest-gpu.log $PY -m pytest tests -m gpu -q \
    -p no:cacheprovider -o addopts= --collect-only
else
  step tests "gpu test tier" 140 pytest-gpu.log $PY -m pytest tests -m gpu -q -p no:cacheprovider -o addopts= \
    --junitxml="$LOGDIR/pytest-gpu.xml"
fi

# 3. the captured step: replayed == eager, then ms/step vs PyTorch eager and graph --------------------------------
DRYFLAG=$([ "$DRY" = 1 ] && echo --dry-run)
step graph "captured step vs PyTorch" 90 graph-step.log $PY scripts/graph_step_gpu.py $DRYFLAG \
  --out "$LOGDIR/graph-step.json"

# 4. the GEMM ladder and the convolutions vs cuBLAS / cuDNN -------------------------------------------------------
step ladder "gemm ladder vs cuBLAS, conv vs cuDNN" 90 gemm-ladder.log $PY scripts/gemm_ladder_gpu.py $DRYFLAG \
  --out "$LOGDIR/gemm-ladder.json"

# 5. compute-sanitizer over every kernel: one run of launch_every_kernel.py per tool, only with a sanitizer ------
declare -A SANITIZER_LIMIT=([memcheck]=40 [racecheck]=40 [synccheck]=30)
SANITIZER_LIMITS=110
SANITIZER=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
if [ -z "$SANITIZER" ]; then
  if [ -z "$ONLY" ] || [[ ",$ONLY," == *",sanitizer,"* ]]; then
    echo "skipped: no compute-sanitizer"
    record "compute-sanitizer (skipped: no compute-sanitizer)" "skipped" 0 0
    planned=$(( planned + SANITIZER_LIMITS ))  # still counted: the plan must fit a machine that has one
  fi
else
  for tool in memcheck racecheck synccheck; do
    limit=${SANITIZER_LIMIT[$tool]}
    if [ "$DRY" = 1 ]; then
      step sanitizer "compute-sanitizer $tool (dry run)" "$limit" "sanitizer-$tool.log" bash -c \
        "'$SANITIZER' --version && $PY scripts/launch_every_kernel.py --dry-run"
    else
      step sanitizer "compute-sanitizer $tool" "$limit" "sanitizer-$tool.log" "$SANITIZER" --tool "$tool" \
        --error-exitcode 1 --print-limit 20 $PY scripts/launch_every_kernel.py
    fi
  done
fi

# 6. training end to end on cuda ----------------------------------------------------------------------------------
LENET=(--device cuda train --model lenet --epochs 3 --json "$LOGDIR/train-lenet.json" --plot "$LOGDIR/train-lenet.png")
CHARLM=(--device cuda train --model charlm --epochs 1 --limit 2048 --json "$LOGDIR/train-charlm.json")
if [ "$DRY" = 1 ]; then
  step train "train lenet on cuda (arguments parsed: dry run)" 30 train-lenet.txt $PY "${CLI_ARGS[@]}" "${LENET[@]}"
  step train "train charlm on cuda (arguments parsed: dry run)" 30 train-charlm.txt $PY "${CLI_ARGS[@]}" "${CHARLM[@]}"
else
  step train "train lenet on cuda" 30 train-lenet.txt $PY cli.py "${LENET[@]}"
  step train "train charlm on cuda" 30 train-charlm.txt $PY cli.py "${CHARLM[@]}"
fi

# 7. opt-in, a second short run (ONLY=corpus, ~4 min): compute-sanitizer and ncu on the sanitizer corpus's
# representative cases, beside what the simulator's sanitizer finds there (scripts/sanitizer_gpu_compare.py)
if [[ ",$ONLY," == *",corpus,"* ]]; then
  CASES=racecheck_block_sum,racecheck_block_sum_fixed,matmul_second_barrier,scan_warp,synccheck_divergent_threads
  CASES=$CASES,write_out_of_bounds,uninitialized_shared,transpose_tile_32x32,transpose_tile_32x33,strided_loads
  step corpus "NVIDIA's tools on the sanitizer corpus" 240 sanitizer-corpus.log $PY scripts/sanitizer_gpu_compare.py \
    $DRYFLAG --out "$LOGDIR" --cases "$CASES"
fi

# summary ---------------------------------------------------------------------------------------------------------
total=$(( $(date +%s) - started ))
{
  echo "=== summary: device $DEVICE, dry run $DRY, $total s in all; step limits add up to $planned s" \
    "(TOTAL_LIMIT $TOTAL_LIMIT s, window $WINDOW s)"
  printf '%-52s %-16s %7s %7s\n' step result seconds limit
  for i in "${!NAMES[@]}"; do
    printf '%-52s %-16s %7s %7s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${ELAPSED[$i]}" "${LIMITS[$i]}"
  done
  if [ "$planned" -le "$TOTAL_LIMIT" ]; then echo "fits: $planned s of limits <= $TOTAL_LIMIT s"
  else echo "DOES NOT FIT: $planned s of limits > $TOTAL_LIMIT s"; fi
  grep -sE "passed|failed|tests collected" "$LOGDIR/pytest-gpu.log" | tail -1
  grep -hsE "ERROR SUMMARY|kernels launched" "$LOGDIR"/sanitizer-*.log
} >"$LOGDIR/summary.txt"
for f in summary.txt graph-step.json gemm-ladder.json train-lenet.json train-charlm.json train-lenet.png \
    sanitizer-gpu-compare.json; do
  [ -f "$LOGDIR/$f" ] && cp "$LOGDIR/$f" "$OUTDIR/"
done
tar -czf "$OUTDIR/gpu-check-logs.tar.gz" -C "$LOGDIR" .
rm -rf "$LOGDIR"
echo
cat "$OUTDIR/summary.txt"
echo "files in $OUTDIR: $(ls "$OUTDIR" | tr '\n' ' ')"
fails=0
for st in "${STATUS[@]}"; do case $st in pass|skipped) ;; *) fails=$((fails + 1));; esac; done
[ "$planned" -le "$TOTAL_LIMIT" ] || fails=$((fails + 1))
exit $(( fails > 0 ))
