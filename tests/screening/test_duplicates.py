"""A photo already stored for another screening of the same patient (last visit's photo, or
the other eye's) is held until the technician confirms it: service, web upload, API, admin."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.urls import reverse

from core.models import AuditEvent
from screening.models import FundusImage
from screening.services import DuplicatePhotoHeld, image_upload
from tests.api.conftest import bearer
from tests.conftest import REQUIRE_SERVICES
from tests.factories import PatientFactory, ScreeningRecordFactory, UserFactory
from tests.screening.test_images import stored_files


@pytest.fixture
def last_visit(patient, technician, photo_file):
    """Last month's screening of the patient, with a photo of the right eye."""
    record = ScreeningRecordFactory(
        patient=patient,
        operator=technician,
        screened_at=dt.datetime(2026, 11, 3, 1, 30, tzinfo=dt.UTC),
    )
    image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file(seed=11))
    return record


@pytest.fixture
def today(patient, technician):
    return ScreeningRecordFactory(patient=patient, operator=technician)


def earlier_photo(last_visit) -> FundusImage:
    return last_visit.images.get()


def held_message(last_visit) -> str:
    return (
        "This photo is already stored for this patient's screening of 2026-11-03 "
        f"(Right eye (OD), photo ID {earlier_photo(last_visit).pk}). Check that it is the right "
        "photo of the right eye; if it is, confirm to upload it again."
    )


def test_last_visits_photo_for_the_other_eye_is_held_and_nothing_is_stored(
    last_visit, today, technician, photo_file, settings
):
    before = stored_files(settings)
    with pytest.raises(DuplicatePhotoHeld) as excinfo:
        image_upload(actor=technician, record=today, eye="OS", uploaded_file=photo_file(seed=11))
    assert excinfo.value.code == "duplicate"
    assert excinfo.value.messages == [held_message(last_visit)]
    assert excinfo.value.duplicates == [earlier_photo(last_visit)]
    assert stored_files(settings) == before
    assert not today.images.exists()


def test_confirmed_it_is_stored_and_the_confirmation_is_audited(
    last_visit, today, technician, photo_file
):
    image = image_upload(
        actor=technician,
        record=today,
        eye="OS",
        uploaded_file=photo_file(seed=11),
        confirm_duplicate=True,
    )
    event = AuditEvent.objects.get(action="create", object_id=str(image.pk))
    assert event.changes["confirmed_duplicate_of"] == [None, [earlier_photo(last_visit).pk]]


def test_another_patients_photo_and_a_new_photo_are_not_held(
    last_visit, today, technician, photo_file
):
    other = ScreeningRecordFactory(patient=PatientFactory(), operator=technician)
    image_upload(actor=technician, record=other, eye="OD", uploaded_file=photo_file(seed=11))
    image = image_upload(
        actor=technician, record=today, eye="OD", uploaded_file=photo_file(seed=12)
    )
    event = AuditEvent.objects.get(action="create", object_id=str(image.pk))
    assert "confirmed_duplicate_of" not in event.changes


def test_the_web_upload_answers_409_and_stores_it_when_confirmed(
    client, last_visit, today, technician, photo_file
):
    client.force_login(technician)
    url = reverse("screening:image-upload", args=[today.pk])

    held = client.post(url, {"eye": "OS", "file": photo_file(seed=11)})
    assert held.status_code == 409
    assert held.json() == {"error": held_message(last_visit), "code": "duplicate", "confirm": True}
    assert not today.images.exists()

    confirmed = client.post(
        url, {"eye": "OS", "file": photo_file(seed=11), "confirm_duplicate": "1"}
    )
    assert confirmed.status_code == 201
    assert list(today.images.values_list("eye", flat=True)) == ["OS"]


def test_the_upload_page_offers_the_confirmation_from_its_script(client, today, technician):
    client.force_login(technician)
    html = client.get(reverse("pages:screening-photos", args=[today.pk])).content.decode()
    assert 'data-msg-confirm="It is the right photo: upload it anyway"' in html


def test_the_api_answers_409_duplicate_and_stores_it_with_confirm_duplicate(
    last_visit, today, technician, photo_file, settings
):
    settings.FUNDUS_ANALYSIS_TASK = ""
    api = bearer(technician)
    url = f"/api/v1/records/{today.pk}/images/"

    held = api.post(url, {"eye": "OS", "file": photo_file(seed=11)}, format="multipart")
    assert held.status_code == 409
    assert held.json() == {
        "error": {"code": "duplicate", "message": held_message(last_visit), "fields": {}}
    }
    assert not today.images.exists()

    confirmed = api.post(
        url,
        {"eye": "OS", "file": photo_file(seed=11), "confirm_duplicate": "true"},
        format="multipart",
    )
    assert confirmed.status_code == 201
    assert confirmed.json()["image"]["eye"] == "OS"


def test_the_message_is_in_chinese_for_chinese_users(
    last_visit, today, technician, photo_file, settings
):
    settings.FUNDUS_ANALYSIS_TASK = ""
    held = bearer(technician).post(
        f"/api/v1/records/{today.pk}/images/",
        {"eye": "OS", "file": photo_file(seed=11)},
        format="multipart",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert held.status_code == 409
    assert held.json()["error"]["message"].startswith("该患者 2026-11-03 的筛查中已存有这张照片")


@pytest.mark.django_db(transaction=True)
def test_the_same_photo_for_two_visits_at_once_is_stored_once_and_held_once(
    transactional_roles, photo_file
):
    if connection.vendor != "postgresql":
        if REQUIRE_SERVICES:
            pytest.fail("this test must run on PostgreSQL in CI")
        pytest.skip("row locking is only meaningful on PostgreSQL")
    technician = UserFactory(role="technician", username="tech-race")
    patient = PatientFactory()
    visits = [ScreeningRecordFactory(patient=patient, operator=technician) for _ in range(2)]
    start = threading.Barrier(len(visits))
    outcomes: list[str] = []

    def send(record) -> None:
        try:
            start.wait()
            image_upload(
                actor=technician, record=record, eye="OD", uploaded_file=photo_file(seed=31)
            )
            outcomes.append("stored")
        except DuplicatePhotoHeld:
            outcomes.append("held")
        except BaseException as exc:  # collected and asserted below
            outcomes.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(visit,)) for visit in visits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["held", "stored"]
    assert FundusImage.objects.count() == 1
