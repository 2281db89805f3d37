"""The staff web UI in a real headless Chromium (Debian's package, driven by Playwright).

Few and fast: a technician's visit with two real photos and a bad file, a doctor's review,
and a technician refused the signature. Screenshots of the main pages (1366×768) go to
var/test-artifacts/screenshots/ for a human to look at.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from patients.models import Patient
from screening.models import DoctorReview, FundusImage, RecordStatus
from screening.services import image_upload
from tests.conftest import SHARED_DATA, fundus_like_jpeg
from tests.factories import PatientFactory, ScreeningRecordFactory, UserFactory
from tests.web.browser import BROWSER_MARKS, shot
from tests.web.conftest import make_analysed

AI_STATES = {"waiting", "queued", "running", "done", "ungradable", "failed"}

pytestmark = BROWSER_MARKS


def test_a_technician_registers_a_patient_and_uploads_both_eyes(page_for, live_server, tmp_path):
    right = SHARED_DATA / "reference" / "odir_11_right.jpg"
    left = SHARED_DATA / "reference" / "odir_11_left.jpg"
    if not (right.exists() and left.exists()):
        pytest.skip("the reference photos in ../shared/data/reference are not available")
    technician = UserFactory(role="technician", username="tech-b")
    page = page_for(technician)
    shot(page, "01-worklist-technician")

    page.click("a[href='/patients/new/']")
    page.fill("#id_name", "王小明")
    page.check("input[name=sex][value=male]")
    page.fill("#id_date_of_birth", "1958-04-02")
    page.fill("#id_phone", "12345")  # wrong first: the service's message shows on the field
    page.click("main button[type=submit]")
    assert page.locator("#id_phone_error").is_visible()
    shot(page, "02-patient-form-error")
    page.fill("#id_phone", "13812348000")
    page.click("main button[type=submit]")
    page.wait_for_url("**/patients/P*/")
    assert "138****8000" in page.content()

    page.click("a[href^='/screening/new/']")
    page.fill("#id_va_od", "0.6")
    page.fill("#id_va_os", "0.8")
    page.fill("#id_iop_od", "24")
    page.fill("#id_iop_os", "17")
    page.click("main button[type=submit]")
    page.wait_for_url("**/photos/")

    page.set_input_files("#file-OD", str(right))
    od_item = page.locator("[data-eye=OD] .upload-item.uploaded")
    od_item.wait_for()
    page.set_input_files("#file-OS", str(left))
    os_item = page.locator("[data-eye=OS] .upload-item.uploaded")
    os_item.wait_for()
    assert "odir_11_right.jpg" in od_item.inner_text()
    status = page.locator("#ai-status")
    page.wait_for_function(
        "states => states.includes(document.getElementById('ai-status').dataset.state)",
        arg=sorted(AI_STATES),
    )
    assert status.get_attribute("data-state") in AI_STATES
    assert status.locator(".ai-status-text").inner_text().strip()
    # The record's status pill follows the server after the upload, without a reload.
    page.wait_for_function(
        "() => document.querySelector('[data-record-status]').dataset.recordStatus !== 'draft'"
    )
    assert page.locator("[data-record-status]").inner_text().strip() != "待上传照片"

    # A .jpg that is really text: refused by the server, the message next to that photo.
    fake = tmp_path / "fake.jpg"
    fake.write_text("this is not a fundus photo\n" * 40, encoding="utf-8")
    page.set_input_files("#file-OD", str(fake))
    error = page.locator("[data-eye=OD] .upload-item.failed .upload-error")
    error.wait_for()
    assert "fake.jpg" in page.locator("[data-eye=OD] .upload-item.failed").inner_text()
    assert any("\u4e00" <= char <= "\u9fff" for char in error.inner_text())
    shot(page, "03-upload-photos")
    page.goto("about:blank")  # stop polling before the test's own queries
    assert FundusImage.objects.count() == 2
    assert sorted(FundusImage.objects.values_list("eye", flat=True)) == ["OD", "OS"]


def test_a_doctor_reviews_and_signs_from_the_worklist(page_for, live_server, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from ai_engine.models import ModelPackage
    from tests.conftest import fundus_like_jpeg
    from tests.web.conftest import CARD

    settings.REVIEW_SIGNED_TASK = ""
    technician = UserFactory(role="technician", username="tech-c")
    doctor = UserFactory(role="doctor", username="doctor-c", first_name="李医生")
    package = ModelPackage.objects.create(
        name="odir-demo",
        version="1.2.0",
        task="multilabel",
        architecture="mobilenetv3_small_100",
        path="/nonexistent",
        weights_sha256="ab" * 32,
        card=CARD,
        demonstration=True,
        is_active=False,
    )
    record = ScreeningRecordFactory(
        patient=PatientFactory(name="张建国"), operator=technician, iop_od="24.0"
    )
    make_analysed(
        record,
        technician,
        lambda name="f.jpg", seed=0: SimpleUploadedFile(name, fundus_like_jpeg(320, seed=seed)),
        package,
    )
    page = page_for(doctor)
    shot(page, "04-worklist-doctor")
    page.click(f"a[href='/screening/{record.pk}/']")
    page.wait_for_url(f"**/screening/{record.pk}/")
    assert page.locator(".demo-banner").first.is_visible()
    page.check(f"#heatmap-toggle-{record.images.get(eye='OD').pk}")
    assert page.locator("img.heatmap:not([hidden])").count() == 1
    shot(page, "05-screening-detail")
    page.locator("#review").scroll_into_view_if_needed()
    # Signing an empty review: the page comes back at the first error, the cursor in it, and
    # a summary at the top lists every error.
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click("button[name=action][value=sign]")
    page.wait_for_function("document.activeElement && document.activeElement.name")
    focused = page.evaluate(
        """() => {
          const el = document.activeElement, box = el.getBoundingClientRect();
          return [el.name, box.top >= 0 && box.bottom <= window.innerHeight];
        }"""
    )
    assert focused == ["conclusion_codes", True]
    assert page.locator("#error-summary li").count() == 2
    shot(page, "06a-review-errors")
    page.check("input[name=conclusion_codes][value=dr_moderate]")
    page.check("input[name=recommendation][value=refer]")
    page.fill("#id_follow_up_months", "3")
    page.fill("#id_conclusion_text", "右眼黄斑区可见硬性渗出")
    shot(page, "06-review-form")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button[name=action][value=sign]")
    page.locator("#review .notice.ok").wait_for()
    review = DoctorReview.objects.get(record=record)
    assert review.is_signed
    assert review.doctor == doctor
    record.refresh_from_db()
    assert record.status == RecordStatus.REVIEWED
    # The amendment form stays folded behind its button until the doctor asks for it.
    assert not page.locator("#review-form").is_visible()
    page.click("details.amend > summary")
    assert page.locator("#review-form").is_visible()

    page.goto(f"{live_server.url}/patients/{record.patient.patient_id}/")
    shot(page, "07-patient-detail")
    page.goto(f"{live_server.url}/statistics/")
    shot(page, "08-statistics")
    page.goto(f"{live_server.url}/ai/models/{package.pk}/")
    shot(page, "09-model-card")
    page.set_viewport_size({"width": 820, "height": 1180})  # a tablet, portrait
    page.goto(f"{live_server.url}/screening/{record.pk}/")
    shot(page, "11-screening-detail-tablet")


def test_a_technician_is_not_offered_the_signature_and_cannot_post_it(page_for, live_server):
    technician = UserFactory(role="technician", username="tech-d")
    record = ScreeningRecordFactory(operator=technician)
    type(record).objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    page = page_for(technician, language="en")
    page.goto(f"{live_server.url}/screening/{record.pk}/")
    assert page.locator("button[value=sign]").count() == 0
    assert page.locator("#review-form").count() == 0
    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    response = page.request.post(
        f"{live_server.url}/screening/{record.pk}/review",
        form={
            "csrfmiddlewaretoken": token,
            "action": "sign",
            "conclusion_codes": "normal",
            "recommendation": "routine",
        },
        headers={"Referer": f"{live_server.url}/screening/{record.pk}/"},
    )
    assert response.status == 403
    assert not DoctorReview.objects.exists()
    shot(page, "10-screening-technician-en")


def test_an_id_number_fills_the_form_and_last_visits_photo_needs_a_confirmation(
    page_for, live_server, tmp_path
):
    """patient_form.js fills birth date and sex from the ID; upload.js asks before storing a
    photo that the patient's earlier screening already holds, and sends it when confirmed."""
    technician = UserFactory(role="technician", username="tech-d")
    page = page_for(technician)
    page.goto(f"{live_server.url}/patients/new/")
    page.fill("#id_name", "李明")
    page.fill("#id_national_id", "110101199003074514")  # born 1990-03-07, a man's ID
    assert page.input_value("#id_date_of_birth") == "1990-03-07"
    assert page.is_checked("input[name=sex][value=male]")
    page.click("main button[type=submit]")
    page.wait_for_url("**/patients/P*/")

    patient = Patient.objects.get(name="李明")
    earlier = ScreeningRecordFactory(patient=patient, operator=technician)
    photo = tmp_path / "last-visit.jpg"
    photo.write_bytes(fundus_like_jpeg(seed=21))
    image_upload(
        actor=technician,
        record=earlier,
        eye="OD",
        uploaded_file=SimpleUploadedFile("last-visit.jpg", photo.read_bytes()),
    )
    today = ScreeningRecordFactory(patient=patient, operator=technician)
    page.goto(f"{live_server.url}/screening/{today.pk}/photos/")
    page.set_input_files("#file-OS", str(photo))
    warning = page.locator("[data-eye=OS] .upload-item.failed .upload-error")
    warning.wait_for()
    assert "已存有这张照片" in warning.inner_text()
    assert FundusImage.objects.filter(record=today).count() == 0
    page.click("[data-eye=OS] .upload-item button")
    page.locator("[data-eye=OS] .upload-item.uploaded").wait_for()
    page.goto("about:blank")
    assert list(FundusImage.objects.filter(record=today).values_list("eye", flat=True)) == ["OS"]


WRAPPED_HEADERS = """() => [...document.querySelectorAll('th')]
  .filter(th => th.offsetParent !== null && th.textContent.trim())
  .filter(th => !th.querySelector('.visually-hidden'))
  .filter(th => {
    const range = document.createRange();
    range.selectNodeContents(th);
    const tops = new Set([...range.getClientRects()].map(rect => Math.round(rect.top)));
    return tops.size > 1;
  })
  .map(th => th.textContent.trim())"""


def test_on_a_phone_the_worklist_fits_and_every_button_is_on_screen(page_for, live_server):
    technician = UserFactory(role="technician", username="tech-p", first_name="王技师")
    doctor = UserFactory(role="doctor", username="doctor-p", first_name="李医生")
    for status in (RecordStatus.ANALYSED, RecordStatus.DRAFT, RecordStatus.REPORTED):
        record = ScreeningRecordFactory(
            patient=PatientFactory(name="欧阳娜娜"), operator=technician
        )
        type(record).objects.filter(pk=record.pk).update(status=status)
    page = page_for(doctor)
    failed: list[str] = []
    page.on("response", lambda response: response.status >= 400 and failed.append(response.url))
    page.set_viewport_size({"width": 390, "height": 844})

    page.goto(f"{live_server.url}/")

    shot(page, "12-worklist-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    buttons = page.locator("main table a.button")
    assert buttons.count() == 3
    for button in buttons.all():
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, button.inner_text()
    assert page.locator("main table").get_by_text("王技师").count() == 3  # not the filter's list
    assert page.evaluate(WRAPPED_HEADERS) == []
    assert failed == []  # the favicon included


def test_table_headers_stay_on_one_line(page_for, live_server):
    technician = UserFactory(role="technician", username="tech-h")
    doctor = UserFactory(role="doctor", username="doctor-h")
    record = ScreeningRecordFactory(operator=technician)
    type(record).objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    page = page_for(doctor)
    for width in (1366, 820):
        page.set_viewport_size({"width": width, "height": 900})
        for path in ("/", f"/screening/{record.pk}/", "/patients/", "/statistics/"):
            page.goto(f"{live_server.url}{path}")
            assert page.evaluate(WRAPPED_HEADERS) == [], (width, path)


def test_the_upload_list_gives_small_photos_in_kb(page_for, live_server, tmp_path):
    from tests.conftest import fundus_like_jpeg

    technician = UserFactory(role="technician", username="tech-k")
    record = ScreeningRecordFactory(operator=technician)
    small = tmp_path / "small.jpg"
    small.write_bytes(fundus_like_jpeg(320))
    page = page_for(technician)
    page.goto(f"{live_server.url}/screening/{record.pk}/photos/")

    page.set_input_files("#file-OD", str(small))

    item = page.locator("[data-eye=OD] .upload-item").first
    item.wait_for()
    kilobytes = -(-small.stat().st_size * 10 // 1024) / 10  # one decimal, rounded up
    assert f"small.jpg ({kilobytes:g} KB)" in item.inner_text()
    assert "0.0 MB" not in item.inner_text()
    # The upload this started must finish before the test ends: a request still writing while
    # the live-server teardown flushes the tables deadlocks on PostgreSQL.
    page.locator("[data-eye=OD] .upload-item.uploaded").wait_for()
    page.goto("about:blank")


def test_the_admin_and_the_api_docs_work_under_the_content_security_policy(page_for, live_server):
    administrator = UserFactory(role="administrator", username="admin-csp")
    page = page_for(administrator, language="en")

    page.goto(f"{live_server.url}/admin/patients/patient/add/")
    page.locator("#id_date_of_birth").wait_for()
    page.goto(f"{live_server.url}/api/docs/")
    # Swagger UI is built by its scripts: the operations appear only if they ran
    page.locator(".opblock-summary").first.wait_for()
    schema = page.request.get(f"{live_server.url}/api/schema/?format=json").json()
    operations = sum(len(item) for item in schema["paths"].values())
    assert page.locator(".opblock-summary").count() == operations
