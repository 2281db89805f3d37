"""Statistics of diabetic eyes: grade distributions, referral rates and AI–doctor agreement
(referable DR, exact grade, quadratic weighted kappa, macular oedema) on a small known set."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic.statistics import clinic_statistics
from screening.services import review_save_draft, review_sign
from tests.diabetic_results import make_dr_analysed
from tests.factories import ScreeningRecordFactory


def _review(doctor, record, *, sign=True, **grades):
    review = review_save_draft(
        doctor=doctor,
        record=record,
        conclusion_codes=["other"],
        recommendation="follow_up",
        **grades,
    )
    return review_sign(doctor=doctor, review=review) if sign else review


@pytest.fixture
def diabetic_clinic(doctor, technician, photo_file):
    """AI grades (OD, OS) and the doctor's, per screening:

    A: AI R2 + oedema 0.8, R0   doctor (signed) R3 + oedema, R0
    B: AI R1, R3                doctor (signed) R1, R1
    C: AI R4, R0                doctor (signed) ungradable, R0 without oedema
    D: AI R1, R0                doctor's unsigned draft R3, R3: does not count
    """

    def visit(**options):
        record = ScreeningRecordFactory(operator=technician)
        return make_dr_analysed(record, technician, photo_file, **options)

    a = visit(grades=(2, 0), dme=(0.8, None))
    _review(doctor, a, dr_grade_od=3, dme_od=True, dr_grade_os=0)
    b = visit(grades=(1, 3))
    _review(doctor, b, dr_grade_od=1, dr_grade_os=1)
    c = visit(grades=(4, 0))
    _review(doctor, c, dr_grade_od="ungradable", dr_grade_os=0, dme_os=False)
    d = visit(grades=(1, 0))
    _review(doctor, d, sign=False, dr_grade_od=3, dr_grade_os=3)


def _stats():
    today = timezone.localdate()
    return clinic_statistics(start=today - dt.timedelta(days=6), end=today)


def test_grade_distributions_count_ai_eyes_and_signed_doctor_eyes(diabetic_clinic):
    dr = _stats().dr
    assert dr.ai_grades == [3, 2, 1, 1, 1]  # 8 eyes
    assert dr.doctor_grades == [2, 2, 0, 1, 0]  # D's draft left out
    assert dr.doctor_ungradable == 1


def test_referral_rates_per_eye_and_per_screening(diabetic_clinic):
    dr = _stats().dr
    # AI: A OD (R2, oedema), B OS (R3), C OD (R4) of 8 eyes; A, B, C of 4 screenings.
    assert (dr.ai_referable_eyes.part, dr.ai_referable_eyes.total) == (3, 8)
    assert (dr.ai_referable_visits.part, dr.ai_referable_visits.total) == (3, 4)
    # Doctor: A OD of the 5 eyes with a grade or an oedema answer (C OD ungradable: none).
    assert (dr.doctor_referable_eyes.part, dr.doctor_referable_eyes.total) == (1, 5)
    assert (dr.doctor_referable_visits.part, dr.doctor_referable_visits.total) == (1, 3)


def test_agreement_referable_dr_exact_grade_kappa_and_oedema(diabetic_clinic):
    dr = _stats().dr
    # Pairs (AI, doctor): A (2,3) (0,0); B (1,1) (3,1); C OS (0,0).
    assert sorted(dr.grade_pairs) == sorted([(2, 3), (0, 0), (1, 1), (3, 1), (0, 0)])
    referable = dr.referable
    assert (
        referable.both_positive,
        referable.ai_only,
        referable.doctor_only,
        referable.both_negative,
    ) == (1, 1, 0, 3)
    assert referable.rate == pytest.approx(4 / 5)
    assert (referable.sensitivity, referable.specificity) == (1.0, pytest.approx(3 / 4))
    assert (dr.exact.part, dr.exact.total, dr.within_one.part) == (3, 5, 4)
    # 1 − Σ(a−d)² / (Σᵢⱼ(aᵢ−dⱼ)² / n) = 1 − 5 / (65 / 5)
    assert dr.kappa == pytest.approx(1 - 5 / 13)
    assert (dr.dme.both_positive, dr.dme.total) == (1, 1)


def test_the_dr_models_grades_count_in_the_per_screening_dr_row(diabetic_clinic):
    # A, B and C (signed): the AI's argmax is R1 or worse in an eye; the doctor wrote "other".
    row = next(a for a in _stats().agreements if a.category.code == "dr")
    assert (row.ai_only, row.total) == (3, 3)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_statistics_page_shows_the_dr_figures(client, doctor, diabetic_clinic):
    client.force_login(doctor)
    html = client.get(reverse("statistics")).content.decode()
    row = _text(html[html.index('id="agreement-referable_dr"') :].split("</tr>")[0])
    assert "Referable DR (R2 or worse), per eye 80% 5 1 1 0 3 100% 75%" in row
    text = _text(html)
    assert "the AI's grade equals the doctor's in 3 of 5 eyes (60%); within one grade in 4." in (
        text
    )
    assert "Quadratic weighted kappa: 0.62" in text
    assert "Referable by the AI 38% 3 of 8 eyes; 3 of 4 screenings" in text
    assert "Referable by the doctor 20% 1 of 5 eyes; 1 of 3 screenings" in text
    grades = _text(
        html[html.index('id="dr-grades"') : html.index("</table>", html.index('id="dr-grades"'))]
    )
    assert "Moderate NPDR (R2) 1 0" in grades and "Ungradable — 1" in grades


def test_the_statistics_page_in_chinese(client, doctor, diabetic_clinic, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    client.cookies["django_language"] = "zh-hans"
    client.force_login(doctor)
    text = _text(client.get(reverse("statistics")).content.decode())
    assert "需转诊糖网（R2 及以上），按眼" in text
    assert "中度非增殖期 R2 1 0" in text
    assert "二次加权 kappa: 0.62" in text


def test_without_diabetic_models_the_figures_are_empty_not_wrong(client, doctor, db):
    client.force_login(doctor)
    response = client.get(reverse("statistics"))
    dr = response.context["stats"].dr
    assert dr.kappa is None and dr.referable.total == 0 and dr.ai_referable_eyes.rate is None
    assert "Quadratic weighted kappa: —" in _text(response.content.decode())


def test_the_dr_figures_take_a_constant_number_of_queries(
    client, doctor, technician, photo_file, diabetic_clinic
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(doctor)
    client.get(reverse("statistics"))  # session and caches warm
    with CaptureQueriesContext(connection) as four:
        client.get(reverse("statistics"))
    for grades in ((2, 2), (0, 1)):
        record = ScreeningRecordFactory(operator=technician)
        _review(
            doctor, make_dr_analysed(record, technician, photo_file, grades=grades), dr_grade_od=2
        )
    with CaptureQueriesContext(connection) as six:
        response = client.get(reverse("statistics"))
    assert response.context["stats"].dr.referable.total == 5 + 2
    assert len(six) == len(four)
