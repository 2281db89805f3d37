"""The REST API of reports, and the staff download view."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from core.models import AuditEvent
from reports.models import Report
from reports.services import report_generate
from tests.factories import UserFactory


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def report(signed_record, doctor):
    return report_generate(record=signed_record, actor=doctor)


def pdf_bytes(response) -> bytes:
    return b"".join(response.streaming_content)


def test_staff_list_every_version_of_a_records_report(api, technician, signed_record, doctor):
    first = report_generate(record=signed_record, actor=doctor)
    second = report_generate(record=signed_record, actor=doctor, language="en")
    api.force_login(technician)

    with CaptureQueriesContext(connection) as queries:
        response = api.get(reverse("api-v1:record-reports", args=[signed_record.pk]))

    assert response.status_code == 200
    assert [(r["id"], r["version"], r["language"], r["status"]) for r in response.json()] == [
        (second.pk, 2, "en", "final"),
        (first.pk, 1, "zh-hans", "final"),
    ]
    assert response.json()[1]["pdf_url"] == reverse("api-v1:report-pdf", args=[first.pk])
    assert response.json()[1]["summary_source"] == "template"
    # session, user, 2× permissions, record, reports: the same for any number of versions
    assert len(queries) == 6


def test_the_list_is_for_staff_only(api, report, signed_record):
    url = reverse("api-v1:record-reports", args=[signed_record.pk])
    assert api.get(url).status_code == 401  # JWT first: a client without a token is told so
    api.force_login(UserFactory(role="patient"))
    response = api.get(url)
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "permission_denied",
            "message": "You do not have permission to do this.",
            "fields": {},
        }
    }


def test_an_unknown_record_is_404(api, doctor, db):
    api.force_login(doctor)
    assert api.get(reverse("api-v1:record-reports", args=[999999])).status_code == 404


def test_a_doctor_triggers_generation(
    api, doctor, signed_record, django_capture_on_commit_callbacks
):
    api.force_login(doctor)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            reverse("api-v1:record-reports-generate", args=[signed_record.pk]),
            {"language": "en"},
            format="json",
        )
    assert response.status_code == 202
    assert response.json() == {"record": signed_record.pk, "language": "en", "queued": True}
    report = Report.objects.get(record=signed_record)
    assert (report.language, report.generated_by) == ("en", doctor)


def test_a_technician_cannot_trigger_generation(
    api, technician, signed_record, django_capture_on_commit_callbacks
):
    api.force_login(technician)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api.post(reverse("api-v1:record-reports-generate", args=[signed_record.pk]))
    assert response.status_code == 403
    assert callbacks == []
    assert not Report.objects.exists()


def test_generation_input_is_validated(api, doctor, signed_record, record_without_photos):
    api.force_login(doctor)
    response = api.post(
        reverse("api-v1:record-reports-generate", args=[signed_record.pk]),
        {"language": "fr"},
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["language"]
    response = api.post(reverse("api-v1:record-reports-generate", args=[record_without_photos.pk]))
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid",
        "message": "Upload at least one photo before generating a report.",
        "fields": {},
    }


@pytest.fixture
def record_without_photos(db, patient, technician):
    from tests.factories import ScreeningRecordFactory

    return ScreeningRecordFactory(patient=patient, operator=technician)


def test_staff_download_the_pdf_and_the_download_is_audited(api, technician, report):
    api.force_login(technician)
    response = api.get(reverse("api-v1:report-pdf", args=[report.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Cache-Control"] == "private, no-store"
    with report.pdf.open("rb") as stored:
        assert pdf_bytes(response) == stored.read()
    event = AuditEvent.objects.get(action="download")
    assert (event.actor, event.object_id, event.source) == (technician, str(report.pk), "api")


def test_a_patient_account_cannot_download_and_nothing_is_logged(api, report):
    api.force_login(UserFactory(role="patient"))
    assert api.get(reverse("api-v1:report-pdf", args=[report.pk])).status_code == 403
    assert not AuditEvent.objects.filter(action="download").exists()


def test_verify_by_code_is_public_and_shows_no_patient_data(api, report, signed_record):
    response = api.get(reverse("api-v1:report-verify", args=[report.verification_code.lower()]))
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "report_id": report.number,
        "version": 1,
        "status": "final",
        "generated_at": body["generated_at"],
        "clinic": "OphAI Eye Screening Clinic",
        "pdf_sha256": report.pdf_sha256,
    }
    text = response.content.decode()
    patient = signed_record.patient
    for value in (patient.name, patient.phone, patient.patient_id, report.access_code):
        assert value not in text


def test_verify_an_unknown_code(api, db):
    response = api.get(reverse("api-v1:report-verify", args=["NOPE2345"]))
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "not_found",
            "message": "No report has this verification code.",
            "fields": {},
        }
    }


def test_verification_is_rate_limited_per_client_address(api, report, settings):
    cache.clear()
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "verify": "3/minute"}
    url = reverse("api-v1:report-verify", args=["NOPE2345"])

    # guessing codes, with a new X-Forwarded-For each time
    statuses = [api.get(url, HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code for i in range(4)]
    refused = api.get(reverse("api-v1:report-verify", args=[report.verification_code]))

    assert statuses == [404, 404, 404, 429]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert refused["Retry-After"]


def test_verification_has_a_configured_default_rate(settings):
    assert settings.API_THROTTLE_RATES["verify"] == "60/minute"


def test_a_doctor_approves_a_summary_through_the_api(api, doctor, report):
    api.force_login(doctor)
    response = api.post(
        reverse("api-v1:report-approve-summary", args=[report.pk]),
        {"text": "医生审核后的说明。"},
        format="json",
    )
    assert response.status_code == 201
    assert (response.json()["version"], response.json()["summary_final"]) == (
        2,
        "医生审核后的说明。",
    )
    assert response.json()["summary_approved_by"] == "doctor1"


def test_a_technician_cannot_approve_a_summary(api, technician, report):
    api.force_login(technician)
    response = api.post(
        reverse("api-v1:report-approve-summary", args=[report.pk]), {"text": "x"}, format="json"
    )
    assert response.status_code == 403
    assert Report.objects.count() == 1


def test_approving_a_stale_version_is_a_409_with_the_current_version(
    api, doctor, report, signed_record
):
    newer = report_generate(record=signed_record, actor=doctor)
    api.force_login(doctor)
    response = api.post(
        reverse("api-v1:report-approve-summary", args=[report.pk]), {"text": "x"}, format="json"
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["code"], error["message"], error["fields"]) == (
        "conflict",
        "Version 2 of this report is newer; approve the summary there.",
        {},
    )
    assert (error["current"]["id"], error["current"]["version"]) == (newer.pk, 2)
    assert Report.objects.count() == 2


def test_a_superuser_who_is_not_a_doctor_cannot_approve(api, report):
    from tests.factories import UserFactory

    api.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    response = api.post(
        reverse("api-v1:report-approve-summary", args=[report.pk]), {"text": "x"}, format="json"
    )
    assert response.status_code == 403
    assert Report.objects.count() == 1


def test_the_staff_download_view(client, technician, report):
    url = reverse("reports:report-pdf", args=[report.pk])
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(technician)
    response = client.get(url)
    assert response.status_code == 200
    assert f'filename="{report.download_name}"' in response["Content-Disposition"]
    assert AuditEvent.objects.get(action="download").source == "web"


def test_version_one_stays_downloadable_after_regeneration(client, doctor, report, signed_record):
    report_generate(record=signed_record, actor=doctor)
    client.force_login(doctor)
    response = client.get(reverse("reports:report-pdf", args=[report.pk]))
    assert response.status_code == 200
    with report.pdf.open("rb") as stored:
        assert pdf_bytes(response) == stored.read()
