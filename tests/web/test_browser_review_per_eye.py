"""In Chromium: the per-eye ICD-10 codes follow the picked conclusions until the doctor types
their own, and the signed per-eye conclusions show on the screening page."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile

from screening.models import DoctorReview
from tests.conftest import fundus_like_jpeg
from tests.factories import ModelPackageFactory, ScreeningRecordFactory, UserFactory
from tests.web.browser import BROWSER_MARKS, shot
from tests.web.conftest import CARD, make_analysed

pytestmark = BROWSER_MARKS


def test_the_icd10_codes_follow_the_picked_conclusions(page_for, settings):
    settings.REVIEW_SIGNED_TASK = ""
    technician = UserFactory(role="technician", username="tech-e")
    doctor = UserFactory(role="doctor", username="doctor-e")
    record = ScreeningRecordFactory(operator=technician)
    make_analysed(
        record,
        technician,
        lambda name="f.jpg", seed=0: SimpleUploadedFile(name, fundus_like_jpeg(320, seed=seed)),
        ModelPackageFactory(card=CARD),
    )
    page = page_for(doctor)
    page.goto(page.url.rstrip("/") + f"/screening/{record.pk}/")
    page.locator("#eye-review").scroll_into_view_if_needed()

    page.check("input[name=conclusion_codes_od][value=dr_mild]")
    assert page.input_value("#id_diagnosis_codes_od") == "E11.3, H36.0"
    page.check("input[name=conclusion_codes_od][value=cataract]")
    assert page.input_value("#id_diagnosis_codes_od") == "E11.3, H36.0, H26.9"
    page.fill("#id_diagnosis_codes_os", "H25.1")  # the doctor's own code stays
    page.check("input[name=conclusion_codes_os][value=cataract]")
    assert page.input_value("#id_diagnosis_codes_os") == "H25.1"
    page.select_option("#id_recommendation_od", "refer")
    shot(page, "20-review-per-eye")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#review-form button[value=sign]")
    page.locator(".notice.ok .eye-conclusions").wait_for()

    review = DoctorReview.objects.get(record=record)
    assert review.is_signed
    assert review.diagnosis_codes_od == ["E11.3", "H36.0", "H26.9"]
    assert review.diagnosis_codes_os == ["H25.1"]
    assert (review.conclusion_codes, review.recommendation) == (["dr_mild", "cataract"], "refer")
    assert "H36.0 糖尿病性视网膜病变" in page.locator(".notice.ok .eye-conclusions").inner_text()
