"""Photos are private: served only to staff who may see them, and every full view is logged."""

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from core.models import AuditEvent
from screening.services import image_upload
from tests.factories import UserFactory


@pytest.fixture
def image(record, technician, photo_file):
    return image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file(seed=5))


def test_staff_who_may_see_photos_get_the_sanitised_copy(client, doctor, image):
    client.force_login(doctor)
    response = client.get(reverse("screening:fundus-image-file", args=[image.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "private, no-store"
    served = b"".join(response.streaming_content)
    assert served == image.sanitized_file.open("rb").read()
    assert served != image.file.open("rb").read()
    event = AuditEvent.objects.get(action="view", object_type="screening.fundusimage")
    assert (event.actor, event.patient_ref) == (doctor, image.record.patient.patient_id)


def test_a_thumbnail_is_a_small_jpeg(client, doctor, image):
    client.force_login(doctor)
    response = client.get(reverse("screening:fundus-image-file", args=[image.pk]) + "?size=thumb")
    assert response.status_code == 200
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(b"".join(response.streaming_content))) as thumb:
        assert thumb.format == "JPEG"
        assert max(thumb.size) <= 480


def test_anonymous_users_are_sent_to_log_in(client, image):
    response = client.get(reverse("screening:fundus-image-file", args=[image.pk]))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_a_patient_account_cannot_fetch_photos(client, db, image):
    client.force_login(UserFactory(role="patient"))
    assert client.get(reverse("screening:fundus-image-file", args=[image.pk])).status_code == 403
    assert not AuditEvent.objects.filter(action="view").exists()


def test_there_is_no_public_url_for_media(client, doctor, image):
    client.force_login(doctor)
    assert client.get(f"/private-media/{image.file.name}").status_code == 404
    assert client.get(f"/media/{image.file.name}").status_code == 404


def test_behind_nginx_the_transfer_is_handed_over_with_x_accel_redirect(
    client, doctor, image, settings
):
    settings.MEDIA_X_ACCEL_PREFIX = "/protected-media/"
    client.force_login(doctor)
    response = client.get(reverse("screening:fundus-image-file", args=[image.pk]))
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/protected-media/{image.sanitized_file.name}"
    assert response.content == b""


@pytest.mark.parametrize("query", ["", "?size=thumb"])
def test_a_photo_whose_file_is_gone_is_not_found_and_not_logged(client, doctor, image, query):
    default_storage.delete(image.file.name)
    default_storage.delete(image.sanitized_file.name)
    client.force_login(doctor)
    response = client.get(reverse("screening:fundus-image-file", args=[image.pk]) + query)
    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action="view").exists()
