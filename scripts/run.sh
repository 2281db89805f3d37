#!/usr/bin/env bash
# Run the whole app on one machine: web server, the default task cluster and the AI cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
PY=.venv/bin/python

# Reports carry a QR code and an address for checking them; they must reach this server from a
# patient's phone, which http://localhost:8000 (the development default) never does.
verify_hint() {
    if [[ -z "${REPORT_VERIFY_BASE_URL:-}" ]]; then
        echo "Report QR codes point at http://localhost:8000, which only this computer can open."
        echo "  Set the address patients' phones can reach before printing reports, e.g."
        echo "  REPORT_VERIFY_BASE_URL=https://clinic.example.org make run"
    fi
}
if [[ "${1:-}" == "--verify-hint" ]]; then
    verify_hint
    exit 0
fi

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

verify_hint
echo "OphAI Clinic: http://$HOST:$PORT/  (admin: http://$HOST:$PORT/admin/; accounts: var/first-run-credentials.txt)"
$PY manage.py runserver "$HOST:$PORT" --noreload &
pids+=($!)
wait -n "${pids[@]}"
