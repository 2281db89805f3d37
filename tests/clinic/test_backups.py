"""Backup and restore drill: what was backed up restores with the same rows and file bytes."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from clinic.backups import backup_create, restore_drill
from tests.conftest import REQUIRE_SERVICES, fundus_like_jpeg

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("transactional_roles"),
]


@pytest.fixture
def clinic_data(settings, tmp_path):
    from tests.factories import PatientFactory, ScreeningRecordFactory

    settings.MEDIA_ROOT = tmp_path / "media"
    (settings.MEDIA_ROOT / "fundus").mkdir(parents=True)
    for seed in range(3):
        (settings.MEDIA_ROOT / "fundus" / f"{seed}.jpg").write_bytes(fundus_like_jpeg(seed=seed))
    for _ in range(2):
        ScreeningRecordFactory(patient=PatientFactory())


def test_a_backup_restores_with_identical_rows_and_files(clinic_data, tmp_path, capsys):
    if connection.vendor == "sqlite" and REQUIRE_SERVICES:
        pytest.fail("CI runs the drill on PostgreSQL")
    call_command("backup", "--to", str(tmp_path / "backups"), "--verify")
    out = capsys.readouterr().out
    assert "Restore drill passed: row counts and file checksums match." in out
    folder = next((tmp_path / "backups").iterdir())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["vendor"] == connection.vendor
    assert manifest["counts"]["patients_patient"] == 2
    assert manifest["counts"]["screening_screeningrecord"] == 2
    assert len(manifest["files"]) == 3
    print(
        f"[backup] {connection.vendor}: {sum(manifest['counts'].values())} rows, {len(manifest['files'])} files restored and verified"
    )


def test_the_drill_catches_a_damaged_backup(clinic_data, tmp_path):
    folder = backup_create(destination=tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["counts"]["patients_patient"] = 5
    manifest["files"]["fundus/0.jpg"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    result = restore_drill(backup=folder)
    assert not result.ok
    assert result.problems == [
        "table patients_patient: 2 rows restored, 5 in the manifest",
        "file fundus/0.jpg: checksum differs",
    ]
    with pytest.raises(CommandError, match="Restore drill FAILED"):
        call_command("restore_drill", str(folder))


def test_the_drill_explains_a_wrong_folder(tmp_path):
    with pytest.raises(CommandError, match="is not a backup folder"):
        call_command("restore_drill", str(tmp_path))


def test_a_backup_holds_each_photo_and_its_sanitised_copy(settings, tmp_path, technician):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from screening.services import image_upload
    from tests.factories import ScreeningRecordFactory

    settings.MEDIA_ROOT = tmp_path / "media"
    record = ScreeningRecordFactory(operator=technician)
    image = image_upload(
        actor=technician,
        record=record,
        eye="OD",
        uploaded_file=SimpleUploadedFile("od.jpg", fundus_like_jpeg(seed=7)),
    )
    folder = backup_create(destination=tmp_path / "backups")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {image.file.name, image.sanitized_file.name} <= set(manifest["files"])
    assert restore_drill(backup=folder).ok
