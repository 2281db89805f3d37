"""Uncorrected, corrected and pinhole acuity of a screening, entered in either notation."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from core.models import AuditEvent
from screening.models import ScreeningRecord
from screening.services import record_create, record_update
from tests.factories import ScreeningRecordFactory


def stored(record: ScreeningRecord, prefix: str, eye: str) -> tuple:
    record.refresh_from_db()
    logmar = "logmar" if prefix == "va" else f"{prefix}_logmar"
    return (
        getattr(record, f"{logmar}_{eye}"),
        getattr(record, f"{prefix}_category_{eye}"),
        getattr(record, f"{prefix}_cf_cm_{eye}"),
    )


def test_each_acuity_is_stored_as_logmar_with_its_low_vision_category(patient, technician):
    record = record_create(
        actor=technician,
        patient=patient,
        va_od="4.6",
        va_os="指数/30cm",
        cva_od="0.8",
        cva_correction_od="glasses",
        cva_os="4.0",
        cva_correction_os="contacts",
        phva_od="5.0",
        phva_os="手动",
    )

    assert stored(record, "va", "od") == (Decimal("0.400"), "", None)
    assert stored(record, "va", "os") == (Decimal("1.900"), "CF", 30)
    assert stored(record, "cva", "od") == (Decimal("0.100"), "", None)
    assert stored(record, "cva", "os") == (Decimal("1.000"), "", None)
    assert stored(record, "phva", "od") == (Decimal("0.000"), "", None)
    assert stored(record, "phva", "os") == (Decimal("2.300"), "HM", None)
    assert (record.cva_correction_od, record.cva_correction_os) == ("glasses", "contacts")
    # va_<eye> stays the uncorrected decimal; a low-vision category has none.
    assert (record.va_od, record.va_os) == (Decimal("0.40"), None)
    event = AuditEvent.objects.get(action="create", object_type="screening.screeningrecord")
    assert event.changes["va_category_os"] == [None, "CF"]
    assert event.changes["cva_logmar_os"] == [None, "1.000"]


def test_acuity_shows_in_either_notation(patient, technician):
    record = record_create(actor=technician, patient=patient, va_od="4.9", cva_os="CF")
    assert (
        record.acuity_text("va", "od", "decimal"),
        record.acuity_text("va", "od", "five_point"),
        record.acuity_text("cva", "os", "five_point"),
        record.acuity_text("phva", "od", "decimal"),
    ) == ("0.8", "4.9", "CF", "")


def test_clearing_the_corrected_acuity_clears_its_correction(record, technician):
    record_update(actor=technician, record=record, cva_od="1.0", cva_correction_od="glasses")
    record_update(actor=technician, record=record, cva_od="")

    assert stored(record, "cva", "od") == (None, "", None)
    assert record.cva_correction_od == ""


def test_an_acuity_error_changes_nothing(record, technician):
    before = stored(record, "va", "od")
    with pytest.raises(ValidationError) as excinfo:
        record_update(actor=technician, record=record, va_od="5.9", iop_od="16")
    assert excinfo.value.message_dict == {
        "va_od": ["Visual acuity must be 3.0–5.3 in 5-point or 0.01–2.0 in decimal notation."]
    }
    assert stored(record, "va", "od") == before
    assert record.iop_od == Decimal("15.0")
    assert not AuditEvent.objects.filter(action="update").exists()


def test_the_data_migration_recomputes_logmar_from_the_stored_decimal(patient, technician):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("screening.migrations.0009_acuity_notations_corrected_pinhole")
    old = ScreeningRecordFactory(
        patient=patient, operator=technician, va_od=Decimal("0.12"), logmar_od=Decimal("0.92")
    )
    untouched = ScreeningRecordFactory(
        patient=patient, operator=technician, va_od=None, va_os=None, logmar_od=None, logmar_os=None
    )

    migration.recompute_logmar(apps, None)

    old.refresh_from_db()
    untouched.refresh_from_db()
    assert (old.va_od, old.logmar_od, old.va_os, old.logmar_os) == (
        Decimal("0.12"),
        Decimal("0.900"),  # the standard's 4.1, exactly
        Decimal("1.00"),
        Decimal("0.000"),
    )
    assert old.acuity_text("va", "od", "five_point") == "4.1"
    assert (untouched.logmar_od, untouched.logmar_os) == (None, None)


def test_a_correction_alone_needs_a_stored_corrected_acuity(record, technician):
    with pytest.raises(ValidationError) as excinfo:
        record_update(actor=technician, record=record, cva_correction_os="contacts")
    assert excinfo.value.message_dict == {
        "cva_correction_os": ["Enter the corrected visual acuity, or leave the correction empty."]
    }
    record_update(actor=technician, record=record, cva_os="4.8")
    record_update(actor=technician, record=record, cva_correction_os="contacts")
    record.refresh_from_db()
    assert (record.cva_logmar_os, record.cva_correction_os) == (Decimal("0.200"), "contacts")
