"""Small things staff see on every page: names, the tab icon, photo previews, the API docs."""

from __future__ import annotations

import io

import pytest
from django.contrib.staticfiles import finders
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageDraw

from screening.models import FundusImage
from screening.services import review_save_draft
from screening.thumbnails import fundus_box, thumbnail_for
from tests.factories import UserFactory


# --- display names --------------------------------------------------------------------------
def test_staff_are_shown_by_their_display_names(client, record, analysed_record):
    technician = record.operator
    technician.first_name = "王技师"
    technician.save(update_fields=["first_name"])
    doctor = UserFactory(username="doctor-li", role="doctor", first_name="李医生")
    review_save_draft(
        doctor=doctor,
        record=record,
        conclusion_codes=["normal"],
        recommendation="routine",
        follow_up_months=12,
    )
    client.force_login(doctor)

    worklist = client.get("/").content.decode()
    detail = client.get(f"/screening/{record.pk}/").content.decode()

    assert '<td data-label="Operator">王技师</td>' in worklist
    assert "<dd>王技师</dd>" in detail
    assert "draft by 李医生" in detail
    for page in (worklist, detail):
        assert ">tech1<" not in page and "doctor-li" not in page


# --- favicon --------------------------------------------------------------------------------
def test_every_page_names_its_icon_and_favicon_ico_is_not_a_404(client, doctor):
    client.force_login(doctor)
    page = client.get("/").content.decode()
    assert '<link rel="icon" href="/static/clinic/favicon.svg" type="image/svg+xml">' in page
    assert finders.find("clinic/favicon.svg") is not None

    response = client.get("/favicon.ico")

    assert response.status_code == 301
    assert response["Location"] == "/static/clinic/favicon.svg"


def test_favicon_ico_needs_no_sign_in(client):
    response = client.get("/favicon.ico")
    assert (response.status_code, response["Location"]) == (301, "/static/clinic/favicon.svg")


# --- thumbnails crop to the fundus ----------------------------------------------------------
def camera_photo(width: int = 1200, height: int = 800, radius: int = 360) -> bytes:
    """A camera frame: a round fundus in the middle of a wide black frame, with a dim label."""
    image = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    cx, cy = width // 2, height // 2
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=(180, 80, 35))
    draw.text((10, 10), "OD 2026-12-04", fill=(40, 40, 40))  # camera text, below threshold
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def test_the_fundus_box_is_the_bright_disc_with_a_small_margin():
    with Image.open(io.BytesIO(camera_photo())) as photo:
        box = fundus_box(photo.convert("RGB"))
    left, top, right, bottom = box
    # The disc spans 240..960 × 40..760; the box holds it, plus at most a 3 % margin.
    assert 215 <= left <= 240 and 935 <= right + 0 <= 985
    assert 15 <= top <= 40 and 760 <= bottom <= 785


def test_a_photo_without_a_fundus_keeps_its_whole_frame():
    assert fundus_box(Image.new("RGB", (640, 480), (0, 0, 0))) == (0, 0, 640, 480)


def test_thumbnails_of_camera_photos_are_cropped_to_the_fundus(record, technician):
    name = default_storage.save("fundus/test/camera.jpg", ContentFile(camera_photo()))
    image = FundusImage.objects.create(
        record=record,
        eye="OD",
        file=name,
        sha256="cd" * 32,
        width=1200,
        height=800,
        format="JPEG",
        mode="RGB",
        size_bytes=1,
        original_name="camera.jpg",
        uploaded_by=technician,
    )

    with default_storage.open(thumbnail_for(image), "rb") as stored, Image.open(stored) as thumb:
        assert thumb.size[0] == thumb.size[1]  # square: the disc, not the letterbox
        assert 470 <= thumb.size[0] <= 480
        # The fundus fills the tile: its centre row is fundus-coloured from ~3 % to ~97 %.
        row = [thumb.getpixel((x, thumb.size[1] // 2))[0] for x in range(thumb.size[0])]
        lit = [x for x, red in enumerate(row) if red > 100]
        assert lit[0] <= thumb.size[0] * 0.04 and lit[-1] >= thumb.size[0] * 0.96


# --- API docs -------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/docs/", "/api/schema/"])
def test_the_api_docs_are_for_signed_in_staff_in_production(client, settings, path, patient_user):
    settings.API_DOCS_PUBLIC = False
    assert client.get(path).status_code in (401, 403)
    client.force_login(patient_user)
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", ["/api/docs/", "/api/schema/"])
def test_staff_read_the_api_docs(client, settings, path, technician):
    settings.API_DOCS_PUBLIC = False
    client.force_login(technician)
    assert client.get(path).status_code == 200


def test_the_api_docs_are_public_only_where_configured(client, settings):
    settings.API_DOCS_PUBLIC = True
    assert client.get("/api/docs/").status_code == 200
