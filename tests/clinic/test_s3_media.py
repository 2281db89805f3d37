"""Media on an S3-compatible bucket: a real S3 server (moto) on loopback, selected from the env.

Every test gets its own bucket and the storage that `MEDIA_S3_*` variables configure, so the
same code runs as on MinIO, Ceph or AWS: uploads, the AI worker, report PDFs, permission-checked
downloads, deletes, backups, and a clear answer when the bucket cannot be reached. The server
and the bucket fixtures are in tests/clinic/conftest.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import runpy
import subprocess
import sys
import tarfile

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import default_storage
from django.urls import reverse

from core.env import env_s3_media_storage
from core.media import MediaStorageUnavailable
from core.models import AuditEvent
from screening.models import FundusImage, RecordStatus, ScreeningRecord
from screening.services import image_delete, image_upload
from tests.clinic.conftest import free_port, use_bucket
from tests.conftest import REPO_ROOT
from tests.factories import UserFactory


@pytest.fixture
def uploaded(bucket, record, technician, photo_file) -> FundusImage:
    return image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file(seed=3))


# --- configuration from the environment ------------------------------------------------------
def test_without_a_bucket_media_stay_in_the_local_folder(monkeypatch):
    monkeypatch.delenv("MEDIA_S3_BUCKET", raising=False)
    assert env_s3_media_storage() is None


def test_the_bucket_and_its_keys_come_from_the_environment_or_secret_files(monkeypatch, tmp_path):
    (tmp_path / "key-id").write_text("AKIDEXAMPLE\n")
    (tmp_path / "secret").write_text("s3cr3t-from-a-file\n")
    for name, value in {
        "MEDIA_S3_BUCKET": "clinic-media",
        "MEDIA_S3_ENDPOINT_URL": "https://minio.clinic.lan:9000",
        "MEDIA_S3_REGION": "cn-north-1",
        "MEDIA_S3_ACCESS_KEY_ID_FILE": str(tmp_path / "key-id"),
        "MEDIA_S3_SECRET_ACCESS_KEY_FILE": str(tmp_path / "secret"),
        "MEDIA_S3_ADDRESSING_STYLE": "Path",
        "MEDIA_S3_PREFIX": "/ophai/",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MEDIA_S3_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("MEDIA_S3_SECRET_ACCESS_KEY", raising=False)
    assert env_s3_media_storage() == {
        "BACKEND": "core.storage.PrivateMediaStorage",
        "OPTIONS": {
            "bucket_name": "clinic-media",
            "endpoint_url": "https://minio.clinic.lan:9000",
            "region_name": "cn-north-1",
            "access_key": "AKIDEXAMPLE",
            "secret_key": "s3cr3t-from-a-file",
            "addressing_style": "path",
            "location": "ophai",
        },
    }


def test_without_keys_boto3_finds_credentials_itself(monkeypatch):
    monkeypatch.setenv("MEDIA_S3_BUCKET", "clinic-media")
    for name in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "ENDPOINT_URL", "REGION", "PREFIX"):
        monkeypatch.delenv(f"MEDIA_S3_{name}", raising=False)
        monkeypatch.delenv(f"MEDIA_S3_{name}_FILE", raising=False)
    options = env_s3_media_storage()["OPTIONS"]
    assert (options["access_key"], options["secret_key"], options["endpoint_url"]) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"MEDIA_S3_ACCESS_KEY_ID": "AKIDEXAMPLE"},
            "MEDIA_S3_ACCESS_KEY_ID and MEDIA_S3_SECRET_ACCESS_KEY (or their *_FILE) go together",
        ),
        (
            {"MEDIA_S3_ADDRESSING_STYLE": "dns"},
            "MEDIA_S3_ADDRESSING_STYLE must be one of ['auto', 'path', 'virtual'], not 'dns'",
        ),
        (
            {"MEDIA_S3_SECRET_ACCESS_KEY_FILE": "/nonexistent/secret"},
            "MEDIA_S3_SECRET_ACCESS_KEY_FILE points at '/nonexistent/secret', which cannot be read",
        ),
    ],
)
def test_a_half_or_wrong_configuration_fails_at_start_up(monkeypatch, variables, message):
    monkeypatch.setenv("MEDIA_S3_BUCKET", "clinic-media")
    for name in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY"):
        monkeypatch.delenv(f"MEDIA_S3_{name}", raising=False)
        monkeypatch.delenv(f"MEDIA_S3_{name}_FILE", raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured) as refused:
        env_s3_media_storage()
    assert str(refused.value).startswith(message)


def test_settings_make_the_bucket_the_default_storage(monkeypatch, tmp_path):
    monkeypatch.setenv("OPHAI_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("MEDIA_S3_BUCKET", "clinic-media")
    monkeypatch.delenv("MEDIA_X_ACCEL_PREFIX", raising=False)
    loaded = runpy.run_path(str(REPO_ROOT / "clinic" / "settings.py"))
    assert loaded["STORAGES"]["default"]["BACKEND"] == "core.storage.PrivateMediaStorage"
    assert loaded["STORAGES"]["default"]["OPTIONS"]["bucket_name"] == "clinic-media"

    monkeypatch.delenv("MEDIA_S3_BUCKET")
    loaded = runpy.run_path(str(REPO_ROOT / "clinic" / "settings.py"))
    assert loaded["STORAGES"]["default"] == {
        "BACKEND": "django.core.files.storage.FileSystemStorage"
    }


def test_x_accel_redirect_cannot_serve_a_bucket(monkeypatch, tmp_path):
    monkeypatch.setenv("OPHAI_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("MEDIA_S3_BUCKET", "clinic-media")
    monkeypatch.setenv("MEDIA_X_ACCEL_PREFIX", "/protected-media/")
    with pytest.raises(ImproperlyConfigured, match="cannot serve media stored in MEDIA_S3_BUCKET"):
        runpy.run_path(str(REPO_ROOT / "clinic" / "settings.py"))


def test_check_deploy_is_clean_with_s3_media(tmp_path):
    secret = tmp_path / "s3-secret"
    secret.write_text("s3cr3t-from-a-file\n")
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL"}
        and not k.startswith("MEDIA_")
    }
    env = base | {
        "DJANGO_SETTINGS_MODULE": "clinic.settings",
        "DJANGO_ENV": "production",
        "SECRET_KEY": "x" * 20 + "production-secret-key-for-the-check-0123456789abcdef",
        "ALLOWED_HOSTS": "clinic.example.org",
        "REPORT_VERIFY_BASE_URL": "https://clinic.example.org",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/ophai",
        "MEDIA_S3_BUCKET": "clinic-media",
        "MEDIA_S3_ENDPOINT_URL": "https://minio.clinic.lan:9000",
        "MEDIA_S3_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "MEDIA_S3_SECRET_ACCESS_KEY_FILE": str(secret),
        "MEDIA_S3_ADDRESSING_STYLE": "path",
    }
    script = (
        "import django; django.setup();"
        "from django.core.management import call_command;"
        "call_command('check', '--deploy', '--fail-level', 'WARNING');"
        "from django.core.files.storage import storages;"
        "s = storages['default'];"
        "print(type(s).__name__, s.bucket_name, s.endpoint_url, s.secret_key == 's3cr3t-from-a-file')"
    )
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert (
        "PrivateMediaStorage clinic-media https://minio.clinic.lan:9000 True"
        in result.stdout.splitlines()
    )


# --- the clinic's files in the bucket --------------------------------------------------------
def test_an_uploaded_photo_is_an_object_in_the_bucket(uploaded, bucket, settings):
    key = uploaded.file.name
    assert bucket.keys() == {key, uploaded.sanitized_file.name}  # the original and its copy
    stored = bucket.read(key)
    assert hashlib.sha256(stored).hexdigest() == uploaded.sha256
    head = bucket.client.head_object(Bucket=bucket.name, Key=key)
    assert head["ContentType"] == "image/jpeg"
    assert not settings.MEDIA_ROOT.exists()  # nothing went to the local folder


def test_a_name_already_taken_is_never_overwritten(bucket):
    from django.core.files.base import ContentFile

    first = default_storage.save("fundus/same.jpg", ContentFile(b"first"))
    second = default_storage.save("fundus/same.jpg", ContentFile(b"second"))
    assert first == "fundus/same.jpg"
    assert second != first
    assert (bucket.read(first), bucket.read(second)) == (b"first", b"second")


@pytest.fixture
def tiny_package(db, tmp_path):
    """A real (untrained, tiny) model package, as the engine's own tests use."""
    from ai_engine.inference.package import write_package
    from ai_engine.services import package_register
    from tests.ai_engine.inference.conftest import card_dict, tiny_model

    folder = tmp_path / "tiny-odir"
    card = card_dict(name="tiny-odir", version="0.1", evidence="untrained test model")
    write_package(folder, tiny_model(card), card)
    return package_register(path=folder, activate=True)


@pytest.mark.usefixtures("tiny_package")
def test_the_ai_worker_reads_the_photo_and_writes_heatmaps_to_the_bucket(
    bucket, record, technician, photo_file, django_capture_on_commit_callbacks
):
    from ai_engine.models import Analysis, AnalysisStatus

    with django_capture_on_commit_callbacks(execute=True):
        image = image_upload(
            actor=technician, record=record, eye="OD", uploaded_file=photo_file(seed=4, size=512)
        )
    analysis = Analysis.objects.get(image=image)
    assert analysis.status == AnalysisStatus.DONE, analysis.error
    heatmaps = [f.heatmap.name for f in analysis.findings.all() if f.heatmap]
    assert heatmaps
    assert bucket.keys() == {image.file.name, image.sanitized_file.name, *heatmaps}
    for name in heatmaps:
        assert bucket.read(name).startswith(b"\x89PNG\r\n\x1a\n")


def test_a_report_pdf_is_rendered_with_the_bucket_photos_and_stored_there(
    bucket, record, technician, doctor, photo_file, tmp_path
):
    from reports.services import report_generate
    from tests.factories import ModelPackageFactory
    from tests.reports.conftest import add_analysis, pdf_text, sign

    image = image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file())
    add_analysis(
        image,
        ModelPackageFactory(),
        findings=[("D", "糖尿病视网膜病变", "Diabetic retinopathy", 0.83, 0.5, ["黄斑区 macula"])],
    )
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    record.refresh_from_db()
    sign(doctor, record)
    report = report_generate(record=record, actor=doctor, language="en")

    assert report.pdf.name in bucket.keys()
    pdf = bucket.read(report.pdf.name)
    assert hashlib.sha256(pdf).hexdigest() == report.pdf_sha256
    assert "Diabetic retinopathy" in pdf_text(pdf, tmp_path)
    # The photo and its heatmap came out of the bucket into the PDF (downscaled JPEGs).
    listing = subprocess.run(  # noqa: S603 - poppler, a file we wrote
        ["pdfimages", "-list", str(tmp_path / "report.pdf")],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert sum(" jpeg " in line for line in listing.splitlines()) >= 2


def test_staff_download_photos_and_reports_streamed_from_the_bucket(
    client, uploaded, bucket, doctor
):
    client.force_login(doctor)
    response = client.get(reverse("screening:fundus-image-file", args=[uploaded.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "private, no-store"
    assert "Location" not in response  # streamed, no redirect to a presigned URL
    assert b"".join(response.streaming_content) == bucket.read(uploaded.sanitized_file.name)
    assert (
        AuditEvent.objects.filter(action="view", object_type="screening.fundusimage").count() == 1
    )

    thumb = client.get(reverse("screening:fundus-image-file", args=[uploaded.pk]) + "?size=thumb")
    assert thumb.status_code == 200
    assert f"thumbnails/{uploaded.sha256}-fundus.jpg" in bucket.keys()


def test_a_missing_object_is_not_found(client, uploaded, bucket, doctor):
    bucket.client.delete_object(Bucket=bucket.name, Key=uploaded.file.name)
    bucket.client.delete_object(Bucket=bucket.name, Key=uploaded.sanitized_file.name)
    client.force_login(doctor)
    assert client.get(reverse("screening:fundus-image-file", args=[uploaded.pk])).status_code == 404


def test_accounts_without_permission_get_nothing_from_the_bucket(client, uploaded, bucket):
    url = reverse("screening:fundus-image-file", args=[uploaded.pk])
    assert client.get(url).status_code == 302  # anonymous: to the sign-in page
    client.force_login(UserFactory(role="patient"))
    response = client.get(url)
    assert response.status_code == 403
    assert uploaded.sha256.encode() not in response.content
    assert not AuditEvent.objects.filter(action="view").exists()


def test_deleting_a_photo_removes_its_object(
    uploaded, bucket, technician, django_capture_on_commit_callbacks
):
    key = uploaded.file.name
    with django_capture_on_commit_callbacks(execute=True):
        image_delete(actor=technician, image=uploaded)
    assert key not in bucket.keys()
    assert not FundusImage.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("transactional_roles")
def test_a_backup_archives_every_object_with_its_checksum(bucket, tmp_path):
    from django.core.files.base import ContentFile

    from clinic.backups import backup_create, restore_drill

    contents = {"fundus/2026/11/a.jpg": b"photo-a", "reports/2026/11/r.pdf": b"%PDF-1.7 r"}
    for name, data in contents.items():
        default_storage.save(name, ContentFile(data))
    folder = backup_create(destination=tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["media_storage"] == f"s3://{bucket.name}"
    assert manifest["files"] == {
        name: hashlib.sha256(data).hexdigest() for name, data in contents.items()
    }
    with tarfile.open(folder / "media.tar.gz") as archive:
        assert archive.extractfile("reports/2026/11/r.pdf").read() == b"%PDF-1.7 r"
    assert restore_drill(backup=folder).ok


# --- when the bucket cannot be reached -------------------------------------------------------
def test_the_service_says_the_storage_is_unreachable_and_writes_nothing(
    unreachable_bucket, record, technician, photo_file
):
    with pytest.raises(
        MediaStorageUnavailable, match=r"^Media storage: could not [a-z ]+ 'fundus/"
    ):
        image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file())
    assert not FundusImage.objects.exists()
    record.refresh_from_db()
    assert record.status == RecordStatus.DRAFT
    assert not AuditEvent.objects.filter(object_type="screening.fundusimage").exists()


def test_an_api_upload_answers_503_with_a_readable_message(
    client, unreachable_bucket, record, technician, photo_file
):
    client.force_login(technician)
    response = client.post(
        reverse("api-v1:record-images", args=[record.pk]),
        {"eye": "OD", "file": photo_file()},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json() == {
        "error": {
            "code": "media_storage_unavailable",
            "message": "Service temporarily unavailable — the photo and report storage cannot "
            "be reached; nothing was saved, please retry.",
            "fields": {},
        }
    }
    assert not FundusImage.objects.exists()


def test_a_web_upload_answers_503_in_the_upload_pages_json(
    client, unreachable_bucket, record, technician, photo_file
):
    client.force_login(technician)
    response = client.post(
        reverse("screening:image-upload", args=[record.pk]),
        {"eye": "OS", "file": photo_file()},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 503
    assert "storage cannot be reached" in response.json()["error"]
    assert not FundusImage.objects.exists()


def test_a_download_answers_a_503_page_when_the_bucket_is_gone(
    client, uploaded, doctor, monkeypatch, settings
):
    use_bucket(monkeypatch, settings, endpoint=f"http://127.0.0.1:{free_port()}", bucket="gone")
    client.force_login(doctor)
    response = client.get(reverse("screening:fundus-image-file", args=[uploaded.pk]))
    assert response.status_code == 503
    assert "text/html" in response["Content-Type"]
    assert "cannot be reached" in response.content.decode()
