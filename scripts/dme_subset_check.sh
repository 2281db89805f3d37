#!/usr/bin/env bash
# The DME subset check (issue 13): in dme/ nearly every DME-positive photo has DR "unknown", so a
# model could score well by recognising that subset (clinic, camera) instead of oedema. On the
# package's own TEST patients (split.json) this prints
#   1. the figures per value of dme/'s dr column, with each value's mean P(DME) among positives
#      and negatives and the AUC of P(DME) for "this value against the others" among images of
#      the same truth (≈ 0.5: the model does not tell the subset apart);
#   2. the DME AUC, sensitivity and specificity (95% CIs) within rows whose DR is known
#      (dr != unknown: none / npdr / pdr);
#   3. the same within dr_camera/ (maculopathy yes/no; another country and camera).
# Reports go to var/runs/NAME-subset/{by-dr,known-dr,dr-camera}/evaluation.json.
#
#   scripts/dme_subset_check.sh /work/runs/ophai-dme
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data}
PACKAGE=${1:?usage: scripts/dme_subset_check.sh PACKAGE}
OUT=${OUT:-var/runs/$(basename "$PACKAGE")-subset}
COMMON=(--positive 1,yes --split test --bootstrap "${ROUNDS:-1000}" --threads "${THREADS:-1}")

echo "== 1. dme/ test rows per DR value"
$PY manage.py evaluate_model "$PACKAGE" "$DATA/dme/labels.csv" --label-column dme "${COMMON[@]}" \
    --group-by dr --out "$OUT/by-dr"
echo "== 2. dme/ test rows whose DR is known (dr != unknown)"
$PY manage.py evaluate_model "$PACKAGE" "$DATA/dme/labels.csv" --label-column dme "${COMMON[@]}" \
    --where 'dr!=unknown' --out "$OUT/known-dr"
echo "== 3. dr_camera/ test rows (maculopathy)"
$PY manage.py evaluate_model "$PACKAGE" "$DATA/dr_camera/labels.csv" --label-column maculopathy \
    "${COMMON[@]}" --out "$OUT/dr-camera"
echo "== for the card's evidence lines"
$PY scripts/dme_subset_summary.py "$OUT"
