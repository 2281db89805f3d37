"""The doctor's per-eye DR grade and macular oedema through the staff and patient APIs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.models import AuditEvent
from screening.models import DoctorReview

REVIEW = {"conclusion_codes": ["dr_moderate"], "recommendation": "refer"}


def _post(client, record, body, **headers):
    return client.post(
        reverse("api-v1:record-reviews", args=[record.pk]), body, format="json", **headers
    )


def test_a_doctor_records_grades_and_oedema_per_eye(as_doctor, analysed_record):
    response = _post(
        as_doctor,
        analysed_record,
        {**REVIEW, "dr_grade_od": 2, "dr_grade_os": "ungradable", "dme_od": True, "dme_os": False},
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["dr_grade_od"], body["dr_grade_os"], body["dme_od"], body["dme_os"]) == (
        2,
        "ungradable",
        True,
        False,
    )
    assert body["dr_grade_od_label"] == "Moderate NPDR (R2)"
    assert body["dr_grade_os_label"] == "Ungradable"
    review = DoctorReview.objects.get(pk=body["id"])
    assert (review.dr_grade_od, review.dr_grade_os) == ("2", "ungradable")
    created = AuditEvent.objects.get(action="create", object_type="screening.doctorreview")
    assert created.changes["dr_grade_od"] == [None, "2"]
    assert created.changes["dme_os"] == [None, False]  # "no oedema" is recorded, not dropped


def test_r_notation_and_strings_are_accepted_and_omitted_means_not_graded(
    as_doctor, analysed_record
):
    body = _post(as_doctor, analysed_record, {**REVIEW, "dr_grade_od": "R3"}).json()
    assert (body["dr_grade_od"], body["dr_grade_os"], body["dme_od"]) == (3, None, None)
    assert body["dr_grade_os_label"] == ""


def test_bad_grades_and_oedema_answers_are_clear_field_errors(as_doctor, analysed_record):
    response = _post(
        as_doctor,
        analysed_record,
        {**REVIEW, "dr_grade_od": 5, "dr_grade_os": "severe", "dme_od": "maybe"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "dr_grade_od": ["Choose the right eye's (OD) ICDR grade: R0 to R4, or “ungradable”."],
        "dr_grade_os": ["Choose the left eye's (OS) ICDR grade: R0 to R4, or “ungradable”."],
        "dme_od": [
            "Say whether the right eye (OD) has macular oedema: yes, no, or leave it empty."
        ],
    }
    assert not DoctorReview.objects.exists()


def test_no_abnormality_contradicting_a_grade_is_refused(as_doctor, analysed_record):
    response = _post(
        as_doctor,
        analysed_record,
        {"conclusion_codes": ["normal"], "recommendation": "routine", "dr_grade_os": 2},
    )
    assert response.status_code == 400
    assert (
        "contradicts the diabetic retinopathy grade"
        in (response.json()["error"]["fields"]["conclusion_codes"][0])
    )
    ok = _post(
        as_doctor,
        analysed_record,
        {"conclusion_codes": ["normal"], "recommendation": "routine", "dr_grade_os": 0},
    )
    assert ok.status_code == 201


def test_a_technician_cannot_record_a_grade(as_tech, analysed_record):
    response = _post(as_tech, analysed_record, {**REVIEW, "dr_grade_od": 2})
    assert response.status_code == 403
    assert not DoctorReview.objects.exists()


def test_signing_and_amending_keep_each_versions_grades(as_doctor, analysed_record):
    draft = _post(as_doctor, analysed_record, {**REVIEW, "dr_grade_od": 2, "dme_od": False})
    signed = as_doctor.post(
        reverse("api-v1:review-sign", args=[draft.json()["id"]]),
        {"revision": draft.json()["revision"]},
        format="json",
    )
    assert signed.status_code == 200 and signed.json()["dr_grade_od"] == 2
    amended = as_doctor.post(
        reverse("api-v1:record-reviews-amend", args=[analysed_record.pk]),
        {**REVIEW, "dr_grade_od": 3, "dme_od": True, "amendment_reason": "OCT 复查后修正分级"},
        format="json",
        HTTP_IF_MATCH=signed["ETag"],
    )
    assert amended.status_code == 201, amended.json()
    versions = as_doctor.get(reverse("api-v1:record-reviews", args=[analysed_record.pk])).json()
    assert [(v["version"], v["dr_grade_od"], v["dme_od"]) for v in versions] == [
        (2, 3, True),
        (1, 2, False),
    ]


def test_the_patient_sees_the_signed_grades(as_doctor, as_patient, analysed_record):
    draft = _post(as_doctor, analysed_record, {**REVIEW, "dr_grade_od": 2, "dr_grade_os": 0})
    as_doctor.post(
        reverse("api-v1:review-sign", args=[draft.json()["id"]]),
        {"revision": draft.json()["revision"]},
        format="json",
    )
    body = as_patient.get(reverse("api-v1:me-record-detail", args=[analysed_record.pk])).json()
    conclusion = body["conclusion"]
    assert (conclusion["dr_grade_od"], conclusion["dr_grade_os"]) == (2, 0)
    assert conclusion["dr_grade_od_label"] == "Moderate NPDR (R2)"


@pytest.mark.parametrize("value", [[2], {"grade": 2}, True, 2.5, "", "R", "R22", 10**30])
def test_odd_json_for_a_grade_is_a_field_error_not_a_crash(as_doctor, analysed_record, value):
    response = _post(as_doctor, analysed_record, {**REVIEW, "dr_grade_os": value})
    if value == "":
        assert response.status_code == 201  # empty: not graded
        assert response.json()["dr_grade_os"] is None
        return
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["dr_grade_os"]


@pytest.mark.parametrize("value", ["yes", 1, [True], {"x": 1}])
def test_oedema_takes_only_true_false_or_null(as_doctor, analysed_record, value):
    response = _post(as_doctor, analysed_record, {**REVIEW, "dme_os": value})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["dme_os"]
