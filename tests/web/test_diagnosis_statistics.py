"""Statistics: ICD-10 diagnoses per eye from each screening's latest signed review."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic.statistics import clinic_statistics
from screening.models import RecordStatus, ScreeningRecord
from screening.services import review_save_draft, review_sign
from tests.factories import ScreeningRecordFactory


def _visit(technician, doctor, *, sign=True, **eyes):
    record = ScreeningRecordFactory(operator=technician)
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    record.refresh_from_db()
    review = review_save_draft(doctor=doctor, record=record, recommendation="follow_up", **eyes)
    return review_sign(doctor=doctor, review=review) if sign else review


@pytest.fixture
def diagnosed_clinic(technician, doctor):
    """A: OD DR, OS normal. B: both eyes DR, OD also cataract. C: OD glaucoma suspect,
    amended to OD normal (the latest signed counts). D: both eyes DR, unsigned: not counted."""
    _visit(technician, doctor, conclusion_codes_od=["dr_mild"], conclusion_codes_os=["normal"])
    _visit(
        technician,
        doctor,
        conclusion_codes_od=["dr_moderate", "cataract"],
        conclusion_codes_os=["dr_mild"],
    )
    amended = _visit(technician, doctor, conclusion_codes_od=["glaucoma_suspect"])
    review_sign(
        doctor=doctor,
        review=review_save_draft(
            doctor=doctor,
            record=amended.record,
            conclusion_codes_od=["normal"],
            diagnosis_codes_od=[],
            recommendation="routine",
            amendment_reason="复查眼压正常",
        ),
    )
    _visit(
        technician,
        doctor,
        sign=False,
        conclusion_codes_od=["dr_severe"],
        conclusion_codes_os=["dr_severe"],
    )


def test_diagnoses_count_eyes_per_side_and_screenings(diagnosed_clinic):
    today = timezone.localdate()
    rows = clinic_statistics(start=today, end=today).diagnoses
    assert [(row.code, row.od, row.os, row.screenings) for row in rows] == [
        ("E11.3", 2, 1, 2),
        ("H36.0", 2, 1, 2),
        ("Z01.0", 1, 1, 2),
        ("H26.9", 1, 0, 1),
    ]


def test_the_statistics_page_names_the_diagnoses_in_chinese(
    client, doctor, diagnosed_clinic, settings
):
    settings.LANGUAGE_CODE = "zh-hans"
    client.cookies["django_language"] = "zh-hans"
    client.force_login(doctor)
    html = client.get(reverse("statistics")).content.decode()
    start = html.index('id="diagnoses"')
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html[start : html.index("</table>", start)]))
    assert "诊断 右眼 (OD) 左眼 (OS) 筛查" in text
    assert "H36.0 糖尿病性视网膜病变 2 1 2" in text
    assert "H26.9 白内障 1 0 1" in text
    assert "H40.0" not in text  # amended away
