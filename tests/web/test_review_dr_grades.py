"""The review form's per-eye DR grade and macular oedema, and the AI–doctor comparison."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from screening.models import DoctorReview
from screening.services import review_save_draft, review_sign
from tests.diabetic_results import make_dr_analysed

REVIEW = {"conclusion_codes": ["dr_moderate"], "recommendation": "refer"}


@pytest.fixture
def dr_record(record, technician, photo_file):
    # OD: AI R2 and macular oedema 0.8; OS: AI R0, no DME reading.
    return make_dr_analysed(record, technician, photo_file, grades=(2, 0), dme=(0.8, None))


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _comparison(html: str) -> str:
    start = html.index('id="dr-comparison"')
    return _text(html[start : html.index("</div>", start)])


def test_the_form_offers_the_grades_in_chinese(client, doctor, dr_record, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    client.cookies["django_language"] = "zh-hans"
    client.force_login(doctor)
    html = client.get(reverse("pages:screening-detail", args=[dr_record.pk])).content.decode()
    form = html[html.index('id="review-form"') :]
    for choice in (
        "无明显糖网 R0",
        "轻度非增殖期 R1",
        "中度非增殖期 R2",
        "重度非增殖期 R3",
        "增殖期 R4",
        "不可分级",
    ):
        assert f">{choice}</option>" in form
    assert 'name="dme_od"' in form and ">有</option>" in form and ">无</option>" in form
    # Before the doctor grades: the AI's reading, the doctor's "not graded".
    assert "AI: R2 (模型 ophai-dr 1.0.0) · 医生: 未分级" in _comparison(html)


def test_a_doctor_grades_each_eye_and_the_page_compares_with_the_ai(client, doctor, dr_record):
    client.force_login(doctor)
    url = reverse("pages:screening-review", args=[dr_record.pk])
    response = client.post(
        url,
        {
            **REVIEW,
            "dr_grade_od": "3",
            "dme_od": "no",
            "dr_grade_os": "0",
            "dme_os": "",
            "action": "sign",
        },
    )
    assert response.status_code == 302
    review = DoctorReview.objects.get(record=dr_record)
    assert (review.is_signed, review.dr_grade_od, review.dme_od) == (True, "3", False)
    assert (review.dr_grade_os, review.dme_os) == ("0", None)

    html = client.get(reverse("pages:screening-detail", args=[dr_record.pk])).content.decode()
    comparison = _comparison(html)
    od, os_ = comparison.split("Left eye (OS)")
    assert "AI: R2 (model ophai-dr 1.0.0) · Doctor: R3 one grade apart referable DR: agree" in od
    assert "Macular oedema: AI: present (model ophai-dme 1.0.0) · Doctor: absent disagree" in od
    assert "AI: R0 (model ophai-dr 1.0.0) · Doctor: R0 same grade referable DR: agree" in os_
    assert "Macular oedema" not in os_  # neither the AI nor the doctor said anything
    # The form shows the signed grades again for an amendment; the history lists them.
    page = client.get(reverse("pages:screening-detail", args=[dr_record.pk]))
    initial = page.context["review_form"].initial
    assert (initial["dr_grade_od"], initial["dme_od"], initial["dme_os"]) == ("3", "no", "")
    assert (
        "Right eye (OD): Severe NPDR (R3), no macular oedema; Left eye (OS): No apparent DR (R0)"
        in _text(html)
    )


def test_a_referable_disagreement_is_marked(client, doctor, dr_record):
    review = review_save_draft(doctor=doctor, record=dr_record, **REVIEW, dr_grade_od="0")
    review_sign(doctor=doctor, review=review)
    client.force_login(doctor)
    html = client.get(reverse("pages:screening-detail", args=[dr_record.pk])).content.decode()
    assert "Doctor: R0 2 grades apart referable DR: disagree" in _comparison(html)
    marker = 'class="small dr-grades">'
    history = _text(html[html.index(marker) + len(marker) :].split("</span>")[0])
    assert history.strip() == "Right eye (OD): No apparent DR (R0)"  # OS: nothing recorded


def test_bad_grade_values_are_shown_on_their_fields(client, doctor, dr_record):
    client.force_login(doctor)
    response = client.post(
        reverse("pages:screening-review", args=[dr_record.pk]),
        {**REVIEW, "dr_grade_od": "7", "dme_os": "perhaps", "action": "save"},
    )
    assert response.status_code == 400
    errors = response.context["review_form"].errors
    assert errors["dr_grade_od"] == [
        "Choose the right eye's (OD) ICDR grade: R0 to R4, or “ungradable”."
    ]
    assert errors["dme_os"] == [
        "Say whether the left eye (OS) has macular oedema: yes, no, or leave it empty."
    ]
    assert not DoctorReview.objects.exists()


def test_no_abnormality_with_a_grade_is_refused_with_its_reason(client, doctor, dr_record):
    client.force_login(doctor)
    response = client.post(
        reverse("pages:screening-review", args=[dr_record.pk]),
        {
            "conclusion_codes": ["normal"],
            "recommendation": "routine",
            "dme_os": "yes",
            "action": "sign",
        },
    )
    assert response.status_code == 400
    assert "contradicts the diabetic retinopathy grade or macular oedema" in (
        response.content.decode()
    )
    assert not DoctorReview.objects.exists()


def test_a_technician_sees_no_grading_form_and_cannot_post_one(client, technician, dr_record):
    client.force_login(technician)
    html = client.get(reverse("pages:screening-detail", args=[dr_record.pk])).content.decode()
    assert 'name="dr_grade_od"' not in html
    response = client.post(
        reverse("pages:screening-review", args=[dr_record.pk]),
        {**REVIEW, "dr_grade_od": "2", "action": "save"},
    )
    assert response.status_code == 403
    assert not DoctorReview.objects.exists()
