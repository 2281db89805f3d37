#!/usr/bin/env bash
# Run the whole app on one machine: web server, the default task cluster and the AI cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
PY=.venv/bin/python

pids=()
cleanup() {
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

$PY manage.py qcluster &
pids+=($!)
Q_CLUSTER_NAME=ai $PY manage.py qcluster &
pids+=($!)

echo "OphAI Clinic: http://$HOST:$PORT/  (admin: http://$HOST:$PORT/admin/; accounts: var/first-run-credentials.txt)"
$PY manage.py runserver "$HOST:$PORT" --noreload &
pids+=($!)
wait -n "${pids[@]}"
