#!/usr/bin/env bash
# Audit the pinned requirements for known vulnerabilities with pip-audit.
# pip-audit needs a vulnerability service (PyPI's JSON API or OSV). Where neither can be reached
# (our build machines reach only a package mirror), say so plainly instead of pretending a pass.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! .venv/bin/python -m pip_audit --version >/dev/null 2>&1; then
    .venv/bin/python -m pip install -q --disable-pip-version-check pip-audit==2.10.1 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }
fi

reachable() { curl -s -o /dev/null -m 10 -w "%{http_code}" "$1" | grep -q '^2'; }
django_version=$(sed -n 's/^Django==//p' requirements.txt)
# pip-audit asks PyPI for each pinned release's JSON, which carries its known vulnerabilities.
if reachable "https://pypi.org/pypi/Django/${django_version}/json"; then
    service=pypi
elif reachable "https://api.osv.dev/v1/vulns/PYSEC-2024-47"; then
    service=osv
else
    echo "dependency audit: NOT RUN — no vulnerability database is reachable from this machine (PyPI JSON API and OSV both unreachable)."
    exit 0
fi
.venv/bin/python -m pip_audit --requirement requirements.txt --no-deps --disable-pip \
    --vulnerability-service "$service" --progress-spinner off --strict
