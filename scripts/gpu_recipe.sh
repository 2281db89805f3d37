#!/usr/bin/env bash
# The GPU recipe for ophai-screening: what a session WITH a GPU runs (none has yet; every figure
# in the README so far is from the CPU). Prints the GPU, trains the candidates of
# bench/jobs/screening-gpu.txt side by side on the one GPU (one process per job, a wall-clock
# budget each, so every job ends with a scored package) and prints one table, then times the
# inference pipeline on the GPU at batch 1 and 32 with and without CAMs.
#
#   scripts/gpu_recipe.sh                 # MINUTES=8 per job, PARALLEL=7 jobs at once
#   MINUTES=4 PARALLEL=4 scripts/gpu_recipe.sh
#
# Then pick the best job by its "val F1" column, check it with
#   .venv/bin/python manage.py evaluate_model var/runs/gpu/JOB ../shared/data/fundus/labels.csv \
#       --where dataset=odir --split test --out var/runs/gpu/JOB-eval --cam-sheet var/runs/gpu/JOB-cams.png
# and copy it to ai_engine/packages/ophai-screening with a new --model-version.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data/fundus/labels.csv}
OUT=${OUT:-var/runs/gpu}
MINUTES=${MINUTES:-8}
PARALLEL=${PARALLEL:-7}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"

$PY bench/train_jobs.py bench/jobs/screening-gpu.txt --out "$OUT" --parallel "$PARALLEL" --common \
    "--data $DATA --where dataset=odir --task multiclass --labels normal,cataract,glaucoma \
     --val-fraction 0.15 --test-fraction 0.2 --phase1-epochs 0 --epochs 400 --patience 400 \
     --budget-minutes $MINUTES --batch-size 64 --loss ce --label-smoothing 0.1 --ema 0.998 \
     --device cuda --cache-dir var/cache/training --model-version 1.1.0"

$PY bench/ai_pipeline.py ai_engine/packages/ophai-screening --device cuda --throughput 1,32
