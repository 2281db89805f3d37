"""The per-eye conclusions through the staff review API and the patient's me/records."""

from __future__ import annotations

from django.urls import reverse

from screening.models import DoctorReview

PER_EYE = {
    "conclusion_codes_od": ["dr_moderate"],
    "diagnosis_codes_od": ["e11.3", "H36.0"],
    "conclusion_text_od": "黄斑区硬性渗出",
    "recommendation_od": "refer",
    "conclusion_codes_os": ["cataract"],
    "recommendation_os": "follow_up",
}
OD_EYE = {
    "eye": "OD",
    "eye_label": "Right eye (OD)",
    "conclusion_codes": ["dr_moderate"],
    "conclusion_labels": ["Moderate non-proliferative diabetic retinopathy"],
    "diagnoses": [
        {
            "code": "E11.3",
            "name_zh": "2型糖尿病伴有眼的并发症",
            "name_en": "Type 2 diabetes mellitus with ophthalmic complications",
        },
        {"code": "H36.0", "name_zh": "糖尿病性视网膜病变", "name_en": "Diabetic retinopathy"},
    ],
    "conclusion_text": "黄斑区硬性渗出",
    "recommendation": "refer",
    "recommendation_label": "Refer to an ophthalmologist",
}


def _post(client, record, body, **headers):
    return client.post(
        reverse("api-v1:record-reviews", args=[record.pk]), body, format="json", **headers
    )


def _sign(client, draft):
    return client.post(
        reverse("api-v1:review-sign", args=[draft["id"]]),
        {"revision": draft["revision"]},
        format="json",
    )


def test_a_doctor_writes_per_eye_conclusions_and_the_visit_follows(as_doctor, analysed_record):
    response = _post(as_doctor, analysed_record, PER_EYE)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["conclusion_codes"] == ["dr_moderate", "cataract"]  # derived: the union
    assert body["recommendation"] == "refer"  # derived: the most pressing
    assert body["diagnosis_codes_od"] == ["E11.3", "H36.0"]
    assert body["diagnosis_codes_os"] == ["H26.9"]  # the conclusion's default
    assert body["eyes"][0] == OD_EYE
    assert [eye["eye"] for eye in body["eyes"]] == ["OD", "OS"]


def test_a_code_outside_the_catalogue_is_a_field_error_and_nothing_is_saved(
    as_doctor, analysed_record
):
    response = _post(as_doctor, analysed_record, {**PER_EYE, "diagnosis_codes_os": ["H99.9"]})

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "diagnosis_codes_os": [
            "Not in the clinic's ICD-10 catalogue: H99.9 (for the left eye (OS)). Use codes "
            "such as E11.3, H36.0, H40.0 or H26.9."
        ]
    }
    assert not DoctorReview.objects.exists()


def test_a_technician_cannot_write_per_eye_conclusions(as_tech, analysed_record):
    response = _post(as_tech, analysed_record, PER_EYE)
    assert response.status_code == 403
    assert not DoctorReview.objects.exists()


def test_an_amendment_that_leaves_the_eyes_out_keeps_them(as_doctor, analysed_record):
    draft = _post(as_doctor, analysed_record, PER_EYE).json()
    signed = _sign(as_doctor, draft)
    amended = as_doctor.post(
        reverse("api-v1:record-reviews-amend", args=[analysed_record.pk]),
        {
            "conclusion_codes": ["dr_severe"],
            "recommendation": "urgent",
            "amendment_reason": "复核后修正",
        },
        format="json",
        HTTP_IF_MATCH=signed["ETag"],
    )
    assert amended.status_code == 201, amended.json()
    body = amended.json()
    assert (body["version"], body["conclusion_codes"]) == (2, ["dr_severe"])
    assert body["eyes"][0] == OD_EYE


def test_the_patient_sees_the_eyes_only_once_signed(as_doctor, as_patient, analysed_record):
    draft = _post(as_doctor, analysed_record, PER_EYE).json()

    listed = as_patient.get(reverse("api-v1:me-records")).json()["results"]
    detail = as_patient.get(reverse("api-v1:me-record-detail", args=[analysed_record.pk])).json()
    assert [row["conclusion"] for row in listed] == [None]
    assert detail["conclusion"] is None
    assert "黄斑区硬性渗出" not in str(listed) + str(detail)

    _sign(as_doctor, draft)
    listed = as_patient.get(reverse("api-v1:me-records")).json()["results"]
    detail = as_patient.get(reverse("api-v1:me-record-detail", args=[analysed_record.pk])).json()
    for conclusion in (listed[0]["conclusion"], detail["conclusion"]):
        assert conclusion["eyes"][0] == OD_EYE
        assert conclusion["eyes"][1]["diagnoses"] == [
            {"code": "H26.9", "name_zh": "白内障", "name_en": "Cataract, unspecified"}
        ]


def test_an_open_amendment_is_not_shown_to_the_patient(as_doctor, as_patient, analysed_record):
    signed = _sign(as_doctor, _post(as_doctor, analysed_record, PER_EYE).json())
    as_doctor.post(
        reverse("api-v1:record-reviews-amend", args=[analysed_record.pk]),
        {
            "conclusion_codes_od": ["dr_severe"],
            "diagnosis_codes_od": ["E11.3", "H36.0"],
            "amendment_reason": "复核后修正",
        },
        format="json",
        HTTP_IF_MATCH=signed["ETag"],
    )
    detail = as_patient.get(reverse("api-v1:me-record-detail", args=[analysed_record.pk])).json()
    assert detail["conclusion"]["version"] == 1
    assert detail["conclusion"]["eyes"][0]["conclusion_codes"] == ["dr_moderate"]
