import hashlib
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from core.models import AuditEvent
from screening.models import FundusImage, RecordStatus, ScreeningRecord
from screening.services import image_delete, image_upload
from tests.conftest import fundus_like_jpeg
from tests.screening import hostile_files, task_probe


def stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_an_upload_stores_the_original_untouched_under_a_server_name(
    record, technician, photo_file, settings
):
    upload = photo_file("../../患者 右眼.jpg", seed=3)
    data = upload.read()
    upload.seek(0)
    before = set(stored_files(settings))
    image = image_upload(actor=technician, record=record, eye="OD", uploaded_file=upload)
    new_files = set(stored_files(settings)) - before
    assert len(new_files) == 2  # the original and its sanitised copy
    stored = Path(settings.MEDIA_ROOT) / image.file.name
    assert stored in new_files
    assert stored.read_bytes() == data
    assert (
        stored.name.endswith(".jpg") and "患者" not in str(stored) and ".." not in image.file.name
    )
    assert (image.sha256, image.width, image.height, image.format) == (
        hashlib.sha256(data).hexdigest(),
        320,
        320,
        "JPEG",
    )
    assert image.original_name == "患者 右眼.jpg"
    assert ScreeningRecord.objects.get(pk=record.pk).status == RecordStatus.IMAGES_UPLOADED
    assert (
        AuditEvent.objects.filter(action="create", object_type="screening.fundusimage").count() == 1
    )


def test_the_same_photo_twice_is_recognised_and_not_stored_again(
    record, technician, photo_file, settings
):
    image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file(seed=1))
    files = stored_files(settings)
    with pytest.raises(ValidationError) as excinfo:
        image_upload(
            actor=technician, record=record, eye="OS", uploaded_file=photo_file("copy.jpg", seed=1)
        )
    assert excinfo.value.code == "duplicate"
    assert "already uploaded to this screening (Right eye (OD)" in excinfo.value.messages[0]
    assert stored_files(settings) == files
    assert FundusImage.objects.count() == 1


@pytest.mark.parametrize(
    ("maker", "code"),
    [
        (hostile_files.truncated_jpeg, "corrupt"),
        (hostile_files.svg_as_jpg, "not_an_image"),
        (hostile_files.animated_gif, "unsupported_format"),
        (hostile_files.tiny_png, "too_small"),
        (hostile_files.bomb_png, "too_many_pixels"),
    ],
)
def test_bad_files_are_refused_and_leave_nothing_behind(record, technician, settings, maker, code):
    name, data = maker()
    with pytest.raises(ValidationError) as excinfo:
        image_upload(
            actor=technician, record=record, eye="OD", uploaded_file=SimpleUploadedFile(name, data)
        )
    assert excinfo.value.code == code
    assert stored_files(settings) == []
    assert FundusImage.objects.count() == 0
    assert ScreeningRecord.objects.get(pk=record.pk).status == RecordStatus.DRAFT


def test_an_unknown_eye_is_refused(record, technician, photo_file):
    with pytest.raises(ValidationError) as excinfo:
        image_upload(actor=technician, record=record, eye="OU", uploaded_file=photo_file())
    assert "right eye (OD) or the left eye (OS)" in excinfo.value.message_dict["eye"][0]


def test_a_doctor_cannot_upload_photos(record, doctor, photo_file, settings):
    with pytest.raises(PermissionDenied):
        image_upload(actor=doctor, record=record, eye="OD", uploaded_file=photo_file())
    assert stored_files(settings) == []


def test_photos_cannot_be_added_after_a_signed_review(record, technician, photo_file, settings):
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.REVIEWED)
    record.refresh_from_db()
    with pytest.raises(ValidationError) as excinfo:
        image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file())
    assert excinfo.value.code == "locked"
    assert stored_files(settings) == []


def test_the_analysis_task_is_queued_after_commit(
    record, technician, photo_file, settings, django_capture_on_commit_callbacks
):
    settings.FUNDUS_ANALYSIS_TASK = "tests.screening.task_probe.record_call"
    task_probe.CALLS.clear()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        image = image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file())
    assert task_probe.CALLS == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert task_probe.CALLS == [("called", (image.pk,))]


def test_no_task_is_queued_when_no_analysis_is_configured(
    record, technician, photo_file, settings, django_capture_on_commit_callbacks
):
    settings.FUNDUS_ANALYSIS_TASK = ""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file())
    assert callbacks == []


def test_a_mistaken_photo_is_deleted_with_its_file(
    record, technician, photo_file, settings, django_capture_on_commit_callbacks
):
    image = image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file())
    with django_capture_on_commit_callbacks(execute=True):
        image_delete(actor=technician, image=image)
    assert FundusImage.objects.count() == 0
    assert stored_files(settings) == []
    assert ScreeningRecord.objects.get(pk=record.pk).status == RecordStatus.DRAFT
    assert (
        AuditEvent.objects.filter(action="delete", object_type="screening.fundusimage").count() == 1
    )


def test_accepted_odd_formats_keep_their_original_mode(record, technician):
    for maker, mode in ((hostile_files.cmyk_jpeg, "CMYK"), (hostile_files.gray16_png, "I;16")):
        name, data = maker()
        image = image_upload(
            actor=technician, record=record, eye="OD", uploaded_file=SimpleUploadedFile(name, data)
        )
        assert image.mode == mode


def test_fundus_like_helper_makes_distinct_photos():
    assert fundus_like_jpeg(seed=1) != fundus_like_jpeg(seed=2)
