"""Doctors' signature images: checked, re-encoded without metadata, stored, audited; the admin."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image, PngImagePlugin

from core.models import AuditEvent, StaffProfile
from core.signatures import (
    SIGNATURE_MAX_BYTES,
    signature_clean,
    staff_signature_clear,
    staff_signature_set,
)


def signature_file(
    fmt: str = "PNG", size: tuple[int, int] = (300, 100), *, name: str = "sig.png", **save
) -> SimpleUploadedFile:
    image = Image.new("RGBA" if fmt == "PNG" else "RGB", size, (255, 255, 255, 0))
    for x in range(20, size[0] - 20):
        image.putpixel((x, size[1] // 2), (10, 10, 60, 255) if fmt == "PNG" else (10, 10, 60))
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return SimpleUploadedFile(name, buffer.getvalue())


def test_a_png_is_re_encoded_without_its_metadata_and_keeps_transparency():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(1)</script> 张三 110101199001011234")
    upload = signature_file(pnginfo=info)

    clean = signature_clean(upload)

    with Image.open(io.BytesIO(clean.content)) as stored:
        assert (stored.format, stored.mode, stored.size) == ("PNG", "RGBA", (300, 100))
        assert "Comment" not in stored.info
    assert b"script" not in clean.content and b"1101011990" not in clean.content
    assert clean.sha256 == hashlib.sha256(clean.content).hexdigest()


def test_a_jpeg_with_exif_becomes_a_png_with_none():
    exif = Image.Exif()
    exif[0x010E] = "scanned at home"  # ImageDescription
    clean = signature_clean(signature_file("JPEG", name="sig.jpg", exif=exif.tobytes()))
    with Image.open(io.BytesIO(clean.content)) as stored:
        assert (stored.format, stored.mode) == ("PNG", "RGB")
        assert dict(stored.getexif()) == {}


def test_a_large_signature_is_scaled_down():
    clean = signature_clean(signature_file(size=(2400, 600)))
    assert (clean.width, clean.height) == (1200, 300)


@pytest.mark.parametrize(
    ("upload", "code"),
    [
        (SimpleUploadedFile("sig.png", b""), "empty"),
        (SimpleUploadedFile("sig.png", b"%PDF-1.7 not an image"), "not_an_image"),
        (SimpleUploadedFile("sig.gif", b"GIF89a" + b"\0" * 40), "not_an_image"),
        (SimpleUploadedFile("sig.png", signature_file().read()[:120]), "corrupt"),
        (signature_file(size=(300, 20)), "too_small"),
        (SimpleUploadedFile("sig.png", b"\x89PNG" + b"0" * SIGNATURE_MAX_BYTES), "too_large"),
    ],
    ids=["empty", "pdf", "gif", "truncated", "tiny", "too_large"],
)
def test_unfit_files_are_refused_with_a_reason(upload, code):
    with pytest.raises(ValidationError) as refused:
        signature_clean(upload)
    assert refused.value.code == code


def test_the_service_stores_a_fresh_file_per_upload_and_keeps_the_old_one(admin_user, doctor):
    first = staff_signature_set(user=doctor, actor=admin_user, upload=signature_file())
    first_name = first.signature.name
    second = staff_signature_set(
        user=doctor, actor=admin_user, upload=signature_file(size=(320, 90))
    )

    assert first_name.startswith("signatures/") and first_name.endswith(".png")
    assert len(first_name) == len("signatures/") + 32 + len(".png")
    assert second.signature.name != first_name
    assert default_storage.exists(first_name)  # reports signed with it still print it
    events = AuditEvent.objects.filter(object_type="core.staffprofile").order_by("id")
    assert [e.actor_username for e in events] == ["admin1", "admin1"]
    old_sha = events[0].changes["signature_sha256"][1]
    assert events[0].changes["signature_sha256"][0] is None
    assert events[1].changes["signature_sha256"][0] == old_sha


def test_clearing_the_signature_is_audited(admin_user, doctor):
    staff_signature_set(user=doctor, actor=admin_user, upload=signature_file())
    profile = staff_signature_clear(user=doctor, actor=admin_user)
    assert profile.signature.name == ""
    last = AuditEvent.objects.filter(object_type="core.staffprofile").order_by("id").last()
    assert last.changes["signature_sha256"][1] is None


def test_a_doctor_cannot_set_a_signature_and_nothing_is_stored(doctor):
    with pytest.raises(PermissionDenied):
        staff_signature_set(user=doctor, actor=doctor, upload=signature_file())
    assert not StaffProfile.objects.exists()
    assert not AuditEvent.objects.filter(object_type="core.staffprofile").exists()


def _user_form(user, **extra) -> dict:
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "is_staff": "on",
        "groups": [group.pk for group in user.groups.all()],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "staff_profile-TOTAL_FORMS": "1",
        "staff_profile-INITIAL_FORMS": "0",
        "staff_profile-MIN_NUM_FORMS": "0",
        "staff_profile-MAX_NUM_FORMS": "1",
        "staff_profile-0-user": str(user.pk),
        "staff_profile-0-id": "",
    }
    data.update(extra)
    return data


def test_an_administrator_uploads_a_signature_in_the_user_admin(client, admin_user, doctor):
    client.force_login(admin_user)
    url = reverse("admin:auth_user_change", args=[doctor.pk])
    page = client.get(url).content.decode()
    assert "New signature image" in page

    response = client.post(url, _user_form(doctor, **{"staff_profile-0-upload": signature_file()}))

    assert response.status_code == 302
    profile = StaffProfile.objects.get(user=doctor)
    assert profile.signature.name.startswith("signatures/")
    assert AuditEvent.objects.filter(object_type="core.staffprofile", action="update").count() == 1
    assert "data:image/png;base64," in client.get(url).content.decode()  # the preview


def test_the_user_admin_refuses_a_file_that_is_not_an_image(client, admin_user, doctor):
    client.force_login(admin_user)
    url = reverse("admin:auth_user_change", args=[doctor.pk])
    bad = SimpleUploadedFile("sig.png", b"MZ\x90\x00 an executable")

    response = client.post(url, _user_form(doctor, **{"staff_profile-0-upload": bad}))

    assert response.status_code == 200
    assert "The signature must be a PNG or JPEG image." in response.content.decode()
    assert not StaffProfile.objects.exists()
    assert not AuditEvent.objects.filter(object_type="core.staffprofile").exists()


def test_an_administrator_removes_a_signature_in_the_user_admin(client, admin_user, doctor):
    profile = staff_signature_set(user=doctor, actor=admin_user, upload=signature_file())
    old_name = profile.signature.name
    client.force_login(admin_user)
    url = reverse("admin:auth_user_change", args=[doctor.pk])
    form = _user_form(
        doctor,
        **{
            "staff_profile-INITIAL_FORMS": "1",
            "staff_profile-0-id": str(profile.pk),
            "staff_profile-0-remove": "on",
        },
    )

    response = client.post(url, form)

    assert response.status_code == 302
    assert StaffProfile.objects.get(user=doctor).signature.name == ""
    assert default_storage.exists(old_name)
    assert AuditEvent.objects.filter(object_type="core.staffprofile").count() == 2


def test_uploading_and_removing_at_once_is_refused(client, admin_user, doctor):
    client.force_login(admin_user)
    url = reverse("admin:auth_user_change", args=[doctor.pk])
    form = _user_form(
        doctor, **{"staff_profile-0-upload": signature_file(), "staff_profile-0-remove": "on"}
    )

    response = client.post(url, form)

    assert response.status_code == 200
    assert "Upload a new image or remove the signature, not both." in response.content.decode()
    assert not StaffProfile.objects.exists()
