import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from core.models import AuditEvent
from screening.models import RecordStatus, ScreeningRecord, iop_flag, logmar_from_decimal
from screening.services import record_create, record_transition, record_update


def test_a_screening_stores_decimal_acuity_with_logmar_and_flags_pressure(patient, technician):
    record = record_create(
        actor=technician,
        patient=patient,
        va_od="0.8",
        va_os=Decimal("1.0"),
        iop_od="23.5",
        iop_os="9",
    )
    record.refresh_from_db()
    assert (record.va_od, record.logmar_od) == (Decimal("0.80"), Decimal("0.10"))
    assert (record.va_os, record.logmar_os) == (Decimal("1.00"), Decimal("0.00"))
    assert (record.iop_od_flag, record.iop_os_flag) == ("high", "low")
    assert record.status == RecordStatus.DRAFT
    assert record.operator == technician
    assert (
        AuditEvent.objects.filter(action="create", object_type="screening.screeningrecord").count()
        == 1
    )


@pytest.mark.parametrize(
    ("va", "expected"), [("0.1", "1.00"), ("0.5", "0.30"), ("2.0", "-0.30"), ("0.05", "1.30")]
)
def test_logmar_conversion(va, expected):
    assert logmar_from_decimal(Decimal(va)) == Decimal(expected)


def test_iop_limits_are_inclusive():
    assert [iop_flag(Decimal(v)) for v in ("10", "21", "21.1", "9.9")] == ["", "", "high", "low"]
    assert iop_flag(None) == ""


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"va_od": "2.5"}, "va_od", "3.0–5.3 in 5-point or 0.01–2.0 in decimal"),
        ({"va_os": "abc"}, "va_os", "Enter visual acuity in 5-point (e.g. 4.9) or decimal"),
        ({"cva_od": "HM/30cm"}, "cva_od", "Only counting fingers takes a distance"),
        ({"cva_correction_os": "glasses"}, "cva_correction_os", "Enter the corrected visual"),
        ({"cva_od": "0.5", "cva_correction_od": "monocle"}, "cva_correction_od", "Choose glas"),
        ({"iop_od": "95"}, "iop_od", "between 1 and 80 mmHg"),
        (
            {"screened_at": timezone.now() + dt.timedelta(days=1)},
            "screened_at",
            "cannot be in the future",
        ),
    ],
)
def test_implausible_measurements_are_refused_and_nothing_is_stored(
    patient, technician, fields, field, message
):
    with pytest.raises(ValidationError) as excinfo:
        record_create(actor=technician, patient=patient, **fields)
    assert message in " ".join(excinfo.value.message_dict[field])
    assert ScreeningRecord.objects.count() == 0


def test_a_doctor_cannot_create_screenings(patient, doctor):
    with pytest.raises(PermissionDenied):
        record_create(actor=doctor, patient=patient, va_od="0.5")
    assert ScreeningRecord.objects.count() == 0


def test_measurements_can_be_corrected_until_a_review_is_signed(record, technician):
    record_update(actor=technician, record=record, iop_od="22")
    record.refresh_from_db()
    assert record.iop_od == Decimal("22.0")
    event = AuditEvent.objects.get(action="update")
    assert event.changes == {"iop_od": ["15.0", "22.0"]}

    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.REVIEWED)
    record.refresh_from_db()
    with pytest.raises(ValidationError) as excinfo:
        record_update(actor=technician, record=record, iop_od="30")
    assert excinfo.value.code == "locked"
    record.refresh_from_db()
    assert record.iop_od == Decimal("22.0")


def test_a_screening_cannot_predate_the_patients_birth(patient, technician, record):
    before_birth = timezone.make_aware(
        dt.datetime.combine(patient.date_of_birth - dt.timedelta(days=1), dt.time(10))
    )
    with pytest.raises(ValidationError) as excinfo:
        record_create(actor=technician, patient=patient, screened_at=before_birth)
    born = patient.date_of_birth.isoformat()
    assert excinfo.value.message_dict == {
        "screened_at": [
            f"The screening time cannot be before the patient's date of birth ({born})."
        ]
    }
    with pytest.raises(ValidationError):
        record_update(actor=technician, record=record, screened_at=before_birth)
    assert ScreeningRecord.objects.count() == 1  # only the fixture's record


def test_a_correction_loaded_before_the_signature_is_refused_after_it(record, technician):
    """The form was opened before the doctor signed: the service re-reads the row under lock."""
    stale = ScreeningRecord.objects.get(pk=record.pk)
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.REVIEWED)

    with pytest.raises(ValidationError) as excinfo:
        record_update(actor=technician, record=stale, iop_od="30")

    assert excinfo.value.code == "locked"
    assert ScreeningRecord.objects.get(pk=record.pk).iop_od == Decimal("15.0")
    assert not AuditEvent.objects.filter(action="update").exists()


@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        ("draft", "images_uploaded", True),
        ("draft", "reviewed", False),
        ("images_uploaded", "analysing", True),
        ("analysing", "analysed", True),
        ("analysed", "reviewed", True),
        ("reviewed", "reported", True),
        ("reported", "reviewed", True),
        ("reported", "draft", False),
        ("analysed", "draft", False),
    ],
)
def test_status_moves_only_along_the_workflow(record, start, target, allowed):
    ScreeningRecord.objects.filter(pk=record.pk).update(status=start)
    record.refresh_from_db()
    if allowed:
        record_transition(record=record, to=target)
        assert ScreeningRecord.objects.get(pk=record.pk).status == target
    else:
        with pytest.raises(ValidationError) as excinfo:
            record_transition(record=record, to=target)
        assert excinfo.value.code == "invalid_transition"
        assert ScreeningRecord.objects.get(pk=record.pk).status == start
