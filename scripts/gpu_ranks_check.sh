#!/usr/bin/env bash
# The prepared GPU check of data-parallel ranks (issue "Scale out, part 2", GPU ranks). On a machine with
# one GPU, two MPI ranks share it (local rank r takes GPU r mod the GPUs). In order of value, each step
# with its own time limit, all under TOTAL_LIMIT (default 420 s); JSON and logs under $OUT:
#   1. mpi.json        MPI library, mpi4py, CUDA-aware or not (and how that was decided), each rank's GPU
#   2. same.json       overlap and blocking train the same model: 2 ranks on the GPU, 3 epochs of a small
#                      MLP (tests/mpi_worker.py), parameters compared bit for bit, and against the CPU
#   3. transports.json with a CUDA-aware MPI: the direct path against the pinned-host path (forced with
#                      TILEGRAD_MPI_CUDA_AWARE=0), parameters compared; otherwise says why it was skipped
#   4. scaling.json    LeNet b64 and the MLP b256 on the GPU: 1 rank, then 2 ranks sharing it, blocking and
#                      overlap: step time, comm_ms, comm_hidden, efficiency (bench.scaling.run_scaling)
#   5. train.json      `mpiexec -n 2 cli.py train --model lenet --device cuda` end to end, its printed
#                      transport line kept in train.log
#   summary.json      every step's status and seconds (written last, always)
#
# mpi4py and mpiexec, found for whatever python3 the machine has (3.12 on the GPU machines): mpi4py importable by
# $PY, else carried in .venv/lib/python3.X/site-packages for that same 3.X; mpiexec on PATH, else the `mpich`
# wheel's own (pip's MPICH puts it in its environment's bin folder: found through the wheel's file list), else
# .venv/bin/mpiexec carried beside mpi4py (device tool: carry=[".venv/lib/python3.X/site-packages/mpi4py",
# ".venv/lib/python3.X/site-packages/mpich", ".venv/lib/libmpi.so.12", ".venv/bin/mpiexec", ".venv/bin/hydra_pmi_proxy"]).
# Without them the script stops at once and says which is missing in summary.json.
#
# Run through the device tool with timeout_s=480. DRY_RUN=1 rehearses it here: mpi4py and mpiexec found as on
# the GPU machine, the MPI probe run with 2 ranks on the CPU, every other step's command listed and its files
# and arguments checked (nothing trains).
set -u
cd "$(dirname "$0")/.."
OUTDIR=${OUT:-$PWD/gpu-check-out/ranks}  # gpu-check-out/ is git-ignored
mkdir -p "$OUTDIR"
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-/tmp/tilegrad-numba-cache}
export COLUMNS=${COLUMNS:-200}
TOTAL_LIMIT=${TOTAL_LIMIT:-420}
DRY=${DRY_RUN:-0}
started=$(date +%s)
declare -a NAMES STATUS ELAPSED

DEVICE=cuda
[ "$DRY" = 1 ] && DEVICE=cpu  # the probe's plumbing (mpiexec, mpi4py, 2 ranks) on the CPU; the rest is listed

# --- find mpi4py and mpiexec -----------------------------------------------------------------------------
PYVER=$($PY -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
if ! $PY -c "import mpi4py" 2>/dev/null && [ -d ".venv/lib/python$PYVER/site-packages/mpi4py" ]; then
  CARRIED=$(mktemp -d)
  ln -s "$PWD/.venv/lib/python$PYVER/site-packages/mpi4py" "$CARRIED/mpi4py"
  export PYTHONPATH=$PYTHONPATH:$CARRIED
  export LD_LIBRARY_PATH=$PWD/.venv/lib:$PWD/.venv/lib/mpich${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  echo "using the carried mpi4py from .venv (python $PYVER)"
fi
MPIEXEC=$(command -v mpiexec || true)
if [ -z "$MPIEXEC" ]; then  # pip's MPICH: the mpich wheel's own mpiexec, wherever its environment's bin is
  MPIEXEC=$($PY - <<'PY' 2>/dev/null
import importlib.metadata as md
files = [f for f in (md.files("mpich") or []) if f.name == "mpiexec"]
print(files[0].locate().resolve() if files else "")
PY
)
fi
if [ -z "$MPIEXEC" ] && [ -x .venv/bin/mpiexec ]; then MPIEXEC=$PWD/.venv/bin/mpiexec; fi
missing=""
$PY -c "import mpi4py" 2>/dev/null || missing="mpi4py (for python $PYVER)"
[ -n "$MPIEXEC" ] || missing="${missing:+$missing and }mpiexec (not on PATH, no mpich wheel)"
if [ -n "$missing" ]; then
  echo "{\"error\": \"no $missing on this machine, and no usable carried .venv (see the script header)\"}" \
    >"$OUTDIR/summary.json"
  cat "$OUTDIR/summary.json"; exit 1
fi
echo "mpiexec: $MPIEXEC; mpi4py $($PY -c 'import mpi4py; print(mpi4py.__version__)') on python $PYVER"
MPI2="$MPIEXEC -n 2"

step() {  # step KEY NAME LIMIT_S LOGFILE COMMAND...
  local key=$1 name=$2 limit=$3 log=$4; shift 4
  local t0=$(date +%s)
  local left=$(( TOTAL_LIMIT - (t0 - started) ))
  if [ "$left" -lt 20 ]; then NAMES+=("$name"); ELAPSED+=(0); STATUS+=("SKIPPED (time)"); return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== $name (limit ${limit}s) -> $log"
  if [ "$DRY" = 1 ] && [ "$key" != mpi ]; then  # a dry run lists the command (its inputs are checked below)
    set -- bash -c 'printf "would run:"; printf " %q" "$@"; echo' rehearse "$@"
  fi
  timeout --signal=INT --kill-after=15 "$limit" "$@" >"$OUTDIR/$log" 2>&1
  local rc=$?
  NAMES+=("$name"); ELAPSED+=($(( $(date +%s) - t0 )))
  case $rc in 0) STATUS+=("pass");; 124|130|137) STATUS+=("TIMEOUT");; *) STATUS+=("FAIL rc=$rc");; esac
  tail -n 4 "$OUTDIR/$log"
}

# 1. the MPI library, CUDA-awareness, each rank's GPU (a script file: mpiexec gives stdin to rank 0 only)
PROBE=$(mktemp --suffix=.py)
cat >"$PROBE" <<'PY'
import json, sys
from mpi4py import MPI
from engine.distributed import get_world
from runtime.device import Device
world = get_world()
index = world.bind_gpu()
dev = Device(sys.argv[2])
mine = {"rank": world.rank, "local_rank": world.local_rank, "gpu_index": index,
        "transport": world.transport(dev), "cuda_aware": world.cuda_aware(), "how": world.cuda_aware_how}
if index is not None:
    from numba import cuda
    current = cuda.get_current_device()
    mine["current_device"] = current.id
    mine["gpu"] = current.name.decode() if isinstance(current.name, bytes) else str(current.name)
ranks = world.comm.gather(mine)
if world.is_root:
    import mpi4py
    json.dump({"library": MPI.Get_library_version().strip(), "mpi4py": mpi4py.__version__, "ranks": ranks},
              open(sys.argv[1], "w"), indent=1)
    print(json.dumps(ranks, indent=1))
PY
step mpi "MPI, CUDA-aware, GPU per rank" 60 mpi.log $MPI2 $PY "$PROBE" "$OUTDIR/mpi.json" "$DEVICE"

# 2. overlap and blocking: the same parameters, bit for bit; and against one CPU process (float32 rounding)
W=$OUTDIR/w
MODE=train  # 3 epochs of an MLP 64-32-32-10 on 500 digits, batch 40
[ "$DRY" = 1 ] && MODE=short  # 2 steps of a tiny MLP: the simulator runs every GPU thread in Python
step same "overlap = blocking on the GPU" 150 same.log bash -c "
  $MPI2 $PY tests/mpi_worker.py $MODE $W-overlap overlap 0.002 $DEVICE &&
  $MPI2 $PY tests/mpi_worker.py $MODE $W-blocking blocking 1.0 $DEVICE &&
  env -u NUMBA_ENABLE_CUDASIM $PY tests/mpi_worker.py $MODE $W-cpu overlap 1.0 cpu &&
  $PY - $W $OUTDIR/same.json <<'PY'
import json, sys
import numpy as np
w = sys.argv[1]
o0, o1, b0 = (np.load(f'{w}-{n}.npy') for n in ('overlap.rank0', 'overlap.rank1', 'blocking.rank0'))
cpu = np.load(f'{w}-cpu.rank0.npy')
out = {'replicas_identical': bool(np.array_equal(o0, o1)), 'overlap_equals_blocking': bool(np.array_equal(o0, b0)),
       'max_abs_diff_vs_cpu_one_process': float(np.abs(o0 - cpu).max()),
       'transport': open(f'{w}-overlap.transport.txt').read().strip()}
json.dump(out, open(sys.argv[2], 'w'), indent=1); print(out)
sys.exit(0 if out['replicas_identical'] and out['overlap_equals_blocking'] else 1)
PY"

# 3. the direct (CUDA-aware) path against pinned host staging
step transports "direct vs pinned staging" 120 transports.log bash -c "
  aware=\$($PY -c 'import json; print(any(r[\"cuda_aware\"] for r in json.load(open(\"$OUTDIR/mpi.json\"))[\"ranks\"]))' 2>/dev/null)
  if [ \"\$aware\" != True ] || [ \"$DRY\" = 1 ]; then
    echo '{\"skipped\": \"the MPI library is not CUDA-aware (or a dry run): gradients go through pinned host buffers only\"}' > $OUTDIR/transports.json
    cat $OUTDIR/transports.json; exit 0
  fi
  $MPI2 $PY tests/mpi_worker.py $MODE $W-direct overlap 0.002 $DEVICE &&
  TILEGRAD_MPI_CUDA_AWARE=0 $MPI2 $PY tests/mpi_worker.py $MODE $W-staged overlap 0.002 $DEVICE &&
  $PY - $W $OUTDIR/transports.json <<'PY'
import json, sys
import numpy as np
w = sys.argv[1]
d, s = np.load(f'{w}-direct.rank0.npy'), np.load(f'{w}-staged.rank0.npy')
out = {'direct': open(f'{w}-direct.transport.txt').read().strip(), 'staged': open(f'{w}-staged.transport.txt').read().strip(),
       'identical': bool(np.array_equal(d, s)), 'max_abs_diff': float(np.abs(d - s).max())}
json.dump(out, open(sys.argv[2], 'w'), indent=1); print(out)
PY"

# 4. step time, comm, hidden fraction on the GPU: 1 rank, 2 ranks sharing it
STEPS=${STEPS:-30}; BIG_DEVICE=$DEVICE
[ "$DRY" = 1 ] && STEPS=3 && BIG_DEVICE=cpu  # LeNet in the simulator would take hours: the plumbing only
step scaling "1 and 2 ranks on one GPU" 150 scaling.log $PY - "$OUTDIR/scaling.json" "$BIG_DEVICE" "$STEPS" <<'PY'
import json, sys
from bench.scaling import print_allreduce_table, run_scaling
rows = run_scaling([1, 2], steps=int(sys.argv[3]), device=sys.argv[2])
json.dump(rows, open(sys.argv[1], "w"), indent=1)
print_allreduce_table(rows)
PY

# 5. the CLI end to end
EPOCHS=3; LIMIT=""
[ "$DRY" = 1 ] && EPOCHS=1 && LIMIT="--limit 64"
step train "train --model lenet, 2 ranks" 90 train.log \
  $MPI2 $PY cli.py train --model lenet --device $BIG_DEVICE --epochs $EPOCHS --batch-size 64 $LIMIT --json "$OUTDIR/train.json"

# a dry run checks what the listed steps would read: the worker and the scaling module import, the CLI parses
if [ "$DRY" = 1 ]; then
  step mpi "rehearsal: worker, scaling module, train arguments" 60 rehearsal.log bash -c "
    $PY -m py_compile tests/mpi_worker.py && $PY -c 'import bench.scaling' &&
    $PY -c 'import sys, cli; print(cli.build_parser().parse_args(sys.argv[1:]))' --device cuda train --model lenet \
      --epochs 3 --batch-size 64 --json x.json"
fi

# --- summary -------------------------------------------------------------------------------------------
{
  echo "{\"device\": \"$DEVICE\", \"dry_run\": $DRY, \"seconds\": $(( $(date +%s) - started )), \"steps\": ["
  for i in "${!NAMES[@]}"; do
    sep=","; [ "$i" -eq $(( ${#NAMES[@]} - 1 )) ] && sep=""
    echo "  {\"step\": \"${NAMES[$i]}\", \"status\": \"${STATUS[$i]}\", \"seconds\": ${ELAPSED[$i]}}$sep"
  done
  echo "]}"
} >"$OUTDIR/summary.json"
cat "$OUTDIR/summary.json"
