import datetime as dt
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from core.models import AuditEvent
from patients.identifiers import national_id_check_char
from patients.models import Patient
from patients.services import patient_create, patient_delete, patient_next_id, patient_update
from tests.conftest import REQUIRE_SERVICES
from tests.factories import ScreeningRecordFactory

VALID_ID = "11010519491231002X"


def create(actor, **overrides):
    fields = {
        "name": "张伟",
        "sex": "female",  # VALID_ID's 17th digit (2) is even: a woman's ID
        "date_of_birth": dt.date(1949, 12, 31),
        "phone": "138 1234 8000",
    }
    return patient_create(actor=actor, **{**fields, **overrides})


def test_a_technician_registers_a_patient_with_a_readable_id(
    technician, django_capture_on_commit_callbacks
):
    patient = create(technician, national_id=VALID_ID)
    year = timezone.localdate().year
    assert patient.patient_id == f"P{year}0001"
    assert patient.phone == "13812348000"
    assert patient.created_by == technician
    second = create(technician, name="王芳", phone="13987654321")
    assert second.patient_id == f"P{year}0002"


def test_registration_is_audited_with_masked_identifiers(technician):
    patient = create(technician, national_id=VALID_ID)
    event = AuditEvent.objects.get(object_type="patients.patient", object_id=str(patient.pk))
    assert event.action == "create"
    assert event.actor == technician
    assert event.patient_ref == patient.patient_id
    assert event.changes["phone"] == [None, "138****8000"]
    assert event.changes["national_id"] == [None, "110***********002X"]
    assert "13812348000" not in str(event.changes)


def test_age_is_derived_from_the_date_of_birth(technician):
    patient = create(technician)
    assert patient.age_on(dt.date(2025, 12, 30)) == 75
    assert patient.age_on(dt.date(2025, 12, 31)) == 76


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": "  "}, "name", "Enter the patient's name."),
        (
            {"date_of_birth": dt.date(2999, 1, 1)},
            "date_of_birth",
            "The date of birth cannot be in the future.",
        ),
        ({"phone": "12345"}, "phone", "Enter a mainland mobile number"),
        ({"national_id": "110105194912310021"}, "national_id", "check character is wrong"),
        (
            {"national_id": VALID_ID, "date_of_birth": dt.date(1950, 1, 1)},
            "national_id",
            "(1949-12-31) differs",
        ),
        ({"sex": "x"}, "sex", "Choose male, female or unknown."),
    ],
)
def test_invalid_patient_data_is_refused_per_field_and_nothing_is_stored(
    technician, overrides, field, message
):
    with pytest.raises(ValidationError) as excinfo:
        create(technician, **overrides)
    assert message in " ".join(excinfo.value.message_dict[field])
    assert Patient.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def test_a_second_patient_with_the_same_id_number_is_refused_naming_the_first(technician):
    first = create(technician, national_id=VALID_ID)
    with pytest.raises(ValidationError) as excinfo:
        create(technician, name="另一个人", national_id=VALID_ID)
    assert excinfo.value.message_dict["national_id"] == [
        f"Patient {first.patient_id} already has this ID number."
    ]


def test_update_records_old_and_new_values(technician):
    patient = create(technician)
    patient_update(actor=technician, patient=patient, name="张伟伟", phone="13900001111")
    patient.refresh_from_db()
    assert (patient.name, patient.phone) == ("张伟伟", "13900001111")
    event = AuditEvent.objects.filter(action="update").get()
    assert event.changes == {"name": ["张伟", "张伟伟"], "phone": ["138****8000", "139****1111"]}


def test_an_unchanged_update_writes_nothing(technician):
    patient = create(technician)
    patient_update(actor=technician, patient=patient, name="张伟")
    assert AuditEvent.objects.filter(action="update").count() == 0


def test_a_doctor_cannot_register_or_edit_patients(doctor, technician):
    with pytest.raises(PermissionDenied):
        create(doctor)
    patient = create(technician)
    with pytest.raises(PermissionDenied):
        patient_update(actor=doctor, patient=patient, name="改名")
    patient.refresh_from_db()
    assert patient.name == "张伟"
    assert Patient.objects.count() == 1


def test_a_patient_with_screenings_cannot_be_deleted(admin_user, technician):
    patient = create(technician)
    ScreeningRecordFactory(patient=patient)
    with pytest.raises(ValidationError):
        patient_delete(actor=admin_user, patient=patient)
    assert Patient.objects.filter(pk=patient.pk).exists()


def test_an_administrator_deletes_a_mistaken_registration_and_it_is_audited(admin_user, technician):
    patient = create(technician)
    patient_delete(actor=admin_user, patient=patient)
    assert not Patient.objects.exists()
    assert AuditEvent.objects.filter(action="delete", patient_ref=patient.patient_id).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_get_distinct_ids():
    if connection.vendor != "postgresql":
        if REQUIRE_SERVICES:
            pytest.fail("this test must run on PostgreSQL in CI")
        pytest.skip("row locking is only meaningful on PostgreSQL")
    issued: list[str] = []
    errors: list[BaseException] = []

    def take() -> None:
        try:
            issued.append(patient_next_id(year=2031))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(issued) == [f"P2031{n:04d}" for n in range(1, 9)]


# --- the resident ID's birth date and sex ---------------------------------------------------
MALE_ID = "11010519491231001" + national_id_check_char("11010519491231001")


def test_an_id_number_whose_sex_digit_disagrees_with_the_sex_chosen_is_refused(technician):
    with pytest.raises(ValidationError) as excinfo:
        create(technician, sex="female", national_id=MALE_ID)
    assert excinfo.value.message_dict == {
        "national_id": [
            "The ID number records the sex as Male (its 17th digit), but Female was chosen."
        ]
    }
    assert Patient.objects.count() == 0


def test_changing_the_sex_against_the_stored_id_number_is_refused(technician):
    patient = create(technician, national_id=VALID_ID)
    with pytest.raises(ValidationError) as excinfo:
        patient_update(actor=technician, patient=patient, sex="male")
    assert list(excinfo.value.message_dict) == ["national_id"]
    patient.refresh_from_db()
    assert patient.sex == "female"


def test_unknown_sex_is_allowed_with_an_id_number(technician):
    patient = create(technician, sex="unknown", national_id=MALE_ID)
    assert patient.sex == "unknown"


def test_birth_date_and_sex_left_out_are_filled_from_the_id_number(technician):
    patient = patient_create(actor=technician, name="赵磊", national_id=MALE_ID)
    assert (patient.sex, patient.date_of_birth) == ("male", dt.date(1949, 12, 31))


def test_without_an_id_number_birth_date_and_sex_are_required(technician):
    with pytest.raises(ValidationError) as excinfo:
        patient_create(actor=technician, name="赵磊")
    assert excinfo.value.message_dict == {
        "sex": ["Choose male, female or unknown."],
        "date_of_birth": ["Enter the date of birth."],
    }


# --- names that spoof -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("张\u202e伟", "invisible or control character (U+202E)"),  # right-to-left override
        ("张\u200b伟", "invisible or control character (U+200B)"),  # zero-width space
        ("张\u2066伟\u2069", "invisible or control character (U+2066)"),  # bidi isolate
        ("张\u00ad伟", "invisible or control character (U+00AD)"),  # soft hyphen
        ("张\n伟", "invisible or control character (U+000A)"),
        ("张\ue000伟", "invisible or control character (U+E000)"),  # private use
        ("Z" + "\u0301\u0302\u0303\u0304\u0305", "more than 3 accents or marks"),
    ],
)
def test_names_with_invisible_characters_or_stacked_marks_are_refused(technician, name, message):
    with pytest.raises(ValidationError) as excinfo:
        create(technician, name=name)
    assert message in excinfo.value.message_dict["name"][0]
    assert Patient.objects.count() == 0


def test_names_are_stored_nfc_normalised(technician):
    decomposed = "Jose\u0301 Nguye\u0302\u0303n"  # e + combining acute; e + circumflex + tilde
    patient = create(technician, name=f" {decomposed} ")
    assert patient.name == "José Nguyễn"
    assert len(patient.name) == 11
