"""Photos are served as a sanitised copy (pixels re-encoded, no metadata, nothing appended);
the original stays as uploaded for the record and only administrators may open it, audited."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from PIL import Image, ImageChops, ImageStat

from core.models import AuditEvent
from screening import services
from screening.models import FundusImage
from screening.services import image_upload
from tests.api.conftest import bearer
from tests.screening import hostile_files as hf
from tests.screening.test_images import stored_files


def upload(record, technician, case) -> FundusImage:
    name, data = case()
    return image_upload(
        actor=technician, record=record, eye="OD", uploaded_file=SimpleUploadedFile(name, data)
    )


def served(client, image: FundusImage, query: str = "") -> bytes:
    response = client.get(reverse("screening:fundus-image-file", args=[image.pk]) + query)
    assert response.status_code == 200, response
    return b"".join(response.streaming_content)


def payloads_in(data: bytes) -> list[bytes]:
    return [payload for payload in hf.METADATA_PAYLOADS if payload in data]


def test_exif_comments_xmp_and_an_appended_zip_are_not_served_back(
    client, doctor, record, technician
):
    image = upload(record, technician, hf.jpeg_metadata_payloads)
    _, original = hf.jpeg_metadata_payloads()
    client.force_login(doctor)

    photo = served(client, image)
    preview = served(client, image, "?size=thumb")
    api_photo = b"".join(
        bearer(doctor).get(reverse("api-v1:image-file", args=[image.pk])).streaming_content
    )

    assert (payloads_in(photo), payloads_in(preview), payloads_in(api_photo)) == ([], [], [])
    assert photo == api_photo
    with Image.open(io.BytesIO(photo)) as copy:
        assert (copy.format, copy.size, copy.mode) == ("JPEG", (512, 512), "RGB")
        assert dict(copy.getexif()) == {}
        assert "comment" not in copy.info and "xmp" not in copy.info
        assert photo.endswith(b"\xff\xd9")  # nothing after the end of the picture
        with Image.open(io.BytesIO(original)) as source:
            difference = ImageStat.Stat(ImageChops.difference(copy, source.convert("RGB")))
        assert max(difference.mean) < 2  # the same picture, re-encoded at quality 95
    # the original is kept byte for byte for the record
    assert image.file.open("rb").read() == original


def test_the_copy_is_stored_upright_with_no_orientation_left_to_apply(
    client, doctor, record, technician
):
    image = upload(record, technician, hf.exif_rotated_jpeg)  # stored 600×400, orientation 6
    client.force_login(doctor)
    with Image.open(io.BytesIO(served(client, image))) as copy:
        assert copy.size == (image.width, image.height) == (400, 600)
        assert copy.getexif().get(0x0112) is None


@pytest.mark.parametrize(
    ("case", "mode"),
    [(hf.valid_png, "RGB"), (hf.valid_tiff, "RGB"), (hf.gray16_png, "RGB"), (hf.rgba_png, "RGB")],
)
def test_lossless_sources_become_png_with_the_same_pixels(
    client, doctor, record, technician, case, mode
):
    image = upload(record, technician, case)
    client.force_login(doctor)
    response = client.get(reverse("screening:fundus-image-file", args=[image.pk]))
    assert response["Content-Type"] == "image/png"
    assert image.sanitized_file.name.endswith(".png")
    with Image.open(io.BytesIO(b"".join(response.streaming_content))) as copy:
        assert (copy.format, copy.mode, copy.size) == ("PNG", mode, (512, 512))
        if case is hf.valid_png:
            _, data = case()
            with Image.open(io.BytesIO(data)) as source:
                assert ImageChops.difference(copy, source).getbbox() is None


def test_only_administrators_open_the_original_and_it_is_audited_as_such(
    client, doctor, technician, admin_user, record
):
    image = upload(record, technician, hf.jpeg_metadata_payloads)
    _, original = hf.jpeg_metadata_payloads()
    url = reverse("screening:fundus-image-file", args=[image.pk]) + "?original=1"
    for user in (doctor, technician):
        client.force_login(user)
        assert client.get(url).status_code == 403
    api = bearer(doctor).get(reverse("api-v1:image-file", args=[image.pk]), {"original": "true"})
    assert api.status_code == 403
    assert api.json()["error"]["message"] == (
        "Only administrators may open the original photo file."
    )
    assert (
        not AuditEvent.objects.filter(object_type="screening.fundusimage")
        .exclude(action="create")
        .exists()
    )

    client.force_login(admin_user)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="fundus-{image.pk}-original.jpg"'
    )
    assert b"".join(response.streaming_content) == original
    api = bearer(admin_user).get(reverse("api-v1:image-file", args=[image.pk]), {"original": "1"})
    assert b"".join(api.streaming_content) == original
    events = AuditEvent.objects.filter(object_type="screening.fundusimage").exclude(action="create")
    assert list(events.values_list("action", "actor")) == [
        ("view_original", admin_user.pk),
        ("view_original", admin_user.pk),
    ]


def break_the_encoder(monkeypatch) -> None:
    def broken(fp):
        raise OSError("disk full while encoding")

    monkeypatch.setattr(services, "sanitized_copy", broken)


def break_the_copys_write(monkeypatch) -> None:
    save = default_storage.save

    def failing_save(name, content, *args, **kwargs):
        if name.startswith("fundus-sanitized/"):
            raise OSError("bucket refused the write")
        return save(name, content, *args, **kwargs)

    monkeypatch.setattr(default_storage, "save", failing_save)


@pytest.mark.parametrize("break_it", [break_the_encoder, break_the_copys_write])
def test_if_the_copy_cannot_be_made_or_written_nothing_is_stored(
    record, technician, settings, monkeypatch, break_it
):
    break_it(monkeypatch)
    before = stored_files(settings)
    with pytest.raises(OSError):
        upload(record, technician, hf.valid_jpeg)
    assert stored_files(settings) == before  # the original written first is removed again
    assert not FundusImage.objects.exists()


def test_removing_a_photo_removes_its_copy(
    record, technician, settings, django_capture_on_commit_callbacks
):
    image = upload(record, technician, hf.valid_jpeg)
    with django_capture_on_commit_callbacks(execute=True):
        services.image_delete(actor=technician, image=image)
    assert not default_storage.exists(image.file.name)
    assert not default_storage.exists(image.sanitized_file.name)


def test_the_backfill_makes_copies_for_older_photos_and_reports_missing_originals(
    record, technician, client, doctor, capsys
):
    older = upload(record, technician, hf.jpeg_metadata_payloads)
    lost = upload(record, technician, hf.valid_png)
    for image in (older, lost):
        default_storage.delete(image.sanitized_file.name)
    FundusImage.objects.update(sanitized_file="")
    default_storage.delete(lost.file.name)
    # a preview made from the original before copies existed keeps its JPEG comment
    preview_name = f"thumbnails/{older.sha256}.jpg"
    default_storage.save(preview_name, io.BytesIO(hf.jpeg_metadata_payloads()[1]))

    with pytest.raises(CommandError, match=f"photo {lost.pk}: the original .* is missing"):
        call_command("sanitize_photos")

    assert "Sanitised copies made: 1; skipped: 1" in capsys.readouterr().out
    older.refresh_from_db()
    assert older.sanitized_file.name.startswith("fundus-sanitized/")
    client.force_login(doctor)
    assert payloads_in(served(client, older)) == []
    assert payloads_in(served(client, older, "?size=thumb")) == []
    assert FundusImage.objects.get(pk=lost.pk).sanitized_file == ""


def test_a_photo_without_a_copy_gets_one_when_first_served(client, doctor, record, technician):
    image = upload(record, technician, hf.jpeg_metadata_payloads)
    FundusImage.objects.filter(pk=image.pk).update(sanitized_file="")
    client.force_login(doctor)
    assert payloads_in(served(client, image)) == []
    assert FundusImage.objects.get(pk=image.pk).sanitized_file.name.startswith("fundus-sanitized/")


def test_the_admin_offers_the_original_to_administrators_only(
    client, admin_user, technician, record
):
    image = upload(record, technician, hf.valid_jpeg)
    page = reverse("admin:screening_screeningrecord_change", args=[record.pk])
    link = reverse("screening:fundus-image-file", args=[image.pk]) + "?original=1"
    client.force_login(technician)
    assert link not in client.get(page).content.decode()
    client.force_login(admin_user)
    assert f'<a href="{link}">download (audited)</a>' in client.get(page).content.decode()
