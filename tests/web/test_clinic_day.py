"""Issue #15's "done means" in Chromium: one patient's clinic day, from the technician's acuity
in 5-point notation to the batch-printed PDF and the patient's mini-program.

Visit 1 (six months ago) is made through the services; visit 2 goes through the UI. The
screenshots go to var/test-artifacts/screenshots/ and, with OPHAI_DOCS_SCREENSHOTS=1, to
docs/screenshots/ for docs/clinic-day.md (synthetic photos and fictional names only).
"""

from __future__ import annotations

import datetime as dt
import os

from django.urls import reverse
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from ai_engine.models import RecordTriage
from core.models import StaffProfile
from patients.services import patient_account_create
from reports.models import Report
from reports.services import report_generate
from screening.models import DoctorReview, RecordStatus, ScreeningRecord
from screening.services import review_save_draft, review_sign
from tests.ai_results import DR_POSITIVE, NORMAL, REFERABLE_DR_REASON, add_analysis
from tests.conftest import REPO_ROOT, fundus_like_jpeg
from tests.core.test_signatures import signature_file
from tests.factories import PatientFactory, ScreeningRecordFactory, UserFactory
from tests.reports.conftest import pdf_text
from tests.reports.test_printing import image_sizes
from tests.web.browser import BROWSER_MARKS, shot
from tests.web.conftest import make_analysed

pytestmark = BROWSER_MARKS

DOCS_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
SIGNATURE_SIZE = (300, 100)
LOGO_SIZE = (160, 60)
PHOTOS_SHOWN = """(selector) => [...document.querySelectorAll(selector)]
  .every(img => img.complete && img.naturalWidth > 0)"""
LETTERHEAD = {
    "CLINIC_NAME": "明眸社区眼科筛查中心",
    "CLINIC_ADDRESS": "江苏省苏州市示例街 12 号",
    "CLINIC_PHONE": "0512-66668888",
    "CLINIC_WEBSITE": "",
}


def docs_shot(page, name: str) -> None:
    """A screenshot for the test's artefacts, and for docs/ when OPHAI_DOCS_SCREENSHOTS=1."""
    shot(page, name)
    if os.environ.get("OPHAI_DOCS_SCREENSHOTS") != "1":
        return
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = DOCS_SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    # A palette PNG keeps the UI legible at a third of the size; the repo keeps them small.
    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=128).save(path, optimize=True)


def patient_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def my_conclusions(client) -> dict[int, dict | None]:
    rows = client.get(reverse("api-v1:me-records")).json()["results"]
    return {row["id"]: row["conclusion"] for row in rows}


def analyse_uploaded(record: ScreeningRecord, package) -> None:
    """The AI results the engine would store for the photos uploaded in the browser."""
    for image in record.images.order_by("eye"):
        add_analysis(image, package, findings=DR_POSITIVE if image.eye == "OD" else NORMAL)
    RecordTriage.objects.create(
        record=record, level="high", priority=2, reasons=[REFERABLE_DR_REASON]
    )
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)


def test_one_patients_clinic_day(page_for, live_server, package, photo_file, settings, tmp_path):
    # Given: the clinic's letterhead, a technician, a doctor, an administrator, and a patient
    # with a mini-program account whose first visit, six months ago, was signed.
    Image.new("RGB", LOGO_SIZE, (31, 93, 140)).save(tmp_path / "logo.png")
    for name, value in LETTERHEAD.items():
        setattr(settings, name, value)
    settings.CLINIC_LOGO = str(tmp_path / "logo.png")
    settings.LLM_BASE_URL = ""
    settings.REPORT_FINAL_TASK = ""
    technician = UserFactory(role="technician", username="tech-day", first_name="周技师")
    doctor = UserFactory(role="doctor", username="doctor-day", first_name="林医生")
    admin = UserFactory(role="administrator", username="admin-day")
    patient = PatientFactory(name="陈美华", phone="13912345678")
    account = patient_account_create(patient=patient, wechat_openid="o-clinic-day-openid-01")
    api = patient_client(account.user)
    visit_1 = ScreeningRecordFactory(
        patient=patient,
        operator=technician,
        va_od="0.60",
        logmar_od="0.22",
        va_os="0.80",
        logmar_os="0.10",
        screened_at=timezone.now() - dt.timedelta(days=182),
    )
    make_analysed(visit_1, technician, photo_file, package)
    review_sign(
        doctor=doctor,
        review=review_save_draft(
            doctor=doctor,
            record=visit_1,
            conclusion_codes_od=["dr_mild"],
            conclusion_codes_os=["normal"],
            recommendation="follow_up",
            follow_up_months=6,
        ),
    )

    # When the technician opens visit 2 and types the acuity in 5-point notation…
    page = page_for(technician)
    page.goto(f"{live_server.url}/patients/{patient.patient_id}/")
    page.click("a[href^='/screening/new/']")
    page.fill("#id_va_od", "4.9")
    page.fill("#id_va_os", "5.0")
    page.fill("#id_iop_od", "16")
    page.fill("#id_iop_os", "15")
    docs_shot(page, "day-01-acuity-5-point")
    page.click("main button[type=submit]")
    page.wait_for_url("**/photos/")
    visit_2 = ScreeningRecord.objects.exclude(pk=visit_1.pk).get(patient=patient)
    # …and uploads a (synthetic) photo of each eye.
    for eye, seed in (("OD", 5), ("OS", 6)):
        path = tmp_path / f"{eye.lower()}.jpg"
        path.write_bytes(fundus_like_jpeg(480, seed=seed))
        page.set_input_files(f"#file-{eye}", str(path))
        page.locator(f"[data-eye={eye}] .upload-item.uploaded").wait_for()
    page.goto("about:blank")  # stop the AI status polling before the test's own writes
    analyse_uploaded(visit_2, package)

    # Then a doctor who reads decimal finds it on the filtered worklist and sees 0.8 / 1.0.
    page = page_for(doctor)
    page.click("a.my-settings")
    page.check("input[name=va_notation][value=decimal]")
    page.click("main button[type=submit]")
    page.wait_for_selector(".messages")
    assert StaffProfile.objects.get(user=doctor).va_notation == "decimal"
    page.goto(f"{live_server.url}/?status=analysed&triage=high")
    assert page.locator("#worklist-filter #id_status").input_value() == "analysed"
    assert page.locator(f"#row-{visit_2.pk}").is_visible()
    assert page.locator(f"#row-{visit_1.pk}").count() == 0
    docs_shot(page, "day-02-worklist-filters")
    page.click(f"#row-{visit_2.pk} a[href='/screening/{visit_2.pk}/']")
    page.wait_for_url(f"**/screening/{visit_2.pk}/")
    assert page.inner_text("[data-acuity=va_od]") == "0.8"
    assert page.inner_text("[data-acuity=va_os]") == "1.0"

    # The doctor picks the per-eye conclusions (the ICD-10 codes follow) and saves a draft.
    page.locator("#eye-review").scroll_into_view_if_needed()
    page.check("input[name=conclusion_codes_od][value=dr_moderate]")
    assert page.input_value("#id_diagnosis_codes_od") == "E11.3, H36.0"
    page.check("input[name=conclusion_codes_os][value=normal]")
    page.select_option("#id_recommendation_od", "refer")
    page.fill("#id_follow_up_months", "3")
    page.locator("#eye-review").scroll_into_view_if_needed()
    docs_shot(page, "day-03-per-eye-review")
    with page.expect_navigation():
        page.click("#review-form button[value=save]")
    # A draft is not the patient's to read.
    assert my_conclusions(api)[visit_2.pk] is None

    page.locator("#eye-review").scroll_into_view_if_needed()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#review-form button[value=sign]")
    page.locator(".notice.ok .eye-conclusions").wait_for()
    review = DoctorReview.objects.get(record=visit_2)
    assert review.is_signed
    assert (review.diagnosis_codes_od, review.diagnosis_codes_os) == (["E11.3", "H36.0"], ["Z01.0"])
    follow_up = review.follow_up_date
    assert follow_up is not None and follow_up > timezone.localdate()

    # Once signed, the mini-program shows the patient the per-eye conclusions.
    od, os_ = my_conclusions(api)[visit_2.pk]["eyes"]
    assert (od["eye"], od["conclusion_codes"], [d["code"] for d in od["diagnoses"]]) == (
        "OD",
        ["dr_moderate"],
        ["E11.3", "H36.0"],
    )
    assert (os_["eye"], os_["conclusion_codes"], [d["code"] for d in os_["diagnoses"]]) == (
        "OS",
        ["normal"],
        ["Z01.0"],
    )

    # The comparison of the two visits: both visits per eye, the acuity trend in decimal.
    page.goto(f"{live_server.url}/patients/{patient.patient_id}/")
    page.click("text=比较就诊")
    page.wait_for_url(f"**/patients/{patient.patient_id}/compare/")
    assert page.locator("[data-acuity=va_od]").all_inner_texts() == ["0.6", "0.8"]
    assert page.locator("[data-acuity=va_os]").all_inner_texts() == ["0.8", "1.0"]
    docs_shot(page, "day-04-compare-visits")
    assert page.locator("#compare-OD .compare-visit").count() == 2
    page.locator("#compare-OD").scroll_into_view_if_needed()
    page.wait_for_function(PHOTOS_SHOWN, arg="#compare-OD img.viewer-photo")
    docs_shot(page, "day-04b-compare-photos")

    # The recall list: not due today; due on the follow-up date (the due_by filter).
    page.click("nav.site-nav >> text=复诊召回")
    assert page.locator("tbody tr", has_text="陈美华").count() == 0
    page.fill("#id_due_by", follow_up.isoformat())
    page.click("main form button[type=submit] >> nth=0")
    row = page.locator("tbody tr", has_text="陈美华")
    row.wait_for()
    assert "139****5678" in row.inner_text()
    docs_shot(page, "day-05-recall-list")

    # The statistics page with its exports.
    page.goto(f"{live_server.url}/statistics/")
    tables = page.eval_on_selector_all(
        "a[href*='/statistics/export/'][href$='format=xlsx']",
        "links => links.map(a => new URL(a.href).pathname.split('/')[3])",
    )
    assert tables == [
        "per_day",
        "findings",
        "agreement",
        "turnaround",
        "doctors",
        "technicians",
        "referrals",
    ]
    docs_shot(page, "day-06-statistics")

    # The administrator uploads the doctor's signature on the user's admin page.
    signature = tmp_path / "signature.png"
    signature.write_bytes(signature_file(size=SIGNATURE_SIZE).read())
    page = page_for(admin)
    page.goto(f"{live_server.url}/admin/auth/user/{doctor.pk}/change/")
    page.set_input_files("#id_staff_profile-0-upload", str(signature))
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/auth/user/")
    assert StaffProfile.objects.get(user=doctor).signature.name.startswith("signatures/")

    # The final report, then the day's batch print: letterhead and signature in the PDF.
    report = report_generate(record=visit_2, actor=doctor)
    assert report.status == "final"
    page = page_for(technician)
    page.click("#batch-print-link")
    page.wait_for_url("**/reports/print/?day=*")
    assert page.locator("#batch").get_by_text(report.number).is_visible()
    docs_shot(page, "day-07-batch-print")
    printed: list[bytes] = []

    def keep_the_pdf(route) -> None:
        # Chromium shows an inline PDF in its viewer; the route keeps the bytes it was sent.
        response = route.fetch()
        printed.append(response.body())
        route.fulfill(response=response)

    page.route("**/reports/print/", keep_the_pdf)
    # WeasyPrint lays the PDF out inside the request: generous on a busy machine.
    page.set_default_timeout(60_000)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="合并为一个 PDF 打印").click()
    assert answer.value.status == 200
    assert answer.value.headers["content-type"] == "application/pdf"
    [pdf] = printed
    text = pdf_text(pdf, tmp_path, "batch.pdf")
    for line in ("明眸社区眼科筛查中心", "江苏省苏州市示例街 12 号", "0512-66668888", "陈美华"):
        assert line in text
    sizes = image_sizes(pdf, tmp_path)
    assert SIGNATURE_SIZE in sizes and LOGO_SIZE in sizes
    assert list(Report.objects.filter(status="final").values_list("record", flat=True)) == [
        visit_2.pk
    ]
