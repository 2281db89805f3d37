"""The API takes acuity in either notation and answers logMAR, decimal and 5-point."""

from decimal import Decimal

from django.urls import reverse

from core.models import StaffProfile
from screening.models import ScreeningRecord
from tests.api.conftest import bearer
from tests.factories import ScreeningRecordFactory

FOUR_NINE = {
    "logmar": "0.100",
    "decimal": "0.8",
    "five_point": "4.9",
    "category": "",
    "cf_distance_cm": None,
}


def test_a_screening_is_entered_in_5_point_and_answered_in_every_notation(as_tech, patient):
    response = as_tech.post(
        reverse("api-v1:records"),
        {
            "patient": patient.patient_id,
            "va_od": "4.9",
            "va_os": 0.8,  # a JSON number still works
            "cva_od": "CF/30cm",
            "cva_correction_od": "glasses",
            "phva_os": "5.1",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["va_od"], body["logmar_od"]) == ("0.80", "0.100")
    acuity = body["acuity"]
    assert acuity["notation"] == "five_point"  # the clinic's VA_NOTATION
    assert acuity["od"]["uncorrected"] == {**FOUR_NINE, "display": "4.9"}
    assert acuity["os"]["uncorrected"] == {**FOUR_NINE, "display": "4.9"}
    assert acuity["od"]["corrected"] == {
        "logmar": "1.900",
        "decimal": None,
        "five_point": None,
        "category": "CF",
        "cf_distance_cm": 30,
        "display": "CF/30cm",
        "correction": "glasses",
    }
    assert acuity["os"]["pinhole"]["display"] == "5.1"
    assert acuity["os"]["pinhole"]["decimal"] == "1.2"
    assert (acuity["od"]["pinhole"], acuity["os"]["corrected"]) == (None, None)


def test_a_decimal_user_reads_the_display_in_decimal(doctor, record):
    StaffProfile.objects.create(user=doctor, va_notation="decimal")

    body = bearer(doctor).get(reverse("api-v1:record-detail", args=[record.pk])).json()

    assert body["acuity"]["notation"] == "decimal"
    assert body["acuity"]["od"]["uncorrected"] == {**FOUR_NINE, "display": "0.8"}


def test_an_acuity_that_is_none_is_a_field_error_and_nothing_changes(as_tech, record):
    response = as_tech.patch(
        reverse("api-v1:record-detail", args=[record.pk]),
        {"va_od": "HM/30cm", "phva_os": True, "cva_correction_os": "monocle"},
        format="json",
    )

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"phva_os", "cva_correction_os"}
    response = as_tech.patch(
        reverse("api-v1:record-detail", args=[record.pk]), {"va_od": "HM/30cm"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "va_od": ["Only counting fingers takes a distance, 1–600 cm (e.g. CF/30cm or 指数/30cm)."]
    }
    record.refresh_from_db()
    assert (record.va_od, record.logmar_od, record.va_category_od) == (
        Decimal("0.80"),
        Decimal("0.100"),
        "",
    )


def test_the_mini_program_gets_the_clinic_notation(as_patient, patient, technician, settings):
    settings.VA_NOTATION = "decimal"
    ScreeningRecordFactory(patient=patient, operator=technician)

    body = as_patient.get(reverse("api-v1:me-records")).json()

    assert body["results"][0]["acuity"]["od"]["uncorrected"] == {**FOUR_NINE, "display": "0.8"}
    assert ScreeningRecord.objects.count() == 1
