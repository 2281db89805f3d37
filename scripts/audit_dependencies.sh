#!/usr/bin/env bash
# Audit the installed Python packages for known vulnerabilities.
# pip-audit needs a vulnerability service: PyPI's per-release JSON or OSV. Our build machines
# reach only the package registries, where PyPI serves the project JSON but not the per-release
# one; there scripts/audit_dependencies.py reads what the project JSON can say (vulnerabilities
# of the newest release, yanked releases, newer patches in the same series) and names every
# package it cannot cover.
set -euo pipefail
cd "$(dirname "$0")/.."

reachable() { curl -s -o /dev/null -m 10 -w "%{http_code}" "$1" | grep -q '^2'; }
django_version=$(sed -n 's/^Django==//p' requirements.txt)
if reachable "https://pypi.org/pypi/Django/${django_version}/json"; then
    service=pypi
elif reachable "https://api.osv.dev/v1/vulns/PYSEC-2024-47"; then
    service=osv
else
    exec .venv/bin/python scripts/audit_dependencies.py --requirements requirements.txt
fi
if ! .venv/bin/python -m pip_audit --version >/dev/null 2>&1; then
    .venv/bin/python -m pip install -q --disable-pip-version-check pip-audit==2.10.1 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }
fi
.venv/bin/python -m pip_audit --requirement requirements.txt --no-deps --disable-pip \
    --vulnerability-service "$service" --progress-spinner off --strict
