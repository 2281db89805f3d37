"""Patients through the API: search (masked, audited, constant queries), register, read, correct."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import AuditEvent
from patients.identifiers import mask_national_id, mask_phone, national_id_check_char
from patients.models import Patient
from tests.factories import PatientFactory


def valid_national_id() -> str:
    first17 = "11010119620314001"
    return first17 + national_id_check_char(first17)


def test_search_masks_identifiers_and_audits_the_page(as_doctor, patient, doctor):
    Patient.objects.filter(pk=patient.pk).update(national_id=valid_national_id())
    PatientFactory(name="王五", phone="13911112222")

    response = as_doctor.get(reverse("api-v1:patients"), {"q": patient.phone[-4:]})

    assert response.status_code == 200
    assert response.json()["results"] == [
        {
            "patient_id": patient.patient_id,
            "name": patient.name,
            "sex": "female",
            "date_of_birth": "1970-05-17",
            "age": patient.age,
            "phone_masked": f"138****{patient.phone[-4:]}",
            "national_id_masked": mask_national_id(valid_national_id()),
            "created_at": response.json()["results"][0]["created_at"],
        }
    ]
    assert patient.phone not in response.content.decode()
    event = AuditEvent.objects.get(action="view")
    assert (event.actor, event.object_type, event.patient_ref) == (
        doctor,
        "patients.patient",
        patient.patient_id,
    )
    # the search text (here phone digits) is not copied into the log
    assert event.changes == {"listed_patients": [patient.patient_id], "filters": ["q"]}


def test_search_by_name_sex_and_birth_range(as_tech, db):
    wang = PatientFactory(name="王小明", sex="male", date_of_birth=dt.date(1950, 1, 2))
    PatientFactory(name="王小红", sex="female", date_of_birth=dt.date(1950, 1, 2))
    PatientFactory(name="王小刚", sex="male", date_of_birth=dt.date(1990, 1, 2))

    response = as_tech.get(
        reverse("api-v1:patients"), {"q": "王小", "sex": "male", "born_before": "1960-01-01"}
    )

    assert [p["patient_id"] for p in response.json()["results"]] == [wang.patient_id]


def test_invalid_filter_is_a_400_in_the_error_shape(as_tech, db):
    response = as_tech.get(reverse("api-v1:patients"), {"sex": "robot"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_choice"
    assert list(response.json()["error"]["fields"]) == ["sex"]


def cursor_of(url: str) -> str:
    return parse_qs(urlparse(url).query)["cursor"][0]


def test_search_pages_with_a_cursor_and_constant_queries(as_doctor, db):
    PatientFactory.create_batch(7)

    def page(params):
        with CaptureQueriesContext(connection) as queries:
            response = as_doctor.get(reverse("api-v1:patients"), params)
        return response.json(), len(queries)

    first, first_queries = page({"page_size": 3})
    second, second_queries = page({"page_size": 3, "cursor": cursor_of(first["next"])})
    PatientFactory.create_batch(20)
    big, big_queries = page({"page_size": 25})

    assert len(first["results"]) == 3 and len(second["results"]) == 3
    assert not {p["patient_id"] for p in first["results"]} & {
        p["patient_id"] for p in second["results"]
    }
    assert len(big["results"]) == 25
    # user, 2× permissions, page, audit insert: the same for 3 or 25 rows
    assert first_queries == second_queries == big_queries == 5


def test_technician_registers_a_patient(as_tech, technician):
    response = as_tech.post(
        reverse("api-v1:patients"),
        {
            "name": " 张三 ",
            "sex": "male",
            "date_of_birth": "1962-03-14",
            "phone": "138-1234-8000",
            "national_id": valid_national_id(),
        },
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    patient = Patient.objects.get(patient_id=body["patient_id"])
    assert (patient.name, patient.phone, patient.created_by) == ("张三", "13812348000", technician)
    # the technician may change patients, so sees the full values on the detail
    assert (body["phone"], body["national_id"]) == ("13812348000", valid_national_id())


def test_registration_errors_name_each_field(as_tech, db):
    response = as_tech.post(
        reverse("api-v1:patients"),
        {"name": "李四", "sex": "male", "date_of_birth": "2999-01-01", "phone": "12345"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid",
        "message": "Some fields are not valid: check them and try again.",
        "fields": {
            "phone": [
                "Enter a mainland mobile number (11 digits, e.g. 13812348000) or a landline "
                "with its area code (e.g. 010-12345678)."
            ],
            "date_of_birth": ["The date of birth cannot be in the future."],
        },
    }
    assert not Patient.objects.exists()


def test_registration_errors_in_chinese(as_tech, db):
    response = as_tech.post(
        reverse("api-v1:patients"),
        {"sex": "male", "date_of_birth": "1960-01-01"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"name": ["该字段是必填项。"]}


def test_a_doctor_reads_masked_identifiers_and_the_read_is_audited(as_doctor, doctor, patient):
    response = as_doctor.get(reverse("api-v1:patient-detail", args=[patient.patient_id]))

    assert response.status_code == 200
    body = response.json()
    assert (body["phone"], body["national_id"]) == (None, None)
    assert body["phone_masked"] == f"138****{patient.phone[-4:]}"
    event = AuditEvent.objects.get(action="view")
    assert (event.actor, event.object_id, event.patient_ref) == (
        doctor,
        str(patient.pk),
        patient.patient_id,
    )


def test_a_technician_reads_full_identifiers(as_tech, patient):
    body = as_tech.get(reverse("api-v1:patient-detail", args=[patient.patient_id])).json()
    assert body["phone"] == patient.phone


def test_an_unknown_patient_is_404(as_tech, db):
    response = as_tech.get(reverse("api-v1:patient-detail", args=["P00000000"]))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_technician_corrects_a_phone_number(as_tech, patient):
    old_phone = patient.phone
    response = as_tech.patch(
        reverse("api-v1:patient-detail", args=[patient.patient_id]),
        {"phone": "13912345678"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["phone"] == "13912345678"
    patient.refresh_from_db()
    assert patient.phone == "13912345678"
    event = AuditEvent.objects.get(action="update")
    assert event.changes == {"phone": [mask_phone(old_phone), "139****5678"]}


def test_a_doctor_cannot_change_a_patient(as_doctor, patient):
    before = Patient.objects.values().get(pk=patient.pk)
    response = as_doctor.patch(
        reverse("api-v1:patient-detail", args=[patient.patient_id]),
        {"name": "改名"},
        format="json",
    )
    assert response.status_code == 403
    assert Patient.objects.values().get(pk=patient.pk) == before
    assert not AuditEvent.objects.filter(action="update").exists()


# --- spoofing text and non-string JSON ------------------------------------------------------
def test_a_number_as_a_name_is_refused_not_stored_as_inf(as_tech, db):
    response = as_tech.post(
        reverse("api-v1:patients"),
        data=b'{"name": 1e999999, "sex": "male", "date_of_birth": "1962-03-14"}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "not_a_string",
        "message": "Send this field as text in quotes, not as a number, true/false, a list "
        "or an object.",
        "fields": {
            "name": [
                "Send this field as text in quotes, not as a number, true/false, a list "
                "or an object."
            ]
        },
    }
    assert not Patient.objects.exists()


@pytest.mark.parametrize("value", [12345, 1.5, True, ["张三"], {"zh": "张三"}])
def test_non_string_json_for_text_fields_is_refused(as_tech, db, value):
    response = as_tech.post(
        reverse("api-v1:patients"),
        {"name": "张三", "sex": "male", "date_of_birth": "1962-03-14", "notes": value},
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["notes"]
    assert not Patient.objects.exists()


def test_a_name_with_a_right_to_left_override_is_refused_in_chinese(as_tech, db):
    response = as_tech.post(
        reverse("api-v1:patients"),
        {"name": "张\u202e三", "sex": "male", "date_of_birth": "1962-03-14"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "name": ["姓名中含有不可见字符或控制字符（U+202E），请重新输入姓名，不要包含该字符。"]
    }
    assert not Patient.objects.exists()


def test_a_patch_with_a_zero_width_name_changes_nothing(as_tech, patient):
    before = patient.name
    response = as_tech.patch(
        reverse("api-v1:patient-detail", args=[patient.patient_id]),
        {"name": "王\u200b芳"},
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["name"]
    patient.refresh_from_db()
    assert patient.name == before


# --- the resident ID's sex and birth date ---------------------------------------------------
def test_registration_with_an_id_number_fills_sex_and_birth_date(as_tech, db):
    response = as_tech.post(
        reverse("api-v1:patients"),
        {"name": "张三", "national_id": valid_national_id()},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["sex"], body["date_of_birth"]) == ("male", "1962-03-14")


def test_an_id_number_of_the_other_sex_is_refused(as_tech, db):
    response = as_tech.post(
        reverse("api-v1:patients"),
        {
            "name": "李梅",
            "sex": "female",
            "date_of_birth": "1962-03-14",
            "national_id": valid_national_id(),
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "national_id": [
            "The ID number records the sex as Male (its 17th digit), but Female was chosen."
        ]
    }
    assert not Patient.objects.exists()


def test_search_by_pinyin_initials_and_id_tail(as_tech, db):
    zhang = PatientFactory(name="张晓宇", national_id=valid_national_id())
    PatientFactory(name="王芳")

    for query in ("zxy", "Zhang Xiaoyu", zhang.national_id[-4:].lower()):
        response = as_tech.get(reverse("api-v1:patients"), {"q": query})
        assert [row["patient_id"] for row in response.json()["results"]] == [zhang.patient_id]
