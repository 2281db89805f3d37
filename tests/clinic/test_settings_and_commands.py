import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from patients.models import Patient
from screening.models import FundusImage, ScreeningRecord
from tests.conftest import REPO_ROOT, fundus_like_jpeg

PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "x" * 20 + "production-secret-key-for-the-check-0123456789abcdef",
    "ALLOWED_HOSTS": "clinic.example.org",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/ophai",
    "REPORT_VERIFY_BASE_URL": "https://clinic.example.org",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "clinic.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_a_production_environment():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "REPORT_VERIFY_BASE_URL"])
def test_production_refuses_to_start_without_its_secrets(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert f"{missing} must be set in production" in result.stderr


@pytest.mark.parametrize(
    "value", ["clinic.example.org", "ftp://clinic.example.org", "https://", "https://a b.org"]
)
def test_a_report_verification_address_that_is_no_web_address_is_refused(value):
    result = manage("check", env=PRODUCTION_ENV | {"REPORT_VERIFY_BASE_URL": value})
    assert result.returncode != 0
    assert (
        f"REPORT_VERIFY_BASE_URL must be an http:// or https:// address such as "
        f"https://clinic.example.org, not {value!r}"
    ) in result.stderr


def test_make_run_says_how_to_set_the_report_verification_address():
    script = (REPO_ROOT / "scripts" / "run.sh").read_text(encoding="utf-8")
    assert "REPORT_VERIFY_BASE_URL" in script
    hint = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "run.sh"), "--verify-hint"],
        env={k: v for k, v in os.environ.items() if k != "REPORT_VERIFY_BASE_URL"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert hint.returncode == 0, hint.stderr
    assert hint.stdout.splitlines() == [
        "Report QR codes point at http://localhost:8000, which only this computer can open.",
        "  Set the address patients' phones can reach before printing reports, e.g.",
        "  REPORT_VERIFY_BASE_URL=https://clinic.example.org make run",
    ]


def test_a_secret_can_come_from_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("file-secret-" + "k3y-Z9q" * 8 + "\n")
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"} | {
        "SECRET_KEY_FILE": str(secret)
    }
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stderr


def test_bootstrap_users_creates_the_first_accounts_once(db, settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("bootstrap_users")
    first = capsys.readouterr().out
    users = get_user_model().objects.order_by("username")
    assert [u.username for u in users] == ["admin", "doctor", "tech"]
    admin = users.get(username="admin")
    assert (admin.is_superuser, admin.is_staff, admin.groups.get().name) == (
        False,
        True,
        "administrator",
    )
    assert "python manage.py createsuperuser" in first
    assert users.get(username="doctor").groups.get().name == "doctor"
    credentials = (tmp_path / "first-run-credentials.txt").read_text()
    assert oct((tmp_path / "first-run-credentials.txt").stat().st_mode & 0o777) == "0o600"
    password_line = next(line for line in credentials.splitlines() if " doctor " in line)
    assert users.get(username="doctor").check_password(password_line.split()[-1])
    assert password_line.split()[-1] in first

    call_command("bootstrap_users")
    second = capsys.readouterr().out
    assert "already exist" in second and password_line.split()[-1] not in second
    assert get_user_model().objects.count() == 3


def test_bootstrap_users_refuses_a_production_configuration(db, settings):
    settings.IS_PRODUCTION = True
    with pytest.raises(CommandError, match="development set-ups only"):
        call_command("bootstrap_users")
    assert get_user_model().objects.count() == 0


def test_seed_demo_without_photos_and_idempotent(db, settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("bootstrap_users")
    call_command("seed_demo", images=tmp_path)  # an empty folder: no photos
    call_command("seed_demo", images=tmp_path)
    assert Patient.objects.count() == 3
    assert ScreeningRecord.objects.count() == 3
    assert FundusImage.objects.count() == 0


def test_seed_demo_attaches_photos_by_eye(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    photos = tmp_path / "photos"
    photos.mkdir()
    for index, name in enumerate(["p1_left.jpg", "p1_right.jpg", "p2_right.jpg"]):
        (photos / name).write_bytes(fundus_like_jpeg(seed=index))
    call_command("bootstrap_users")
    call_command("seed_demo", images=photos)
    first = ScreeningRecord.objects.order_by("id").first()
    assert sorted(first.images.values_list("eye", "original_name")) == [
        ("OD", "p1_right.jpg"),
        ("OS", "p1_left.jpg"),
    ]
    assert FundusImage.objects.count() == 3


@pytest.mark.parametrize(
    ("name", "eye"),
    [
        ("odir_11_left.jpg", "OS"),  # "od" begins "odir": not a right eye
        ("odir_11_right.jpg", "OD"),
        ("23_OS.png", "OS"),
        ("OD-7.tif", "OD"),
        ("osaka_1.jpg", "OD"),  # no eye named: the fallback
        ("retina_cc0.jpg", "OD"),
    ],
)
def test_seed_demo_reads_the_eye_from_words_of_the_name(name, eye):
    from screening.management.commands.seed_demo import eye_from_name

    assert eye_from_name(name, "OD") == eye


def test_seed_demo_explains_a_missing_folder(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("bootstrap_users")
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("seed_demo", images=Path(tmp_path / "nope"))


def test_the_api_docs_are_closed_to_the_public_in_production():
    show = "from django.conf import settings; print(settings.API_DOCS_PUBLIC)"
    production = manage("shell", "-c", show, env=PRODUCTION_ENV)
    development = manage("shell", "-c", show, env={"DJANGO_ENV": "development"})
    assert (production.stdout.split()[-1:], development.stdout.split()[-1:]) == (
        ["False"],
        ["True"],
    ), production.stderr + development.stderr
