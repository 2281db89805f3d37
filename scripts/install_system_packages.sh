#!/usr/bin/env bash
# Install the Debian packages OphAI Clinic needs, only where they are missing.
#   fonts-noto-cjk: Chinese glyphs in PDFs; libpango*: WeasyPrint; gettext: compiled translations.
#   poppler-utils: pdftotext/pdftoppm used by the report tests.
#   nginx-light: tests/deploy runs the shipped nginx configuration in front of gunicorn.
#   libharfbuzz-subset0: fast font subsetting in WeasyPrint (fontTools takes ~3 s per CJK PDF).
#   chromium: the headless browser the web UI's Playwright tests drive.
#   wrk: the HTTP load generator of bench/http_load.py.
set -euo pipefail

PACKAGES=(fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 gettext poppler-utils chromium nginx-light wrk)
missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# Backups (manage.py backup, restore_drill) need PostgreSQL's client programs of any version.
command -v pg_dump >/dev/null 2>&1 || missing+=(postgresql-client)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing system packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "Missing system packages: ${missing[*]}. Install them as root: apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
if printf '%s\n' "${missing[@]}" | grep -q fonts-noto-cjk; then
    fc-cache -f >/dev/null
fi
