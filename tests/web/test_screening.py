"""Screening pages: new visit, JSON photo upload, the screening page, the review and reports."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core.models import AuditEvent
from screening.models import DoctorReview, FundusImage, RecordStatus, ScreeningRecord
from screening.services import review_save_draft
from tests.factories import ScreeningRecordFactory, UserFactory
from tests.web.conftest import add_analysis

REVIEW = {
    "conclusion_codes": ["dr_moderate"],
    "conclusion_text": "右眼黄斑区可见硬性渗出",
    "recommendation": "refer",
    "recommendation_text": "",
    "follow_up_months": "3",
    "follow_up_date": "",
}


# --- a new visit ----------------------------------------------------------------------------
def test_a_technician_records_vision_and_pressure_then_goes_to_the_photos(
    client, technician, patient
):
    client.force_login(technician)
    response = client.post(
        reverse("screening:create", args=[patient.patient_id]),
        {"va_od": "0.8", "va_os": "0.6", "iop_od": "23.5", "iop_os": "", "notes": "戴眼镜"},
    )
    record = ScreeningRecord.objects.get(patient=patient)
    assert response.status_code == 302
    assert response["Location"] == reverse("pages:screening-photos", args=[record.pk])
    assert (record.va_od, record.logmar_od, record.iop_od, record.iop_os) == (
        Decimal("0.80"),
        Decimal("0.10"),
        Decimal("23.5"),
        None,
    )


def test_out_of_range_measurements_are_shown_on_their_fields(client, technician, patient):
    client.force_login(technician)
    response = client.post(
        reverse("screening:create", args=[patient.patient_id]),
        {"va_od": "5.5", "va_os": "abc", "iop_od": "95", "iop_os": "", "notes": ""},
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["va_os"] == [
        "Enter visual acuity in 5-point (e.g. 4.9) or decimal (e.g. 0.8) notation, or CF, HM, LP, NLP (指数, 手动, 光感, 无光感)."
    ]
    assert errors["va_od"] == [
        "Visual acuity must be 3.0–5.3 in 5-point or 0.01–2.0 in decimal notation."
    ]
    assert not ScreeningRecord.objects.exists()
    # The form itself accepts va_od=5.5 and iop 95; the service refuses them.
    response = client.post(
        reverse("screening:create", args=[patient.patient_id]),
        {"va_od": "5.5", "va_os": "", "iop_od": "95", "iop_os": "", "notes": ""},
    )
    errors = response.context["form"].errors
    assert errors["va_od"] == [
        "Visual acuity must be 3.0–5.3 in 5-point or 0.01–2.0 in decimal notation."
    ]
    assert errors["iop_od"] == ["Intraocular pressure must be between 1 and 80 mmHg."]
    assert not ScreeningRecord.objects.exists()


def test_doctors_cannot_start_a_screening(client, doctor, patient):
    client.force_login(doctor)
    url = reverse("screening:create", args=[patient.patient_id])
    assert client.post(url, {"va_od": "0.8"}).status_code == 403
    assert not ScreeningRecord.objects.exists()


def test_measurements_can_be_corrected_until_signed(client, technician, record):
    client.force_login(technician)
    url = reverse("screening:edit", args=[record.pk])
    response = client.post(url, {"va_od": "0.5", "va_os": "1.0", "iop_od": "15", "iop_os": "16"})
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.va_od == Decimal("0.50")
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.REVIEWED)
    response = client.post(url, {"va_od": "0.9", "va_os": "1.0", "iop_od": "15", "iop_os": "16"})
    assert response.status_code == 200
    assert "signed review" in response.context["form"].non_field_errors()[0]
    record.refresh_from_db()
    assert record.va_od == Decimal("0.50")


# --- photos ---------------------------------------------------------------------------------
def test_the_upload_page_renders_the_size_limit_for_the_browser(
    client, technician, record, settings
):
    settings.FUNDUS_UPLOAD_MAX_BYTES = 12 * 1024 * 1024
    client.force_login(technician)
    html = client.get(reverse("pages:screening-photos", args=[record.pk])).content.decode()
    assert f'data-max-bytes="{12 * 1024 * 1024}"' in html
    assert 'for="file-OD"' in html and 'id="file-OD"' in html
    assert 'data-state="no_photos"' in html


def test_an_upload_returns_the_photo_as_json(client, technician, record, photo_file):
    client.force_login(technician)
    response = client.post(
        reverse("screening:image-upload", args=[record.pk]),
        {"eye": "OD", "file": photo_file("right.jpg", seed=3)},
    )
    assert response.status_code == 201
    image = FundusImage.objects.get(record=record)
    body = response.json()
    assert body["id"] == image.pk
    assert body["eye"] == "OD"
    assert body["thumb_url"] == f"/screening/images/{image.pk}/file?size=thumb"
    assert body["message"] == "Uploaded: right.jpg (320 × 320)"
    record.refresh_from_db()
    assert record.status == RecordStatus.IMAGES_UPLOADED


def test_a_text_file_named_jpg_is_refused_with_the_validators_message(client, technician, record):
    client.force_login(technician)
    fake = SimpleUploadedFile(
        "fundus.jpg", b"this is not a photo\n" * 50, content_type="image/jpeg"
    )
    response = client.post(
        reverse("screening:image-upload", args=[record.pk]), {"eye": "OD", "file": fake}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "This file is not an image. Upload a JPEG, PNG or TIFF fundus photo."
    }
    assert not FundusImage.objects.exists()


def test_upload_errors_come_in_the_users_language(client, technician, record):
    client.force_login(technician)
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    fake = SimpleUploadedFile("fundus.jpg", b"plain text, not a photo\n" * 50)
    response = client.post(
        reverse("screening:image-upload", args=[record.pk]), {"eye": "OD", "file": fake}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert any("\u4e00" <= char <= "\u9fff" for char in error), error


def test_an_upload_without_a_file_or_with_a_bad_eye_is_refused(
    client, technician, record, photo_file
):
    client.force_login(technician)
    url = reverse("screening:image-upload", args=[record.pk])
    assert client.post(url, {"eye": "OD"}).json() == {"error": "Choose a photo to upload."}
    response = client.post(url, {"eye": "XX", "file": photo_file()})
    assert response.status_code == 400
    assert response.json()["error"] == "Choose the right eye (OD) or the left eye (OS)."
    assert not FundusImage.objects.exists()


def test_doctors_cannot_upload_photos(client, doctor, record, photo_file):
    client.force_login(doctor)
    response = client.post(
        reverse("screening:image-upload", args=[record.pk]), {"eye": "OD", "file": photo_file()}
    )
    assert response.status_code == 403
    assert response.json()["error"] == "You do not have permission to upload photos."
    assert not FundusImage.objects.exists()
    assert client.get(reverse("pages:screening-photos", args=[record.pk])).status_code == 403


def test_a_photo_uploaded_by_mistake_can_be_removed(client, technician, record, photo_file):
    from screening.services import image_upload

    image = image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file())
    client.force_login(technician)
    response = client.post(reverse("screening:image-delete", args=[image.pk]))
    assert response.status_code == 302
    assert not FundusImage.objects.exists()
    record.refresh_from_db()
    assert record.status == RecordStatus.DRAFT


def test_doctors_cannot_remove_photos(client, doctor, record, technician, photo_file):
    from screening.services import image_upload

    image = image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file())
    client.force_login(doctor)
    assert client.post(reverse("screening:image-delete", args=[image.pk])).status_code == 403
    assert FundusImage.objects.filter(pk=image.pk).exists()


# --- the screening page ---------------------------------------------------------------------
def test_the_screening_page_shows_ai_results_with_their_provenance(client, doctor, analysed_record):
    client.force_login(doctor)
    response = client.get(reverse("pages:screening-detail", args=[analysed_record.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    package = analysed_record.images.first().analyses.first().package
    assert reverse("ai_engine:model-card", args=[package.pk]) in html
    assert "odir-demo 1.2.0" in html
    assert html.count("Demonstration model — not for diagnosis") == 2
    assert "AI findings are suggestions; the doctor's review is the authority." in html
    assert "Diabetic retinopathy" in html
    assert ">0.83<" in html and ">0.50<" in html
    assert "macula, vascular arcade" in html
    assert '<td class="num">0.00</td>' in html  # logMAR of VA 1.0 is a value, not "missing"
    # A positive "Normal" label is not a finding: it reads "no abnormality", never "positive".
    assert '<span class="pill pill-done">no abnormality</span>' in html
    assert html.count('<span class="pill pill-positive">positive</span>') == 1
    assert "OD: referable finding: Diabetic retinopathy (p=0.83)" in html
    assert 'data-heatmap-controls="frame-' in html
    assert html.count('type="submit" name="action" value="sign"') == 1
    assert AuditEvent.objects.filter(action="view", object_type="patients.patient").count() == 1


def test_the_screening_page_speaks_chinese(client, doctor, analysed_record):
    client.force_login(doctor)
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    html = client.get(reverse("pages:screening-detail", args=[analysed_record.pk])).content.decode()
    assert "糖尿病视网膜病变" in html
    assert "右眼" in html


def test_an_ungradable_photo_asks_for_a_retake_with_translated_reasons(
    client, technician, record, photo_file, package
):
    from screening.services import image_upload

    image = image_upload(actor=technician, record=record, eye="OS", uploaded_file=photo_file())
    add_analysis(image, package, status="ungradable", reasons=["underexposed", "out_of_focus"])
    client.force_login(technician)
    html = client.get(reverse("pages:screening-detail", args=[record.pk])).content.decode()
    assert "Please retake this photo." in html
    assert "Too dark (underexposed)" in html
    assert "Out of focus (blurred)" in html
    assert 'data-state="ungradable"' in html


def test_a_monochrome_photo_is_gradable_with_limits_for_the_doctor_in_both_languages(
    client, doctor, record, technician, photo_file, package
):
    from screening.services import image_upload

    image = image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file())
    add_analysis(image, package, reasons=["monochrome"])
    client.force_login(doctor)
    url = reverse("pages:screening-detail", args=[record.pk])
    html = client.get(url).content.decode()
    assert (
        "Gradable with limits:</strong> Monochrome fundus photo (greyscale or red-free): " in html
    )
    assert "colour AI models not applicable — review the photo yourself" in html
    assert "Please retake this photo." not in html
    assert "No fundus visible in the photo" not in html
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    html = client.get(url).content.decode()
    assert (
        "可判读（有限制）:</strong> 单色眼底照片（灰度或无赤光）：彩色 AI 模型不适用，请医生直接阅片"
        in html
    )


def test_the_page_needs_few_queries(client, doctor, analysed_record, django_assert_max_num_queries):
    client.force_login(doctor)
    with django_assert_max_num_queries(30):
        client.get(reverse("pages:screening-detail", args=[analysed_record.pk]))


# --- the review -----------------------------------------------------------------------------
def test_a_doctor_saves_a_draft_then_signs(client, doctor, analysed_record):
    client.force_login(doctor)
    url = reverse("pages:screening-review", args=[analysed_record.pk])
    response = client.post(url, {**REVIEW, "action": "save"})
    assert response.status_code == 302
    draft = DoctorReview.objects.get(record=analysed_record)
    assert (draft.is_signed, draft.conclusion_codes) == (False, ["dr_moderate"])
    page = client.get(reverse("pages:screening-detail", args=[analysed_record.pk]))
    initial = page.context["review_form"].initial
    assert (initial["conclusion_codes"], initial["revision"]) == (["dr_moderate"], 1)
    assert '<input type="hidden" name="revision" value="1"' in page.content.decode()

    response = client.post(
        url, {**REVIEW, "recommendation": "urgent", "revision": "1", "action": "sign"}
    )
    assert response.status_code == 302
    review = DoctorReview.objects.get(record=analysed_record)
    assert review.is_signed
    assert review.recommendation == "urgent"
    assert review.follow_up_date is not None
    analysed_record.refresh_from_db()
    assert analysed_record.status == RecordStatus.REVIEWED


def test_review_errors_are_shown_and_nothing_is_signed(client, doctor, analysed_record):
    client.force_login(doctor)
    response = client.post(
        reverse("pages:screening-review", args=[analysed_record.pk]),
        {
            **REVIEW,
            "conclusion_codes": ["normal", "cataract"],
            "recommendation": "",
            "action": "sign",
        },
    )
    assert response.status_code == 400
    errors = response.context["review_form"].errors
    assert "cannot be combined" in errors["conclusion_codes"][0]
    assert errors["recommendation"] == ["Choose a recommendation."]
    assert not DoctorReview.objects.exists()


def test_an_amendment_needs_a_reason_and_becomes_a_new_version(client, doctor, analysed_record):
    client.force_login(doctor)
    url = reverse("pages:screening-review", args=[analysed_record.pk])
    client.post(url, {**REVIEW, "action": "sign"})
    page = client.get(reverse("pages:screening-detail", args=[analysed_record.pk]))
    assert "amendment_reason" in page.context["review_form"].fields
    amendment = {**REVIEW, "conclusion_codes": ["dr_severe"], "revision": "2", "action": "sign"}
    response = client.post(url, amendment)
    assert response.status_code == 400
    assert response.context["review_form"].errors["amendment_reason"]
    assert DoctorReview.objects.count() == 1
    response = client.post(url, {**amendment, "amendment_reason": "复核后分级上调"})
    assert response.status_code == 302
    versions = list(
        DoctorReview.objects.order_by("version").values_list("version", "conclusion_codes")
    )
    assert versions == [(1, ["dr_moderate"]), (2, ["dr_severe"])]
    html = client.get(reverse("pages:screening-detail", args=[analysed_record.pk])).content.decode()
    assert "Version history" in html and "复核后分级上调" in html


def test_technicians_see_no_review_form_and_a_direct_post_is_refused(
    client, technician, analysed_record
):
    client.force_login(technician)
    html = client.get(reverse("pages:screening-detail", args=[analysed_record.pk])).content.decode()
    assert 'value="sign"' not in html
    assert 'id="review-form"' not in html
    for action in ("save", "sign"):
        response = client.post(
            reverse("pages:screening-review", args=[analysed_record.pk]),
            {**REVIEW, "action": action},
        )
        assert response.status_code == 403
    assert not DoctorReview.objects.exists()
    analysed_record.refresh_from_db()
    assert analysed_record.status == RecordStatus.ANALYSED


def test_review_permissions_without_the_doctor_role_write_nothing(client, db, analysed_record):
    """The permissions alone (given one by one, or all of them to a superuser) are not the
    doctor's role: no review form, and a direct post is refused."""
    from django.contrib.auth.models import Permission

    writer = UserFactory(username="resident")
    writer.user_permissions.add(
        *Permission.objects.filter(
            codename__in=[
                "view_screeningrecord",
                "view_patient",
                "change_doctorreview",
                "sign_doctorreview",
                "view_analysis",
            ]
        )
    )
    root = UserFactory(username="root", is_superuser=True, is_staff=True, role="administrator")
    url = reverse("pages:screening-review", args=[analysed_record.pk])
    for user in (writer, root):
        client.force_login(user)
        page = client.get(reverse("pages:screening-detail", args=[analysed_record.pk]))
        html = page.content.decode()
        assert 'id="review-form"' not in html and 'value="sign"' not in html, user
        for action in ("save", "sign"):
            assert client.post(url, {**REVIEW, "action": action}).status_code == 403
    assert not DoctorReview.objects.exists()
    analysed_record.refresh_from_db()
    assert analysed_record.status == RecordStatus.ANALYSED


def test_no_review_before_photos(client, doctor, record):
    client.force_login(doctor)
    page = client.get(reverse("pages:screening-detail", args=[record.pk]))
    assert page.context["review_form"] is None
    response = client.post(
        reverse("pages:screening-review", args=[record.pk]), {**REVIEW, "action": "save"}
    )
    assert response.status_code == 400
    assert "Upload at least one photo" in response.content.decode()
    assert not DoctorReview.objects.exists()


def test_a_double_click_on_sign_is_one_signature_answered_as_success(
    client, doctor, analysed_record
):
    client.force_login(doctor)
    url = reverse("pages:screening-review", args=[analysed_record.pk])
    first = client.post(url, {**REVIEW, "action": "sign"})
    second = client.post(url, {**REVIEW, "action": "sign"}, follow=True)
    assert (first.status_code, second.status_code) == (302, 200)
    html = second.content.decode()
    assert "Review version 1 signed." in html
    assert 'class="errorlist"' not in html and "error-summary" not in html
    review = DoctorReview.objects.get()
    assert (review.is_signed, review.amendment_reason) == (True, "")
    assert AuditEvent.objects.filter(action="sign").count() == 1


def test_the_amendment_form_is_folded_behind_its_button_until_asked_for(
    client, doctor, analysed_record
):
    client.force_login(doctor)
    detail = reverse("pages:screening-detail", args=[analysed_record.pk])
    before = client.get(detail).content.decode()
    assert '<details class="amend"' not in before  # a first review is written in the open
    client.post(
        reverse("pages:screening-review", args=[analysed_record.pk]), {**REVIEW, "action": "sign"}
    )
    html = client.get(detail).content.decode()
    assert '<details class="amend">\n  <summary class="button secondary">Amend</summary>' in html
    assert html.index('<details class="amend">') < html.index('id="review-form"')
    refused = client.post(
        reverse("pages:screening-review", args=[analysed_record.pk]),
        {**REVIEW, "conclusion_codes": ["dr_severe"], "revision": "2", "action": "sign"},
    )
    assert '<details class="amend" open>' in refused.content.decode()


def test_a_refused_signature_shows_a_summary_at_the_top_linking_each_error(
    client, doctor, analysed_record
):
    client.force_login(doctor)
    response = client.post(
        reverse("pages:screening-review", args=[analysed_record.pk]),
        {**REVIEW, "conclusion_codes": [], "recommendation": "", "action": "sign"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    summary = html[
        html.index('id="error-summary"') : html.index("</div>", html.index('id="error-summary"'))
    ]
    assert (
        '<a href="#id_conclusion_codes_error">Conclusion: Choose at least one conclusion.</a>'
        in summary
    )
    assert (
        '<a href="#id_recommendation_error">Recommendation: Choose a recommendation.</a>' in summary
    )
    assert html.index('id="error-summary"') < html.index('id="visit-title"')  # at the top
    assert 'id="id_conclusion_codes_error"' in html
    # The focus moves with a static script (no inline script: the CSP allows none).
    assert "<script>" not in html and "onload=" not in html
    assert not DoctorReview.objects.exists()


def test_a_stale_form_shows_the_current_review_and_signs_nothing(client, doctor, analysed_record):
    """Doctor A opened the draft "cataract / refer"; doctor B saved "normal / routine" over it;
    A's sign shows B's content and keeps A's entries; nothing is signed."""
    client.force_login(doctor)
    url = reverse("pages:screening-review", args=[analysed_record.pk])
    mine = {**REVIEW, "conclusion_codes": ["cataract"], "recommendation": "refer"}
    client.post(url, {**mine, "action": "save"})
    colleague = UserFactory(username="doctor-b", first_name="王医生", role="doctor")
    review_save_draft(
        doctor=colleague,
        record=analysed_record,
        revision=1,
        conclusion_codes=["normal"],
        recommendation="routine",
    )

    response = client.post(url, {**mine, "revision": "1", "action": "sign"})

    assert response.status_code == 409
    html = response.content.decode()
    assert "The review now reads (version 1, revision 2, draft by 王医生):" in html
    conflict = html[html.index('id="review-conflict"') : html.index('id="review-form"')]
    assert "No abnormality" in conflict and "Routine screening" in conflict
    assert "nothing was saved or signed" in html
    form = response.context["review_form"]
    assert (form["conclusion_codes"].value(), form["revision"].value()) == (["cataract"], 2)
    review = DoctorReview.objects.get()
    assert (review.is_signed, review.conclusion_codes, review.doctor) == (
        False,
        ["normal"],
        colleague,
    )
    # Having seen it, A may sign what A wrote.
    assert client.post(url, {**mine, "revision": "2", "action": "sign"}).status_code == 302
    review.refresh_from_db()
    assert (review.is_signed, review.conclusion_codes, review.doctor) == (
        True,
        ["cataract"],
        doctor,
    )


# --- reports --------------------------------------------------------------------------------
def test_the_reports_section_lists_versions_and_queues_a_new_one(
    client, doctor, analysed_record, monkeypatch
):
    from reports.models import Report

    report = Report.objects.create(
        record=analysed_record,
        version=1,
        status="draft",
        summary_final="ok",
        summary_source="llm:qwen",
        pdf="reports/x.pdf",
        pdf_sha256="0" * 64,
    )
    queued = []
    monkeypatch.setattr(
        "reports.views.enqueue_on_commit", lambda *args, **kwargs: queued.append(args)
    )
    client.force_login(doctor)
    html = client.get(reverse("pages:screening-detail", args=[analysed_record.pk])).content.decode()
    assert reverse("reports:report-pdf", args=[report.pk]) in html
    assert "AI-written (qwen)" in html
    response = client.post(
        reverse("reports:generate", args=[analysed_record.pk]), {"language": "en"}
    )
    assert response.status_code == 302
    assert queued == [
        ("reports.tasks.generate_report_on_demand", analysed_record.pk, doctor.pk, "en")
    ]


def test_technicians_cannot_generate_reports(client, technician, analysed_record, monkeypatch):
    queued = []
    monkeypatch.setattr("reports.views.enqueue_on_commit", lambda *a, **k: queued.append(a))
    client.force_login(technician)
    html = client.get(reverse("pages:screening-detail", args=[analysed_record.pk])).content.decode()
    assert reverse("reports:generate", args=[analysed_record.pk]) not in html
    response = client.post(reverse("reports:generate", args=[analysed_record.pk]))
    assert response.status_code == 403
    assert queued == []


@pytest.mark.parametrize(
    "name", ["pages:screening-detail", "pages:screening-photos", "screening:edit"]
)
def test_screening_pages_send_anonymous_users_to_log_in(client, db, name):
    record = ScreeningRecordFactory()
    response = client.get(reverse(name, args=[record.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
