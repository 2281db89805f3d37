#!/usr/bin/env bash
# The GPU recipe for ophai-dr and ophai-dme (issue 13): what a session WITH a GPU runs. Trains the
# candidates of bench/jobs/dr-gpu.txt (ICDR 0–4 at 256 / 384 / 512 px, ImageNet MobileNetV2
# against random weights) and bench/jobs/dme-gpu.txt side by side on the one GPU, one process per
# job with a wall-clock budget each (every job ends with a scored package), and prints one table
# per model: referable AUC, sensitivity/specificity at the card's operating point (chosen on
# validation, sensitivity first) and QWK with 95% CIs; DME AUC, sensitivity and specificity.
#
#   scripts/gpu_recipe_dr.sh                      # MINUTES=10 per job, PARALLEL=7 jobs at once
#   MINUTES=4 PARALLEL=4 ONLY=dme scripts/gpu_recipe_dr.sh
#
# Then, for the job picked by its "val F1" column (JOB):
#   .venv/bin/python manage.py evaluate_model var/runs/gpu-dr/JOB ../shared/data/fundus/labels.csv \
#       ../shared/data/dr_camera/labels.csv --split test --out var/runs/gpu-dr/JOB-eval
#   .venv/bin/python manage.py grade_folder var/runs/gpu-dr/JOB ../shared/data/highres
#   .venv/bin/python manage.py evaluate_model var/runs/gpu-dme/JOB ../shared/data/dme/labels.csv \
#       --label-column dme --positive 1,yes --where 'dr!=unknown' --group-by dr --split test \
#       --out var/runs/gpu-dme/JOB-known-dr
# and copy the packages to ai_engine/packages/ with a new --model-version.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data}
MINUTES=${MINUTES:-10}
PARALLEL=${PARALLEL:-7}
ONLY=${ONLY:-}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"

COMMON="--val-fraction 0.15 --test-fraction 0.2 --phase1-epochs 0 --epochs 400 --patience 400 \
  --budget-minutes $MINUTES --batch-size 64 --ema 0.998 --device cuda --cache-dir var/cache/training \
  --preprocessing fundus_crop,pad_square,resize,ben_graham,normalize --model-version 1.1.0"

if [ "$ONLY" != "dme" ]; then
  $PY bench/train_jobs.py bench/jobs/dr-gpu.txt --out var/runs/gpu-dr --parallel "$PARALLEL" --common \
    "--data $DATA/fundus/labels.csv --data $DATA/dr_camera/labels.csv \
     --labels dr_grade_0,dr_grade_1,dr_grade_2,dr_grade_3,dr_grade_4 --loss ce --label-smoothing 0.1 \
     --sensitivity-target 0.9 $COMMON"
fi
if [ "$ONLY" != "dr" ]; then
  $PY bench/train_jobs.py bench/jobs/dme-gpu.txt --out var/runs/gpu-dme --parallel "$PARALLEL" --common \
    "--data $DATA/dme/labels.csv --data $DATA/dr_camera/labels.csv --task binary --labels dme \
     --positive 1,yes --label-column dme,maculopathy --loss bce $COMMON"
fi
