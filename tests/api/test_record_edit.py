"""PATCH records/<id>/: measurements and notes corrected through record_update (its validation,
its lock once a doctor has signed, its audit), by the roles that hold change_screeningrecord."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEvent
from screening.models import ScreeningRecord


def patch(client, record, body: dict):
    return client.patch(reverse("api-v1:record-detail", args=[record.pk]), body, format="json")


def measurements(record: ScreeningRecord) -> tuple:
    record.refresh_from_db()
    return (
        record.screened_at,
        record.va_od,
        record.va_os,
        record.logmar_od,
        record.logmar_os,
        record.iop_od,
        record.iop_os,
        record.notes,
    )


def updates():
    return AuditEvent.objects.filter(action="update", object_type="screening.screeningrecord")


def test_a_technician_corrects_only_the_fields_sent(as_tech, technician, record):
    response = patch(as_tech, record, {"va_od": "0.5", "iop_os": "23.5", "notes": " 复测 "})

    assert response.status_code == 200
    body = response.json()
    assert (body["va_od"], body["logmar_od"], body["va_os"], body["logmar_os"]) == (
        "0.50",
        "0.300",
        "1.00",
        "0.000",
    )
    assert (body["iop_od"], body["iop_os"], body["iop_os_flag"], body["notes"]) == (
        "15.0",
        "23.5",
        "high",
        "复测",
    )
    assert (body["id"], body["images"], body["reviews"]) == (record.pk, [], [])
    record.refresh_from_db()
    assert (record.va_od, record.iop_os, record.iop_od, record.notes) == (
        Decimal("0.50"),
        Decimal("23.5"),
        Decimal("15.0"),
        "复测",
    )
    event = updates().get()
    assert (event.actor, event.object_id, event.patient_ref, event.source) == (
        technician,
        str(record.pk),
        record.patient.patient_id,
        "api",
    )
    assert set(event.changes) == {"va_od", "logmar_od", "iop_os", "notes"}


def test_null_clears_a_measurement(as_tech, record):
    response = patch(as_tech, record, {"va_os": None})

    assert response.status_code == 200
    assert (response.json()["va_os"], response.json()["logmar_os"]) == (None, None)
    record.refresh_from_db()
    assert (record.va_os, record.logmar_os, record.va_od) == (None, None, Decimal("0.80"))


def test_the_screening_time_can_be_corrected_but_not_into_the_future(as_tech, record):
    earlier = timezone.now().replace(microsecond=0) - dt.timedelta(days=1)
    assert patch(as_tech, record, {"screened_at": earlier.isoformat()}).status_code == 200
    record.refresh_from_db()
    assert record.screened_at == earlier

    later = timezone.now() + dt.timedelta(days=1)
    response = patch(as_tech, record, {"screened_at": later.isoformat()})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "screened_at": ["The screening time cannot be in the future."]
    }
    record.refresh_from_db()
    assert record.screened_at == earlier


def test_an_empty_patch_changes_nothing_and_writes_no_audit_line(as_tech, record):
    before = measurements(record)
    response = patch(as_tech, record, {})
    assert response.status_code == 200
    assert response.json()["va_od"] == "0.80"
    assert measurements(record) == before
    assert not updates().exists()


def test_values_out_of_range_are_field_errors_from_the_service(as_tech, record):
    before = measurements(record)

    response = patch(as_tech, record, {"va_od": "2.5", "iop_od": "0", "notes": "x"})

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "va_od": ["Visual acuity must be 3.0–5.3 in 5-point or 0.01–2.0 in decimal notation."],
        "iop_od": ["Intraocular pressure must be between 1 and 80 mmHg."],
    }
    assert measurements(record) == before
    assert not updates().exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"va_od": "abc"}, "va_od"),
        ({"iop_os": "12.345"}, "iop_os"),
        ({"screened_at": None}, "screened_at"),
        ({"notes": "x" * 4001}, "notes"),
    ],
)
def test_malformed_values_are_field_errors(as_tech, record, body, field):
    before = measurements(record)
    response = patch(as_tech, record, body)
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    assert measurements(record) == before


def test_a_signed_screening_is_locked(as_tech, signed_record):
    before = measurements(signed_record)

    response = patch(as_tech, signed_record, {"iop_od": "30"})

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "locked",
        "message": (
            "This screening has a signed review; its measurements can no longer be changed."
        ),
        "fields": {},
    }
    assert measurements(signed_record) == before
    assert not updates().exists()


def test_doctors_do_not_edit_measurements(as_doctor, record):
    """Per core.roles the doctor role has no change_screeningrecord (as on the web form)."""
    before = measurements(record)
    response = patch(as_doctor, record, {"iop_od": "30"})
    assert response.status_code == 403
    assert measurements(record) == before
    assert not updates().exists()


@pytest.mark.parametrize("client_name", ["as_patient", "as_other_patient", "anon"])
def test_patients_and_anonymous_callers_change_nothing(request, record, client_name):
    before = measurements(record)
    response = patch(request.getfixturevalue(client_name), record, {"notes": "mine"})
    assert response.status_code == (401 if client_name == "anon" else 403)
    assert set(response.json()) == {"error"}
    assert measurements(record) == before
    assert not updates().exists()


def test_an_unknown_record_is_not_found(as_tech, db):
    response = as_tech.patch(
        reverse("api-v1:record-detail", args=[999999]), {"notes": "x"}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
