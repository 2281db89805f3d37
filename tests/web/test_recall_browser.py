"""Issue #15 in a real browser: pinyin search as the technician types, and a recall call."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from screening.models import DoctorReview, FollowUpContact
from tests.factories import PatientFactory, ScreeningRecordFactory, UserFactory
from tests.web.browser import BROWSER_MARKS, shot

pytestmark = BROWSER_MARKS


def test_a_technician_finds_a_patient_by_initials_and_records_the_recall_call(page_for):
    technician = UserFactory(role="technician", username="tech-recall")
    doctor = UserFactory(role="doctor", username="doctor-recall")
    PatientFactory(name="王芳")
    zhang = PatientFactory(name="张晓宇", phone="13812348000")
    screened = timezone.now() - dt.timedelta(days=100)
    record = ScreeningRecordFactory(patient=zhang, operator=technician, screened_at=screened)
    DoctorReview.objects.create(
        record=record,
        doctor=doctor,
        conclusion_codes=["glaucoma_suspect"],
        recommendation="follow_up",
        follow_up_date=timezone.localdate() - dt.timedelta(days=3),
        signed_at=screened,
    )
    page = page_for(technician)

    page.goto(page.url + "patients/")
    page.locator("#id_q").press_sequentially("zxy", delay=50)
    page.wait_for_url("**/patients/?q=zxy")  # the results were swapped in, not submitted
    assert "张晓宇" in page.locator("[data-live-results]").inner_text()
    assert "王芳" not in page.locator("[data-live-results]").inner_text()
    shot(page, "recall-01-pinyin-search")

    page.click("nav.site-nav >> text=复诊召回")
    row = page.locator("tbody tr", has_text="张晓宇")
    assert "逾期 3 天" in row.inner_text()
    assert "138****8000" in row.inner_text()
    shot(page, "recall-02-list")
    row.locator("a", has_text="联系 / 改约").click()
    assert "13812348000" in page.locator("main").inner_text()
    page.check("input[name=status][value=rescheduled]")
    new_date = timezone.localdate() + dt.timedelta(days=7)
    page.fill("#id_new_date", new_date.isoformat())
    page.fill("#id_note", "患者下周二来")
    page.click("main form button[type=submit]")
    page.locator(".messages").wait_for()
    shot(page, "recall-03-rescheduled")

    contact = FollowUpContact.objects.get()
    assert (contact.status, contact.new_date, contact.note) == (
        "rescheduled",
        new_date,
        "患者下周二来",
    )
    assert "患者下周二来" in page.locator("main").inner_text()
