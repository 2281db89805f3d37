"""The review form's per-eye conclusion, ICD-10 codes, text and recommendation."""

from __future__ import annotations

import re

from django.urls import reverse

from screening.models import DoctorReview
from screening.services import review_save_draft, review_sign

PER_EYE_POST = {
    "conclusion_codes_od": ["dr_moderate"],
    "diagnosis_codes_od": "",
    "conclusion_text_od": "黄斑区硬性渗出",
    "recommendation_od": "refer",
    "conclusion_codes_os": ["normal"],
    "diagnosis_codes_os": "",
    "conclusion_text_os": "",
    "recommendation_os": "routine",
}


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_form_offers_the_eyes_in_chinese(client, doctor, analysed_record, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    client.cookies["django_language"] = "zh-hans"
    client.force_login(doctor)
    html = client.get(reverse("pages:screening-detail", args=[analysed_record.pk])).content.decode()
    form = html[html.index('id="review-form"') :]
    assert 'name="conclusion_codes_od"' in form and 'name="conclusion_codes_os"' in form
    assert "ICD-10 编码（右眼 OD）" in form and "结论（左眼 OS）" in form
    assert '<option value="H36.0">H36.0 糖尿病性视网膜病变</option>' in form
    assert "clinic/review_icd10.js" in form


def test_a_doctor_signs_per_eye_conclusions_and_the_page_shows_them(
    client, doctor, analysed_record
):
    client.force_login(doctor)
    response = client.post(
        reverse("pages:screening-review", args=[analysed_record.pk]),
        {**PER_EYE_POST, "action": "sign"},
    )
    assert response.status_code == 302
    review = DoctorReview.objects.get(record=analysed_record)
    assert review.is_signed
    assert (review.conclusion_codes, review.recommendation) == (["dr_moderate"], "refer")
    assert (review.diagnosis_codes_od, review.diagnosis_codes_os) == (["E11.3", "H36.0"], ["Z01.0"])
    assert review.conclusion_text_od == "黄斑区硬性渗出"

    html = client.get(reverse("pages:screening-detail", args=[analysed_record.pk])).content.decode()
    start = html.index('class="eye-conclusions')
    table = html[start : html.index("</table>", start)]
    assert _text(table).split(" Right eye (OD) ")[1].strip() == (
        "Moderate non-proliferative diabetic retinopathy 黄斑区硬性渗出 E11.3 Type 2 diabetes "
        "mellitus with ophthalmic complications H36.0 Diabetic retinopathy Refer to an "
        "ophthalmologist Left eye (OS) No abnormality found Z01.0 Examination of eyes and "
        "vision (no abnormality) Routine screening in 12 months"
    )


def test_a_bad_code_is_shown_at_its_field_and_nothing_is_saved(client, doctor, analysed_record):
    client.force_login(doctor)
    response = client.post(
        reverse("pages:screening-review", args=[analysed_record.pk]),
        {**PER_EYE_POST, "diagnosis_codes_od": "E11.3, H36.9", "action": "save"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert (
        '<ul class="errorlist" id="id_diagnosis_codes_od_error"><li>Not in the clinic&#x27;s '
        "ICD-10 catalogue: H36.9 (for the right eye (OD))."
    ) in html
    assert 'value="E11.3, H36.9"' in html  # the doctor's entry is kept
    assert not DoctorReview.objects.exists()


def test_the_amendment_form_starts_from_the_signed_eyes(client, doctor, analysed_record):
    review_sign(
        doctor=doctor,
        review=review_save_draft(
            doctor=doctor,
            record=analysed_record,
            conclusion_codes_od=["glaucoma_suspect"],
            diagnosis_codes_od=["H40.0", "H35.8"],
            recommendation_od="follow_up",
        ),
    )
    client.force_login(doctor)
    html = client.get(reverse("pages:screening-detail", args=[analysed_record.pk])).content.decode()
    form = html[html.index('id="review-form"') :]
    assert 'name="diagnosis_codes_od" value="H40.0, H35.8"' in form
    assert re.search(r'value="glaucoma_suspect"[^>]*id="id_conclusion_codes_od_\d+" checked', form)


def test_a_technician_cannot_post_per_eye_conclusions(client, technician, analysed_record):
    client.force_login(technician)
    response = client.post(
        reverse("pages:screening-review", args=[analysed_record.pk]),
        {**PER_EYE_POST, "action": "save"},
    )
    assert response.status_code == 403
    assert not DoctorReview.objects.exists()


def test_the_patient_page_lists_the_signed_eyes_codes_only(client, doctor, analysed_record):
    draft = review_save_draft(
        doctor=doctor,
        record=analysed_record,
        conclusion_codes_od=["amd"],
        recommendation_od="refer",
    )
    client.force_login(doctor)
    url = reverse("pages:patient-detail", args=[analysed_record.patient.patient_id])
    assert "icd10-codes" not in client.get(url).content.decode()  # a draft is not the record

    review_sign(doctor=doctor, review=draft)
    html = client.get(url).content.decode()
    assert '<span class="small muted icd10-codes">OD: H35.3</span>' in html
