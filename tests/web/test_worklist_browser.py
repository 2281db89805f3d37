"""In Chromium: a doctor ticks screenings on the worklist, assigns them, then opens "my worklist"."""

from __future__ import annotations

from screening.models import RecordStatus, ScreeningRecord
from tests.factories import PatientFactory, ScreeningRecordFactory, UserFactory
from tests.web.browser import BROWSER_MARKS, shot

pytestmark = BROWSER_MARKS


def test_bulk_assignment_and_my_worklist(page_for, live_server):
    technician = UserFactory(role="technician", username="tech-b", first_name="王技师")
    doctor = UserFactory(role="doctor", username="doctor-b", first_name="李医生")
    records = []
    for name in ("欧阳娜娜", "张伟", "陈静"):
        record = ScreeningRecordFactory(patient=PatientFactory(name=name), operator=technician)
        ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
        records.append(record)
    page = page_for(doctor)

    page.check(f"input[name=records][value='{records[0].pk}']")
    page.check(f"input[name=records][value='{records[2].pk}']")
    page.select_option("#assign-doctor", label="李医生")
    page.click("#bulk-assign button[type=submit]")

    page.wait_for_selector(".messages li")
    assert page.inner_text(".messages li") == "2 个筛查已分配给李医生。"
    page.click("text=我的工作列表")
    page.wait_for_selector("h1:has-text('我的工作列表')")
    shot(page, "30-my-worklist")
    rows = page.locator("main table tbody tr")
    assert rows.count() == 2
    assert page.locator("#status-counts #count-analysed strong").inner_text() == "2"
    assert list(
        ScreeningRecord.objects.order_by("pk").values_list("assigned_doctor", flat=True)
    ) == [doctor.pk, None, doctor.pk]
