"""Batch printing in a real browser: from the worklist to one PDF of the day's final reports."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from core.models import AuditEvent
from reports.services import report_generate
from screening.services import review_save_draft, review_sign
from tests.conftest import fundus_like_jpeg
from tests.factories import PatientFactory, ScreeningRecordFactory, UserFactory
from tests.web.browser import BROWSER_MARKS, shot
from tests.web.conftest import make_analysed

pytestmark = BROWSER_MARKS


def test_a_technician_prints_the_days_reports_from_the_worklist(
    page_for, live_server, package, settings
):
    settings.LLM_BASE_URL = ""
    technician = UserFactory(role="technician", username="tech-p")
    doctor = UserFactory(role="doctor", username="doctor-p", first_name="王医生")
    record = ScreeningRecordFactory(patient=PatientFactory(name="赵打印"), operator=technician)
    make_analysed(
        record,
        technician,
        lambda name="f.jpg", seed=0: SimpleUploadedFile(name, fundus_like_jpeg(320, seed=seed)),
        package,
    )
    review = review_save_draft(
        doctor=doctor, record=record, conclusion_codes=["normal"], recommendation="routine"
    )
    review_sign(doctor=doctor, review=review)
    report = report_generate(record=record, actor=doctor)

    page = page_for(technician)
    page.click("#batch-print-link")
    page.wait_for_url("**/reports/print/?day=*")
    assert page.locator("h1").inner_text().endswith("的正式报告")
    assert page.locator("#id_day").input_value() == report.generated_at.astimezone(
        timezone.get_current_timezone()
    ).strftime("%Y-%m-%d")
    assert page.locator("#batch").get_by_text(report.number).is_visible()
    shot(page, "batch-print")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="合并为一个 PDF 打印").click()

    assert answer.value.status == 200
    assert answer.value.headers["content-type"] == "application/pdf"
    assert answer.value.headers["content-disposition"].startswith('inline; filename="reports-')
    event = AuditEvent.objects.get(action="download")
    assert (event.actor_username, event.object_id) == ("tech-p", str(report.pk))
