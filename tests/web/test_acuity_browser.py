"""In Chromium: a technician types 5-point acuity, a doctor who reads decimal sees decimal."""

from __future__ import annotations

from django.urls import reverse

from core.models import StaffProfile
from screening.models import ScreeningRecord
from tests.factories import PatientFactory, UserFactory
from tests.web.browser import BROWSER_MARKS, shot

pytestmark = BROWSER_MARKS


def test_5_point_entry_is_shown_in_decimal_to_a_doctor_who_chose_it(page_for, live_server):
    technician = UserFactory(role="technician", username="tech-va")
    doctor = UserFactory(role="doctor", username="doc-va")
    patient = PatientFactory(name="李秀英")

    page = page_for(technician)
    page.goto(live_server.url + reverse("screening:create", args=[patient.patient_id]))
    page.fill("#id_va_od", "4.9")
    page.fill("#id_va_os", "指数/30cm")
    page.fill("#id_cva_od", "5.0")
    page.select_option("#id_cva_correction_od", "glasses")
    page.click("main button[type=submit]")
    page.wait_for_url("**/photos/")
    record = ScreeningRecord.objects.get(patient=patient)

    page = page_for(doctor)
    page.click("a.my-settings")
    page.check("input[name=va_notation][value=decimal]")
    page.click("main button[type=submit]")
    page.wait_for_selector(".messages")
    assert StaffProfile.objects.get(user=doctor).va_notation == "decimal"
    page.goto(live_server.url + reverse("pages:screening-detail", args=[record.pk]))
    assert page.inner_text("[data-acuity=va_od]") == "0.8"
    assert page.inner_text("[data-acuity=va_os]") == "指数/30cm"
    assert page.inner_text("[data-acuity=cva_od]") == "1.0 框架眼镜"
    shot(page, "acuity-decimal-doctor")
