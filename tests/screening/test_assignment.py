"""record_assign: doctors and administrators put a screening on a doctor's worklist."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from core.models import AuditEvent
from screening.models import RecordStatus, ScreeningRecord
from screening.services import record_assign, record_may_assign
from tests.factories import UserFactory


@pytest.fixture
def doctor_wang(db):
    return UserFactory(username="doctor-wang", role="doctor", first_name="王医生")


def _assignments() -> list[tuple[str, dict]]:
    return list(
        AuditEvent.objects.filter(object_type="screening.screeningrecord")
        .order_by("id")
        .values_list("actor_username", "changes")
    )


def test_a_doctor_assigns_and_reassigns_a_screening(record, doctor, doctor_wang):
    record_assign(actor=doctor, record=record, doctor=doctor_wang)
    record_assign(actor=doctor, record=record, doctor=doctor)

    record.refresh_from_db()
    assert record.assigned_doctor == doctor
    assert _assignments() == [
        ("doctor1", {"assigned_doctor": [None, "doctor-wang"]}),
        ("doctor1", {"assigned_doctor": ["doctor-wang", "doctor1"]}),
    ]


def test_an_administrator_assigns_and_unassigns(record, admin_user, doctor):
    record_assign(actor=admin_user, record=record, doctor=doctor)
    record_assign(actor=admin_user, record=record, doctor=None)

    record.refresh_from_db()
    assert record.assigned_doctor is None
    assert _assignments() == [
        ("admin1", {"assigned_doctor": [None, "doctor1"]}),
        ("admin1", {"assigned_doctor": ["doctor1", None]}),
    ]


def test_assigning_the_same_doctor_again_writes_nothing(record, doctor):
    record_assign(actor=doctor, record=record, doctor=doctor)
    record_assign(actor=doctor, record=record, doctor=doctor)
    assert len(_assignments()) == 1


def test_a_technician_may_not_assign(record, technician, doctor):
    assert record_may_assign(technician) is False
    with pytest.raises(PermissionDenied):
        record_assign(actor=technician, record=record, doctor=doctor)
    assert ScreeningRecord.objects.get(pk=record.pk).assigned_doctor is None
    assert _assignments() == []


def test_only_a_doctor_can_be_assigned(record, doctor, technician, admin_user):
    for target in (technician, admin_user):
        with pytest.raises(ValidationError) as refused:
            record_assign(actor=doctor, record=record, doctor=target)
        assert refused.value.message_dict == {"doctor": [f"{target.username} is not a doctor."]}
    assert ScreeningRecord.objects.get(pk=record.pk).assigned_doctor is None
    assert _assignments() == []


@pytest.mark.parametrize("status", [RecordStatus.REVIEWED, RecordStatus.REPORTED])
def test_a_signed_screening_keeps_its_doctor(record, doctor, doctor_wang, status):
    ScreeningRecord.objects.filter(pk=record.pk).update(status=status, assigned_doctor=doctor)
    record.refresh_from_db()
    with pytest.raises(ValidationError) as refused:
        record_assign(actor=doctor, record=record, doctor=doctor_wang)
    assert refused.value.messages == [
        f"Screening {record} is signed: its doctor can no longer change."
    ]
    assert ScreeningRecord.objects.get(pk=record.pk).assigned_doctor == doctor
    assert _assignments() == []


def test_an_inactive_doctor_may_not_assign(record, doctor, doctor_wang):
    doctor.is_active = False
    doctor.save(update_fields=["is_active"])
    with pytest.raises(PermissionDenied):
        record_assign(actor=doctor, record=record, doctor=doctor_wang)
