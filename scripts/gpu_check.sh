#!/usr/bin/env bash
# One unattended check of kit on a CUDA machine (`make gpu-check`), for whoever runs it without a chance to
# debug there. In order, each step under its own time limit, every step run whatever the others did:
#   1. the test suite (all of it, slow tests included);
#   2. scripts/bench_gpu.py: `kit train`'s loop on resnet34 at 512 px (AMP, channels_last) against a bare
#      PyTorch loop on the same batches and a plain fp32 loop, random weights, `kit synth` images; and the kit
#      loop forced to --amp fp16 + GradScaler (what --amp auto gives a T4/P100) against this card's bf16;
#   3. `kit train --fold all --gpus ...`: two folds fanned out over the GPUs (two processes on GPU 0 when there
#      is one), then `kit blend` of them;
#   4. a 2-process torchrun (NCCL) on one fold, when two GPUs are visible;
#   5. scripts/bench_end_to_end.py: `kit train` end to end on resnet34 at 512 px (bf16) on today's workers path
#      (2 workers) and the batch path (2 and 8 reader threads, and images on the GPU) against the same loop on batches
#      already on the GPU; `kit infer`'s d4 TTA against a bare forward loop over the same views.
# It ends with one summary table (also in $OUT_DIR/summary.md, each step's log beside it) and exits 1 if a
# step failed. Nothing is downloaded: random weights, synthetic data. Under 10 minutes on one GPU.
# On a machine without CUDA it says so in one line and exits 0.
#
# Usage: scripts/gpu_check.sh [--cpu-smoke] [--out DIR]
#   --cpu-smoke  the same steps, tiny and on the CPU (no suite): checks this script where there is no GPU
#   --out DIR    where logs and the summary go (default: gpu-check/, or $GPU_CHECK_OUT)
# Environment: PYTHON (default .venv/bin/python, else python3), GPU_CHECK_BUDGET (seconds, default 570).
set -u -o pipefail

cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
MODE=gpu
OUT_DIR=${GPU_CHECK_OUT:-gpu-check}
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu-smoke) MODE=cpu ;;
        --out) OUT_DIR=${2:?--out needs a folder}; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=$ROOT/.venv/bin/python; else PY=$(command -v python3 || command -v python); fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # this tree's kit, whatever is installed
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg

if ! TORCH=$("$PY" -c "import torch; print(torch.__version__)" 2>/dev/null); then
    echo "gpu-check: cannot import torch with $PY (run \`make install\`, or set PYTHON)"
    exit 1
fi
if [ "$MODE" = gpu ]; then
    GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)" 2>/dev/null)
    GPUS=${GPUS:-0}
    if [ "$GPUS" = 0 ]; then
        echo "gpu-check: no CUDA device visible to torch $TORCH (CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}); nothing to check"
        exit 0
    fi
else
    GPUS=0
fi

mkdir -p "$OUT_DIR" || exit 1
OUT_DIR=$(cd "$OUT_DIR" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
BUDGET=${GPU_CHECK_BUDGET:-570}
START=$SECONDS
ROWS=()
FAILED=0

# step NAME LIMIT NOTE -- COMMAND...: run COMMAND (log in $OUT_DIR/NAME.log) within LIMIT seconds and what is
# left of the budget; NOTE (a function reading $LOG) prints the summary's note when it passed.
step() {
    local name=$1 limit=$2 note=$3
    shift 4
    local left=$((BUDGET - (SECONDS - START) - 5))
    [ "$limit" -gt "$left" ] && limit=$left
    LOG=$OUT_DIR/$name.log
    if [ "$limit" -lt 15 ]; then
        ROWS+=("$(printf '%-12s %-8s %6s  %s' "$name" SKIPPED - "no time left in the ${BUDGET}s budget")")
        FAILED=1
        return
    fi
    echo "== $name (limit ${limit}s): $*"
    local began=$SECONDS status rc
    timeout --kill-after=15 "$limit" "$@" >"$LOG" 2>&1
    rc=$?
    case $rc in
        0) status=PASS ;;
        124|137) status=TIMEOUT; FAILED=1 ;;
        *) status=FAIL; FAILED=1 ;;
    esac
    local text
    text=$("$note" 2>/dev/null | tr '\n' ' ' | cut -c1-110)
    [ "$status" != PASS ] && text="exit $rc: $(grep -v '^\s*$' "$LOG" | tail -n 1 | cut -c1-100)"
    ROWS+=("$(printf '%-12s %-8s %5ss  %s' "$name" "$status" "$((SECONDS - began))" "$text")")
    echo "   $status in $((SECONDS - began))s"
}

note_suite() { grep -v '^\s*$' "$LOG" | tail -n 1 | tr -d '='; }
note_benchmark() {
    "$PY" - "$OUT_DIR/bench.json" <<'PYTHON'
import json, sys
loops = json.load(open(sys.argv[1]))["loops"]
print("; ".join("%s %.0f/s" % (loop["loop"], loop["images_per_s"]) for loop in loops))
PYTHON
}
note_endtoend() {
    "$PY" - "$OUT_DIR/end_to_end.json" <<'PYTHON'
import json, sys
result = json.load(open(sys.argv[1]))
train = ["%s %.2f" % (row["run"].split(", ", 1)[-1], row["vs_limit"]) for row in result["train"][:-1]]
print("of the limit: " + "; ".join(train) + "; infer d4 %.2f of bare" % result["predict"][0]["vs_bare"])
PYTHON
}
note_fanout() { echo "$(grep -c ': done on' "$LOG") fold runs done ($DEVICES), blended"; }
note_torchrun() { grep -o 'DDP rank 0/2 ([a-z]*)' "$LOG" | head -n 1; }

skip() {
    ROWS+=("$(printf '%-12s %-8s %6s  %s' "$1" SKIPPED - "$2")")
}

# 0. what this machine is
{
    echo "python: $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"
    "$PY" -c "import torch, timm, kit; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| timm',
        timm.__version__, '| kit from', kit.__path__[0])"
    command -v nvidia-smi >/dev/null && nvidia-smi -L
} >"$OUT_DIR/machine.log" 2>&1
DEVICE=$(if [ "$MODE" = gpu ]; then "$PY" -c "import torch; print(torch.cuda.get_device_name(0))" 2>/dev/null;
         else echo CPU; fi)
echo "gpu-check: $DEVICE x $GPUS, torch $TORCH, logs in $OUT_DIR"

# 1. the suite: one torch thread per test process (tiny models), in parallel where pytest-xdist is installed
#    (`make install` installs it); one process per test file, so module fixtures are built once.
if [ "$MODE" = gpu ]; then
    SUITE=(-q -p no:cacheprovider -rs --durations=15 --basetemp="$WORK/pytest")
    if "$PY" -c "import xdist" 2>/dev/null; then
        CORES=$("$PY" -c "import os; print(len(os.sched_getaffinity(0)))" 2>/dev/null || echo 2)
        PROCESSES=$((CORES / 2)); [ "$PROCESSES" -gt 8 ] && PROCESSES=8; [ "$PROCESSES" -lt 1 ] && PROCESSES=1
        SUITE+=(-n "$PROCESSES" --dist loadfile)
    fi
    step suite 270 note_suite -- env OMP_NUM_THREADS=1 "$PY" -m pytest "${SUITE[@]}" "$ROOT/tests"
else
    skip suite "--cpu-smoke (make test runs it)"
fi

# 2. throughput
if [ "$MODE" = gpu ]; then
    BENCH=(--json "$OUT_DIR/bench.json")
else
    BENCH=(--cpu-smoke --json "$OUT_DIR/bench.json")
fi
step benchmark 150 note_benchmark -- "$PY" "$ROOT/scripts/bench_gpu.py" "${BENCH[@]}"
cp "$OUT_DIR/benchmark.log" "$OUT_DIR/benchmark.txt" 2>/dev/null

# 3. folds fanned out over the GPUs, then blended
if [ "$MODE" = gpu ]; then
    DEVICES=$(seq -s, 0 $((GPUS - 1)))
    [ "$GPUS" = 1 ] && DEVICES=0,0
    TRAIN=(--model resnet34 --pretrained none --size 128 --epochs 1 --batch-size 32 --tta flip --workers 2)
else
    DEVICES=cpu,cpu
    TRAIN=(--model test_resnet --pretrained none --size 32 --epochs 1 --batch-size 8 --tta none --workers 0
           --device cpu)
fi
fanout() {
    cd "$WORK" || return 1
    "$PY" -m kit synth data --n-train 96 --n-test 16 --size "$1" --seed 1 &&
    "$PY" -m kit folds --data data --k 2 &&
    "$PY" -m kit train --data data --fold all --gpus "$DEVICES" --no-progress "${TRAIN[@]}" &&
    for fold in 0 1; do
        test -s "runs/${TRAIN[1]}/fold$fold/oof.csv" && test -s "runs/${TRAIN[1]}/fold$fold/test.csv" ||
            { echo "runs/${TRAIN[1]}/fold$fold: no predictions"; return 1; }
    done &&
    "$PY" -m kit blend --data data --name gpu-check
}
SIZE=128; [ "$MODE" = cpu ] && SIZE=32
export -f fanout
export PY WORK DEVICES
TRAIN_LIST=$(printf '%q ' "${TRAIN[@]}")
step fanout 120 note_fanout -- \
    bash -c "TRAIN=($TRAIN_LIST); fanout $SIZE"

# 4. one fold over two processes
if [ "$MODE" = gpu ] && [ "$GPUS" -lt 2 ]; then
    skip torchrun "needs 2 GPUs for 2 NCCL processes, $GPUS visible"
else
    step torchrun 120 note_torchrun -- \
        bash -c "cd '$WORK' && TRAIN=($TRAIN_LIST) && \"$PY\" -m torch.distributed.run --standalone --nproc_per_node 2 \
            -m kit train --data data --fold 0 --runs ddp --no-progress \"\${TRAIN[@]}\""
fi

# 5. kit train end to end (loader included) against the loop on batches on the GPU; kit infer's TTA
if [ "$MODE" = gpu ]; then
    E2E=(--json "$OUT_DIR/end_to_end.json")
else
    E2E=(--cpu-smoke --json "$OUT_DIR/end_to_end.json")
fi
step endtoend 200 note_endtoend -- "$PY" "$ROOT/scripts/bench_end_to_end.py" "${E2E[@]}"

{
    echo
    echo "kit gpu-check on $DEVICE x $GPUS (torch $TORCH), $(date -u '+%Y-%m-%d %H:%M UTC'), $((SECONDS - START))s"
    printf '%-12s %-8s %6s  %s\n' step result time note
    printf '%s\n' "${ROWS[@]}"
    if [ -s "$OUT_DIR/benchmark.txt" ]; then
        echo
        grep -v '^\s*$' "$OUT_DIR/benchmark.txt" | tail -n 5
    fi
    if [ -s "$OUT_DIR/endtoend.log" ]; then
        echo
        grep -v '^\s*$' "$OUT_DIR/endtoend.log" | tail -n 12
    fi
} | tee "$OUT_DIR/summary.md"
exit $FAILED
