"""What operations rely on: the production settings pass `check --deploy` with no warning, and a
backup of the live database restores into a scratch database with the same rows and files."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.db import connection

from tests.conftest import REPO_ROOT, REQUIRE_SERVICES, fundus_like_jpeg
from tests.factories import PatientFactory, ScreeningRecordFactory
from tests.reliability.processes import database_url
from tests.reliability.tally import TALLY, note

ISSUE = re.compile(r"^\S.*: \((\w+\.[WE]\d+)\)", re.M)


def test_production_settings_pass_check_deploy_with_no_warning(db):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "DJANGO_SETTINGS_MODULE", "REDIS_URL"}
    }
    env.update(
        DJANGO_ENV="production",
        DJANGO_SETTINGS_MODULE="clinic.settings",
        SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="clinic.example.org",
        REPORT_VERIFY_BASE_URL="https://clinic.example.org",
        CSRF_TRUSTED_ORIGINS="https://clinic.example.org",
        DATABASE_URL=database_url() if connection.vendor == "postgresql" else "",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    issues = ISSUE.findall(output)
    TALLY.deploy_warnings = len(issues)
    note(f"[deploy] manage.py check --deploy (DJANGO_ENV=production): {issues or 'no issues'}")
    assert (result.returncode, issues) == (0, []), output


@pytest.mark.django_db(transaction=True)
def test_a_backup_of_the_database_restores_and_verifies(transactional_roles, settings, tmp_path):
    if connection.vendor != "postgresql" and REQUIRE_SERVICES:
        pytest.fail("CI runs the restore drill on PostgreSQL")
    settings.MEDIA_ROOT = tmp_path / "media"
    (settings.MEDIA_ROOT / "fundus").mkdir(parents=True)
    for seed in range(3):
        (settings.MEDIA_ROOT / "fundus" / f"{seed}.jpg").write_bytes(fundus_like_jpeg(seed=seed))
    for _ in range(3):
        ScreeningRecordFactory(patient=PatientFactory())
    TALLY.backup = "FAILED"
    call_command("backup", "--to", str(tmp_path / "backups"), "--verify")
    folder = next((tmp_path / "backups").iterdir())
    manifest = json.loads((folder / "manifest.json").read_text())
    rows = sum(manifest["counts"].values())
    assert manifest["counts"]["screening_screeningrecord"] == 3
    assert len(manifest["files"]) == 3
    TALLY.backup = (
        f"yes ({manifest['vendor']}: {rows} rows in {len(manifest['counts'])} tables, "
        f"{len(manifest['files'])} files)"
    )
    note(f"[backup] manage.py backup --verify: restored into a scratch database, {TALLY.backup}")
