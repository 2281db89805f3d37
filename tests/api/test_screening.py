"""Screenings, photo uploads (the one validator, in the request's language) and doctor reviews."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from ai_engine.models import Analysis
from core.models import AuditEvent
from screening.models import DoctorReview, FundusImage, RecordStatus, ScreeningRecord
from screening.services import review_save_draft
from screening.uploads import validate_fundus_upload
from tests.api.conftest import bearer
from tests.factories import ScreeningRecordFactory, UserFactory
from tests.screening import hostile_files as hf
from tests.screening.test_uploads import REJECTED


# --- records --------------------------------------------------------------------------------
def test_technician_starts_a_screening_with_vision_and_iop(as_tech, technician, patient):
    response = as_tech.post(
        reverse("api-v1:records"),
        {
            "patient": patient.patient_id,
            "va_od": "0.8",
            "va_os": "0.05",
            "iop_od": "15",
            "iop_os": "23.5",
            "notes": " 糖尿病 ",
        },
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    record = ScreeningRecord.objects.get(pk=body["id"])
    assert (record.patient, record.operator, record.notes) == (patient, technician, "糖尿病")
    assert (body["va_od"], body["logmar_od"], body["va_os"], body["logmar_os"]) == (
        "0.80",
        "0.100",
        "0.05",
        "1.300",
    )
    assert (body["iop_os"], body["iop_os_flag"], body["iop_od_flag"]) == ("23.5", "high", "")
    assert (body["status"], body["images"], body["reviews"]) == ("draft", [], [])
    assert AuditEvent.objects.filter(action="create", object_type="screening.screeningrecord")


def test_measurement_errors_come_from_the_service(as_tech, patient):
    response = as_tech.post(
        reverse("api-v1:records"),
        {"patient": patient.patient_id, "va_od": "2.5", "iop_od": "0"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "va_od": ["Visual acuity must be 3.0–5.3 in 5-point or 0.01–2.0 in decimal notation."],
        "iop_od": ["Intraocular pressure must be between 1 and 80 mmHg."],
    }
    assert not ScreeningRecord.objects.exists()


def test_an_unknown_patient_id_is_a_field_error(as_tech, db):
    response = as_tech.post(reverse("api-v1:records"), {"patient": "P0"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"patient": ["No patient has this patient ID."]}


def test_a_doctor_cannot_start_a_screening(as_doctor, patient):
    response = as_doctor.post(reverse("api-v1:records"), {"patient": patient.patient_id})
    assert response.status_code == 403
    assert not ScreeningRecord.objects.exists()


def test_records_filter_by_patient_status_and_day(as_doctor, patient, technician):
    now = timezone.now()
    today = ScreeningRecordFactory(patient=patient, operator=technician, screened_at=now)
    ScreeningRecordFactory(
        patient=patient, operator=technician, screened_at=now - dt.timedelta(days=3)
    )
    ScreeningRecordFactory(operator=technician, screened_at=now)  # another patient
    ScreeningRecord.objects.filter(pk=today.pk).update(status=RecordStatus.ANALYSED)
    day = timezone.localdate(now).isoformat()

    response = as_doctor.get(
        reverse("api-v1:records"),
        {
            "patient": patient.patient_id,
            "status": "analysed",
            "screened_from": day,
            "screened_to": day,
        },
    )

    assert [r["id"] for r in response.json()["results"]] == [today.pk]


def test_record_list_queries_are_constant_per_page(as_doctor, technician):
    def count(n_more: int) -> int:
        ScreeningRecordFactory.create_batch(n_more, operator=technician)
        with CaptureQueriesContext(connection) as queries:
            response = as_doctor.get(reverse("api-v1:records"))
        assert response.status_code == 200
        return len(queries)

    # user, 2× permissions, the viewer's acuity notation, page (with patient), audit
    assert count(2) == count(15) == 6


def test_record_detail_has_photos_and_reviews_and_is_audited(as_doctor, doctor, signed_record):
    response = as_doctor.get(reverse("api-v1:record-detail", args=[signed_record.pk]))

    assert response.status_code == 200
    body = response.json()
    assert [(i["eye"], i["width"]) for i in body["images"]] == [("OD", 320), ("OS", 320)]
    assert [(r["version"], r["is_signed"], r["recommendation"]) for r in body["reviews"]] == [
        (1, True, "refer")
    ]
    event = AuditEvent.objects.filter(action="view").get()
    assert (event.actor, event.object_id) == (doctor, str(signed_record.pk))


# --- uploads --------------------------------------------------------------------------------
def upload(client, record, name: str, data: bytes, *, eye: str = "OD", language: str = "en"):
    return client.post(
        reverse("api-v1:record-images", args=[record.pk]),
        {"eye": eye, "file": SimpleUploadedFile(name, data, content_type="image/jpeg")},
        format="multipart",
        HTTP_ACCEPT_LANGUAGE=language,
    )


def test_upload_answers_with_the_photo_and_its_analysis_status(
    as_tech, technician, record, package, settings, django_capture_on_commit_callbacks
):
    settings.FUNDUS_ANALYSIS_TASK = "tests.screening.task_probe.record_call"
    name, data = hf.valid_jpeg()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(as_tech, record, name, data)

    assert response.status_code == 201
    body = response.json()
    image = FundusImage.objects.get()
    assert body["image"]["id"] == image.pk
    assert (body["image"]["eye"], body["image"]["width"], body["image"]["format"]) == (
        "OD",
        512,
        "JPEG",
    )
    assert (body["record_status"], body["analysis_status"], body["analyses"]) == (
        "images_uploaded",
        "queued",
        [],
    )
    assert len(callbacks) == 1  # the analysis task, queued after commit


def test_upload_reports_existing_analyses(as_tech, analysed_record, package):
    analysis = Analysis.objects.filter(image__eye="OD").get()
    Analysis.objects.filter(pk=analysis.pk).update(status="running")
    ScreeningRecord.objects.filter(pk=analysed_record.pk).update(status="analysing")
    # a retake of the right eye: its own (new) photo has no analysis yet
    name, data = hf.valid_png()
    body = upload(as_tech, analysed_record, name, data).json()
    assert (body["analysis_status"], body["analyses"]) == ("queued", [])


@pytest.mark.parametrize(
    ("generator", "code", "message"), REJECTED, ids=[row[0].__name__ for row in REJECTED]
)
def test_every_refused_file_is_a_400_with_the_validators_message(
    as_tech, record, generator, code, message
):
    name, data = generator()

    response = upload(as_tech, record, name, data)
    response_zh = upload(as_tech, record, name, data, language="zh-hans")

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": code,
        "message": message,
        "fields": {"file": [message]},
    }
    with translation.override("zh-hans"), pytest.raises(ValidationError) as caught:
        validate_fundus_upload(SimpleUploadedFile(name, data))
    chinese = caught.value.messages[0]
    assert chinese != message
    assert response_zh.status_code == 400
    assert response_zh.json()["error"]["message"] == chinese
    assert not FundusImage.objects.exists()
    record.refresh_from_db()
    assert record.status == RecordStatus.DRAFT


def test_an_oversized_file_is_refused_by_the_same_validator(as_tech, record, settings):
    settings.FUNDUS_UPLOAD_MAX_BYTES = 1000
    name, data = hf.valid_jpeg()
    response = upload(as_tech, record, name, data)
    with pytest.raises(ValidationError) as caught:
        validate_fundus_upload(SimpleUploadedFile(name, data))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_large"
    assert response.json()["error"]["message"] == caught.value.messages[0]
    assert caught.value.messages[0].endswith("the limit is 0.9 KB.")


def test_a_missing_file_and_a_wrong_eye_are_field_errors(as_tech, record):
    response = as_tech.post(
        reverse("api-v1:record-images", args=[record.pk]), {"eye": "XX"}, format="multipart"
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"eye", "file"}


def test_the_same_photo_twice_is_refused(as_tech, record):
    name, data = hf.valid_jpeg()
    assert upload(as_tech, record, name, data).status_code == 201
    response = upload(as_tech, record, name, data, eye="OS")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "duplicate"
    assert FundusImage.objects.count() == 1


def test_a_signed_screening_takes_no_more_photos(as_tech, signed_record):
    count = FundusImage.objects.count()
    name, data = hf.valid_png()
    response = upload(as_tech, signed_record, name, data)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "locked"
    assert FundusImage.objects.count() == count


def test_a_doctor_cannot_upload(as_doctor, record):
    name, data = hf.valid_jpeg()
    assert upload(as_doctor, record, name, data).status_code == 403
    assert not FundusImage.objects.exists()


def test_uploads_are_throttled(as_tech, record, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "upload": "2/minute"}
    codes = [upload(as_tech, record, "x.jpg", b"").status_code for _ in range(3)]
    assert codes == [400, 400, 429]


# --- reviews --------------------------------------------------------------------------------
REVIEW = {
    "conclusion_codes": ["dr_moderate"],
    "conclusion_text": "右眼黄斑区可见硬性渗出",
    "recommendation": "refer",
    "follow_up_months": 3,
}


def test_a_doctor_drafts_updates_and_signs_a_review(
    as_doctor, doctor, analysed_record, settings, django_capture_on_commit_callbacks
):
    settings.REVIEW_SIGNED_TASK = "tests.screening.task_probe.record_call"
    url = reverse("api-v1:record-reviews", args=[analysed_record.pk])

    created = as_doctor.post(url, REVIEW, format="json")
    updated = as_doctor.post(
        url, {**REVIEW, "recommendation": "urgent"}, format="json", HTTP_IF_MATCH=created["ETag"]
    )
    sign_url = reverse("api-v1:review-sign", args=[created.json()["id"]])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        signed = as_doctor.post(sign_url, {"revision": updated.json()["revision"]}, format="json")

    assert (created.status_code, updated.status_code, signed.status_code) == (201, 200, 200)
    assert (created["ETag"], updated["ETag"], signed["ETag"]) == ('"1"', '"2"', '"3"')
    assert created.json()["id"] == updated.json()["id"]
    body = signed.json()
    assert (body["is_signed"], body["recommendation"], body["doctor"], body["revision"]) == (
        True,
        "urgent",
        "doctor1",
        3,
    )
    assert body["follow_up_date"] is not None
    analysed_record.refresh_from_db()
    assert analysed_record.status == RecordStatus.REVIEWED
    assert len(callbacks) == 1  # the report task


def test_signing_the_same_revision_twice_is_one_signature(as_doctor, analysed_record):
    draft = as_doctor.post(
        reverse("api-v1:record-reviews", args=[analysed_record.pk]), REVIEW, format="json"
    ).json()
    url = reverse("api-v1:review-sign", args=[draft["id"]])
    first = as_doctor.post(url, {"revision": draft["revision"]}, format="json")
    second = as_doctor.post(url, {"revision": draft["revision"]}, format="json")
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json() == second.json()
    assert AuditEvent.objects.filter(action="sign").count() == 1


def test_signing_needs_the_revision_the_doctor_saw(as_doctor, doctor, analysed_record):
    draft = review_save_draft(doctor=doctor, record=analysed_record, **REVIEW)
    url = reverse("api-v1:review-sign", args=[draft.pk])
    missing = as_doctor.post(url)
    assert missing.status_code == 428
    assert missing.json()["error"]["code"] == "precondition_required"
    assert as_doctor.post(url, {"revision": "one"}, format="json").status_code == 400
    assert not DoctorReview.objects.get().is_signed


def test_a_draft_overwritten_since_it_was_seen_is_not_signed_409(
    as_doctor, doctor, analysed_record
):
    """Doctor A saved "cataract / refer", doctor B saved "normal / routine" over it: A's
    signature of what A saw is refused with the current review, and nothing is signed."""
    url = reverse("api-v1:record-reviews", args=[analysed_record.pk])
    seen = as_doctor.post(
        url, {"conclusion_codes": ["cataract"], "recommendation": "refer"}, format="json"
    )
    colleague = UserFactory(username="doctor-b", role="doctor")
    overwrite = bearer(colleague).post(
        url,
        {"conclusion_codes": ["normal"], "recommendation": "routine", "revision": 1},
        format="json",
    )
    assert (seen.status_code, overwrite.status_code) == (201, 200)

    response = as_doctor.post(
        reverse("api-v1:review-sign", args=[seen.json()["id"]]), HTTP_IF_MATCH=seen["ETag"]
    )

    assert response.status_code == 409
    assert response["ETag"] == '"2"'
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert error["message"] == (
        "The review of this screening changed after you last saw it (now version 1, revision "
        "2, draft by doctor-b): nothing was saved or signed. Check the current review and try "
        "again."
    )
    assert (error["current"]["conclusion_codes"], error["current"]["doctor"]) == (
        ["normal"],
        "doctor-b",
    )
    review = DoctorReview.objects.get()
    assert (review.is_signed, review.conclusion_codes) == (False, ["normal"])
    analysed_record.refresh_from_db()
    assert analysed_record.status == RecordStatus.ANALYSED


def test_two_first_drafts_do_not_both_answer_201(as_doctor, analysed_record):
    url = reverse("api-v1:record-reviews", args=[analysed_record.pk])
    first = as_doctor.post(url, REVIEW, format="json")
    colleague = UserFactory(username="doctor-b", role="doctor")
    second = bearer(colleague).post(url, {**REVIEW, "recommendation": "urgent"}, format="json")
    assert (first.status_code, second.status_code) == (201, 409)
    assert second.json()["error"]["current"]["recommendation"] == "refer"
    assert list(DoctorReview.objects.values_list("recommendation", "doctor__username")) == [
        ("refer", "doctor1")
    ]


def test_an_amendment_needs_a_reason_and_keeps_the_history(as_doctor, signed_record):
    url = reverse("api-v1:record-reviews-amend", args=[signed_record.pk])
    signed_revision = DoctorReview.objects.get().revision

    unbound = as_doctor.post(url, {**REVIEW, "amendment_reason": "复核"}, format="json")
    missing = as_doctor.post(url, {**REVIEW, "revision": signed_revision}, format="json")
    amended = as_doctor.post(
        url,
        {**REVIEW, "conclusion_codes": ["dr_severe"], "amendment_reason": "复核"},
        format="json",
        HTTP_IF_MATCH=f'"{signed_revision}"',
    )
    stale = as_doctor.post(
        url,
        {**REVIEW, "amendment_reason": "另一理由", "revision": signed_revision},
        format="json",
    )
    signed = as_doctor.post(
        reverse("api-v1:review-sign", args=[amended.json()["id"]]),
        HTTP_IF_MATCH=amended["ETag"],
    )
    history = as_doctor.get(reverse("api-v1:record-reviews", args=[signed_record.pk])).json()

    assert unbound.status_code == 428
    assert missing.status_code == 400
    assert list(missing.json()["error"]["fields"]) == ["amendment_reason"]
    assert amended.status_code == 201
    assert stale.status_code == 409
    assert stale.json()["error"]["current"]["id"] == amended.json()["id"]
    assert signed.status_code == 200
    assert [(r["version"], r["conclusion_codes"], r["is_signed"]) for r in history] == [
        (2, ["dr_severe"], True),
        (1, ["dr_moderate"], True),
    ]
    assert history[0]["supersedes"] == history[1]["id"]


def test_a_superuser_who_is_not_a_doctor_cannot_write_or_sign(doctor, analysed_record):
    root = bearer(UserFactory(username="root", is_superuser=True, is_staff=True))
    draft = review_save_draft(doctor=doctor, record=analysed_record, **REVIEW)
    before = DoctorReview.objects.values().get(pk=draft.pk)
    write = root.post(
        reverse("api-v1:record-reviews", args=[analysed_record.pk]),
        {**REVIEW, "conclusion_codes": ["normal"], "revision": draft.revision},
        format="json",
    )
    signing = root.post(
        reverse("api-v1:review-sign", args=[draft.pk]), {"revision": 1}, format="json"
    )
    assert (write.status_code, signing.status_code) == (403, 403)
    assert DoctorReview.objects.values().get(pk=draft.pk) == before


def test_amending_an_unsigned_screening_is_refused(as_doctor, analysed_record):
    response = as_doctor.post(
        reverse("api-v1:record-reviews-amend", args=[analysed_record.pk]),
        {**REVIEW, "amendment_reason": "x"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "nothing_to_amend"
    assert not DoctorReview.objects.exists()


def test_review_validation_errors(as_doctor, analysed_record):
    response = as_doctor.post(
        reverse("api-v1:record-reviews", args=[analysed_record.pk]),
        {"conclusion_codes": ["normal", "cataract"], "recommendation": "routine"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "conclusion_codes": [
            "“No abnormality” and “not gradable” cannot be combined with other conclusions."
        ]
    }


def test_a_review_needs_photos(as_doctor, record):
    response = as_doctor.post(
        reverse("api-v1:record-reviews", args=[record.pk]), REVIEW, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_photos"


def test_technicians_cannot_write_or_sign_reviews(as_tech, doctor, analysed_record):
    draft = review_save_draft(doctor=doctor, record=analysed_record, **REVIEW)
    before = DoctorReview.objects.values().get(pk=draft.pk)

    write = as_tech.post(
        reverse("api-v1:record-reviews", args=[analysed_record.pk]),
        {**REVIEW, "recommendation": "urgent"},
        format="json",
    )
    signing = as_tech.post(
        reverse("api-v1:review-sign", args=[draft.pk]), {"revision": 1}, format="json"
    )

    assert (write.status_code, signing.status_code) == (403, 403)
    assert DoctorReview.objects.values().get(pk=draft.pk) == before
