"""Fundus photos and AI heatmaps over the API: staff only, streamed after the permission check,
every download audited, and the record and analysis answers carry URLs a client can follow."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Permission
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from ai_engine.models import Finding
from core.models import AuditEvent
from screening.models import FundusImage
from tests.api.conftest import bearer
from tests.factories import UserFactory
from tests.reports.conftest import overlay_png


@pytest.fixture
def image(analysed_record) -> FundusImage:
    return FundusImage.objects.get(record=analysed_record, eye="OD")


@pytest.fixture
def finding(analysed_record) -> Finding:
    """The right eye's positive DR finding, which has a heatmap."""
    return Finding.objects.get(
        analysis__image__record=analysed_record, label_code="D", positive=True
    )


def image_url(image: FundusImage, query: str = "") -> str:
    return reverse("api-v1:image-file", args=[image.pk]) + query


def heatmap_url(finding: Finding) -> str:
    return reverse("api-v1:finding-heatmap", args=[finding.pk])


def content(response) -> bytes:
    return b"".join(response.streaming_content)


def views_of(object_type: str):
    return AuditEvent.objects.filter(action="view", object_type=object_type)


# --- photos ---------------------------------------------------------------------------------
def test_a_doctor_downloads_the_sanitised_photo_and_it_is_audited(as_doctor, doctor, image):
    response = as_doctor.get(image_url(image))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "private, no-store"
    assert content(response) == image.sanitized_file.open("rb").read()
    event = views_of("screening.fundusimage").get()
    assert (event.actor, event.object_id, event.patient_ref, event.source) == (
        doctor,
        str(image.pk),
        image.record.patient.patient_id,
        "api",
    )


def test_a_technician_gets_the_jpeg_preview_and_it_is_audited_too(as_tech, technician, image):
    response = as_tech.get(image_url(image, "?size=thumb"))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(content(response))) as preview:
        # Cropped to the fundus: the test photo's 280 px disc and a 2 % margin on each side.
        assert (preview.format, preview.size) == ("JPEG", (293, 293))
    assert default_storage.exists(f"thumbnails/{image.sha256}-fundus.jpg")
    event = views_of("screening.fundusimage").get()
    assert (event.actor, event.object_id) == (technician, str(image.pk))


def test_an_unknown_size_is_a_field_error(as_doctor, image):
    response = as_doctor.get(image_url(image, "?size=huge"))

    assert response.status_code == 400
    body = response.json()["error"]
    assert (body["code"], list(body["fields"])) == ("invalid_choice", ["size"])
    assert not views_of("screening.fundusimage").exists()


@pytest.mark.parametrize("query", ["", "?size=thumb"])
def test_a_photo_whose_file_is_gone_is_not_found_and_not_audited(as_doctor, image, query):
    default_storage.delete(image.file.name)
    default_storage.delete(image.sanitized_file.name)

    response = as_doctor.get(image_url(image, query))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not views_of("screening.fundusimage").exists()


def test_an_unknown_photo_is_not_found(as_doctor, db):
    response = as_doctor.get(reverse("api-v1:image-file", args=[999999]))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("client_name", ["as_patient", "as_other_patient"])
@pytest.mark.parametrize("query", ["", "?size=thumb"])
def test_patient_accounts_get_no_photos(request, image, client_name, query):
    client = request.getfixturevalue(client_name)

    response = client.get(image_url(image, query))

    assert response.status_code == 403
    assert set(response.json()) == {"error"}
    assert image.sha256.encode() not in response.content
    assert not views_of("screening.fundusimage").exists()
    assert not default_storage.exists(f"thumbnails/{image.sha256}-fundus.jpg")


def test_staff_without_the_photo_permission_are_refused_like_on_the_web(image):
    """Record and patient reads alone are not enough: the web view's view_fundusimage is."""
    clerk = UserFactory(username="clerk")
    clerk.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label__in=["screening", "patients"],
            codename__in=["view_screeningrecord", "view_patient"],
        )
    )
    client = bearer(clerk)
    assert client.get(reverse("api-v1:record-detail", args=[image.record_id])).status_code == 200
    assert client.get(image_url(image)).status_code == 403
    assert not views_of("screening.fundusimage").exists()


def test_behind_nginx_the_download_is_handed_over_with_x_accel_redirect(as_doctor, image, settings):
    settings.MEDIA_X_ACCEL_PREFIX = "/protected-media/"

    response = as_doctor.get(image_url(image))

    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/protected-media/{image.sanitized_file.name}"
    assert response.content == b""
    assert views_of("screening.fundusimage").count() == 1


def test_the_record_lists_photo_urls_a_client_can_follow(as_doctor, analysed_record):
    body = as_doctor.get(reverse("api-v1:record-detail", args=[analysed_record.pk])).json()

    od = body["images"][0]
    image = FundusImage.objects.get(pk=od["id"])
    assert (od["file_url"], od["thumbnail_url"]) == (
        f"/api/v1/images/{image.pk}/file/",
        f"/api/v1/images/{image.pk}/file/?size=thumb",
    )
    assert content(as_doctor.get(od["file_url"])) == image.sanitized_file.open("rb").read()
    assert as_doctor.get(od["thumbnail_url"])["Content-Type"] == "image/jpeg"


# --- heatmaps -------------------------------------------------------------------------------
def test_a_doctor_downloads_a_heatmap_and_it_is_audited(as_doctor, doctor, finding):
    response = as_doctor.get(heatmap_url(finding))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "private, no-store"
    assert content(response) == overlay_png()
    event = views_of("ai_engine.finding").get()
    assert (event.actor, event.object_id, event.patient_ref) == (
        doctor,
        str(finding.pk),
        finding.analysis.image.record.patient.patient_id,
    )


def test_a_finding_without_a_heatmap_is_not_found(as_doctor, analysed_record):
    negative = Finding.objects.get(
        analysis__image__record=analysed_record, analysis__image__eye="OD", label_code="N"
    )

    response = as_doctor.get(heatmap_url(negative))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not views_of("ai_engine.finding").exists()


def test_a_heatmap_whose_file_is_gone_is_not_found(as_doctor, finding):
    default_storage.delete(finding.heatmap.name)
    assert as_doctor.get(heatmap_url(finding)).status_code == 404
    assert not views_of("ai_engine.finding").exists()


@pytest.mark.parametrize("client_name", ["as_patient", "as_other_patient"])
def test_patient_accounts_get_no_heatmaps(request, finding, client_name):
    response = request.getfixturevalue(client_name).get(heatmap_url(finding))
    assert response.status_code == 403
    assert set(response.json()) == {"error"}
    assert not views_of("ai_engine.finding").exists()


def test_the_analyses_list_heatmap_urls_a_client_can_follow(as_doctor, analysed_record, finding):
    analyses = as_doctor.get(reverse("api-v1:record-analyses", args=[analysed_record.pk])).json()

    od_findings = {f["label_code"]: f for f in analyses[0]["findings"]}
    assert (od_findings["D"]["heatmap_url"], od_findings["N"]["heatmap_url"]) == (
        f"/api/v1/findings/{finding.pk}/heatmap/",
        None,
    )
    followed = as_doctor.get(od_findings["D"]["heatmap_url"])
    assert (followed.status_code, content(followed)) == (200, overlay_png())
