"""The report compares the visit with the patient's previous one: VA, IOP, the AI's top finding
and the doctor's conclusion, previous beside this visit."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from reports.facts import previous_visit_comparison, report_inputs
from reports.services import report_generate
from screening.models import ScreeningRecord
from tests.ai_results import NORMAL, make_analysed
from tests.factories import ScreeningRecordFactory
from tests.reports.conftest import pdf_text, sign


def _earlier_visit(record, technician, photo_file, package, days: int = 90) -> ScreeningRecord:
    earlier = ScreeningRecordFactory(
        patient=record.patient, operator=technician, va_od=Decimal("0.60"), iop_od=Decimal("23.0")
    )
    ScreeningRecord.objects.filter(pk=earlier.pk).update(
        screened_at=record.screened_at - dt.timedelta(days=days)
    )
    earlier.refresh_from_db()
    return make_analysed(earlier, technician, photo_file, package, od=NORMAL)


def test_a_first_visit_has_no_comparison(analysed_record):
    assert previous_visit_comparison(record=analysed_record) is None
    assert report_inputs(record=analysed_record).previous_visit is None


def test_the_comparison_sets_the_previous_visit_beside_this_one(
    signed_record, technician, photo_file, package
):
    earlier = _earlier_visit(signed_record, technician, photo_file, package)
    ScreeningRecordFactory(patient=signed_record.patient, operator=technician)  # a later visit

    comparison = report_inputs(record=signed_record).previous_visit

    day = timezone.localtime
    assert comparison["previous_date"] == day(earlier.screened_at).date().isoformat()
    assert comparison["current_date"] == day(signed_record.screened_at).date().isoformat()
    od = comparison["eyes"][0]
    assert od["eye"] == "OD"
    assert (
        od["previous"]["visual_acuity"]["decimal"],
        od["current"]["visual_acuity"]["decimal"],
    ) == (0.6, 0.8)
    assert (od["previous"]["iop"]["mmhg"], od["current"]["iop"]["mmhg"]) == (23.0, 15.0)
    assert od["previous"]["top_finding"] == {
        "label_zh": "正常",
        "label_en": "Normal",
        "probability": 0.77,
        "abnormal": False,
    }
    assert od["current"]["top_finding"] == {
        "label_zh": "糖尿病视网膜病变",
        "label_en": "Diabetic retinopathy",
        "probability": 0.83,
        "abnormal": True,
    }
    assert comparison["previous_conclusion"] is None
    assert [str(label) for label in comparison["current_conclusion"]] == [
        "Moderate non-proliferative diabetic retinopathy"
    ]


def test_the_pdf_shows_the_comparison_table(
    signed_record, technician, photo_file, package, doctor, tmp_path
):
    earlier = _earlier_visit(signed_record, technician, photo_file, package)
    sign(doctor, earlier, conclusion_codes=["normal"], recommendation="routine")

    report = report_generate(record=signed_record, actor=doctor)

    with report.pdf.open("rb") as stored:
        text = pdf_text(stored.read(), tmp_path)
    flat = "".join(text.split())
    assert "与上次就诊比较" in text
    day = timezone.localtime(earlier.screened_at).date().isoformat()
    assert f"上次就诊（{day}）" in flat
    assert "右眼(OD)·视力0.60.8右眼(OD)·眼压（mmHg）23.015.0" in flat
    assert "右眼(OD)·AI主要发现正常(0.77)糖尿病视网膜病变(0.83)" in flat
    assert "医生结论未见异常中度非增殖期糖尿病视网膜病变" in flat
