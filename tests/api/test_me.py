"""The mini-program's "me" endpoints: own records, final reports only, follow-up date."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import AuditEvent
from screening.services import follow_up_mark
from tests.factories import ScreeningRecordFactory


def test_me_shows_my_masked_profile_and_next_follow_up(as_patient, patient, signed_record):
    body = as_patient.get(reverse("api-v1:me")).json()

    assert body["patient_id"] == patient.patient_id
    assert body["phone_masked"] == f"138****{patient.phone[-4:]}"
    assert patient.phone not in str(body)
    review = signed_record.reviews.get()
    assert body["follow_up"] == {
        "follow_up_date": review.follow_up_date.isoformat(),
        "recommendation": "refer",
        "recommendation_label": "Refer to an ophthalmologist",
        "record_id": signed_record.pk,
        "signed_at": body["follow_up"]["signed_at"],
        "status": "due",
        "status_label": "Due",
        "rescheduled_date": None,
        "next_visit_date": review.follow_up_date.isoformat(),
    }
    event = AuditEvent.objects.get(action="view")
    assert (event.actor, event.patient_ref) == (
        patient.accounts.get().user,
        patient.patient_id,
    )


def test_follow_up_is_empty_before_any_signed_review(as_patient, analysed_record):
    assert as_patient.get(reverse("api-v1:me-follow-up")).json() == {
        "follow_up_date": None,
        "recommendation": None,
        "recommendation_label": None,
        "record_id": None,
        "signed_at": None,
        "status": None,
        "status_label": None,
        "rescheduled_date": None,
        "next_visit_date": None,
    }


def test_my_follow_up_shows_the_date_the_clinic_rescheduled_to(
    as_patient, signed_record, technician
):
    review = signed_record.reviews.get()
    new_date = review.follow_up_date + dt.timedelta(days=14)
    follow_up_mark(actor=technician, review=review, status="rescheduled", new_date=new_date)

    body = as_patient.get(reverse("api-v1:me-follow-up")).json()

    assert {key: body[key] for key in ("follow_up_date", "status", "rescheduled_date")} == {
        "follow_up_date": review.follow_up_date.isoformat(),
        "status": "rescheduled",
        "rescheduled_date": new_date.isoformat(),
    }
    assert body["next_visit_date"] == new_date.isoformat()


def test_my_follow_up_is_done_once_i_came_back(as_patient, signed_record, technician):
    later = signed_record.screened_at + dt.timedelta(days=30)
    ScreeningRecordFactory(patient=signed_record.patient, operator=technician, screened_at=later)

    body = as_patient.get(reverse("api-v1:me-follow-up")).json()

    assert (body["record_id"], body["status"], body["status_label"]) == (
        signed_record.pk,
        "came_back",
        "Came back",
    )
    assert body["next_visit_date"] is None


def test_my_records_are_mine_only(as_patient, signed_record, other_record, technician):
    unsigned = ScreeningRecordFactory(patient=signed_record.patient, operator=technician)

    body = as_patient.get(reverse("api-v1:me-records")).json()

    assert [r["id"] for r in body["results"]] == [unsigned.pk, signed_record.pk]
    assert body["results"][0]["conclusion"] is None
    assert body["results"][1]["conclusion"]["conclusion_codes"] == ["dr_moderate"]


def test_my_records_list_has_constant_queries(as_patient, patient, technician):
    def count(extra: int) -> int:
        ScreeningRecordFactory.create_batch(extra, patient=patient, operator=technician)
        with CaptureQueriesContext(connection) as queries:
            assert as_patient.get(reverse("api-v1:me-records")).status_code == 200
        return len(queries)

    # user, account, patient, page, 2 prefetches (signed reviews, final reports), audit
    assert count(1) == count(12) == 7


def test_the_ai_result_shows_only_after_the_doctor_signed(as_patient, analysed_record, doctor):
    url = reverse("api-v1:me-record-detail", args=[analysed_record.pk])
    assert as_patient.get(url).json()["ai_result"] is None

    from tests.reports.conftest import sign

    sign(doctor, analysed_record)
    body = as_patient.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert body["ai_result"]["eyes"]["OD"]["conclusion"] == "糖尿病视网膜病变"
    assert body["conclusion"]["recommendation"] == "refer"


def test_another_patients_record_is_not_found(as_other_patient, signed_record):
    response = as_other_patient.get(reverse("api-v1:me-record-detail", args=[signed_record.pk]))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_only_final_reports_are_listed(as_patient, final_report, draft_report):
    body = as_patient.get(reverse("api-v1:me-reports")).json()
    assert [r["id"] for r in body["results"]] == [final_report.pk]
    assert body["results"][0]["pdf_url"] == reverse("api-v1:me-report-pdf", args=[final_report.pk])
    assert "access_code" not in body["results"][0]


def test_my_final_report_downloads_and_the_download_is_audited(as_patient, final_report):
    response = as_patient.get(
        reverse("api-v1:me-report-pdf", args=[final_report.pk]), HTTP_ACCEPT="application/pdf"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    with final_report.pdf.open("rb") as stored:
        assert b"".join(response.streaming_content) == stored.read()
    event = AuditEvent.objects.get(action="download")
    assert (event.actor, event.object_id, event.source) == (
        final_report.record.patient.accounts.get().user,
        str(final_report.pk),
        "api",
    )


def test_a_draft_or_foreign_report_is_404_and_nothing_is_logged(
    as_patient, as_other_patient, final_report, draft_report
):
    draft = as_patient.get(
        reverse("api-v1:me-report-pdf", args=[draft_report.pk]), HTTP_ACCEPT="application/pdf"
    )
    foreign = as_other_patient.get(reverse("api-v1:me-report-pdf", args=[final_report.pk]))
    assert (draft.status_code, foreign.status_code) == (404, 404)
    assert draft.json()["error"]["code"] == "not_found"
    assert not AuditEvent.objects.filter(action="download").exists()


def test_staff_are_not_patients(as_doctor, db):
    response = as_doctor.get(reverse("api-v1:me"))
    assert response.status_code == 403


def test_my_reports_list_has_constant_queries(as_patient, patient, technician):
    from reports.models import Report

    def count(extra: int) -> int:
        for record in ScreeningRecordFactory.create_batch(
            extra, patient=patient, operator=technician
        ):
            Report.objects.create(
                record=record,
                version=1,
                status="final",
                summary_final="…",
                summary_source="template",
                pdf="reports/none.pdf",
                pdf_sha256="0" * 64,
            )
        with CaptureQueriesContext(connection) as queries:
            body = as_patient.get(reverse("api-v1:me-reports")).json()
        assert len(body["results"]) == min(Report.objects.count(), 20)
        return len(queries)

    # user, account, patient, page (record joined), audit
    assert count(1) == count(25) == 5
