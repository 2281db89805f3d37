#!/usr/bin/env bash
# Create .venv with Python 3.11 and install the pinned requirements when they changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON_BIN=${PYTHON:-}
if [ -z "$PYTHON_BIN" ]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            PYTHON_BIN=$candidate
            break
        fi
    done
fi
if [ -z "$PYTHON_BIN" ]; then
    echo "OphAI Clinic needs Python 3.11 (python3.11 on PATH, or set PYTHON=/path/to/python3.11)." >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    echo "Creating .venv with $PYTHON_BIN"
    "$PYTHON_BIN" -m venv .venv
fi

stamp=.venv/.requirements.sha256
wanted=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "Installing pinned requirements (first time: a few minutes, torch is large)"
    # pip's notes about unused local index folders are noise here; real errors still fail the step.
    set -o pipefail
    .venv/bin/python -m pip install --disable-pip-version-check -q -r requirements.txt 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    echo "$wanted" > "$stamp"
fi
