"""Printing: the clinic letterhead, the signing doctor's signature, a day's reports as one PDF."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import pytest
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEvent
from core.signatures import staff_signature_set
from reports.checks import clinic_logo_readable
from reports.models import Report
from reports.selectors import reports_final_on
from reports.services import NothingToPrint, report_batch_print, report_generate
from tests.ai_results import make_analysed
from tests.core.test_signatures import signature_file
from tests.factories import PatientFactory, ScreeningRecordFactory
from tests.reports.conftest import pdf_text, sign

SIGNATURE_SIZE = (320, 80)


def image_sizes(content: bytes, tmp_path: Path) -> list[tuple[int, int]]:
    """The pixel sizes of the images in a PDF (pdfimages -list), soft masks left out."""
    path = tmp_path / "images.pdf"
    path.write_bytes(content)
    listing = subprocess.run(
        ["pdfimages", "-list", str(path)], capture_output=True, text=True, check=True
    ).stdout
    rows = [row.split() for row in listing.splitlines()[2:]]
    return [(int(row[3]), int(row[4])) for row in rows if row[2] == "image"]


def stored(report: Report) -> bytes:
    with report.pdf.open("rb") as handle:
        return handle.read()


def page_count(content: bytes, tmp_path: Path) -> int:
    path = tmp_path / "count.pdf"
    path.write_bytes(content)
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True)
    return int(re.search(r"^Pages:\s+(\d+)$", info.stdout, flags=re.MULTILINE).group(1))


def give_signature(doctor, admin_user, size=SIGNATURE_SIZE):
    return staff_signature_set(user=doctor, actor=admin_user, upload=signature_file(size=size))


# --- letterhead -------------------------------------------------------------------------------


def test_the_letterhead_logo_may_be_a_media_file_and_the_website_is_printed(
    signed_record, doctor, settings, tmp_path
):
    from PIL import Image

    Image.new("RGB", (240, 120), (31, 93, 140)).save(tmp_path / "logo.jpg")
    name = default_storage.save(
        "branding/logo.jpg", ContentFile((tmp_path / "logo.jpg").read_bytes())
    )
    settings.CLINIC_LOGO = name
    settings.CLINIC_NAME = "光明眼科诊所"
    settings.CLINIC_ADDRESS = "上海市徐汇区示例路 8 号"
    settings.CLINIC_PHONE = "021-87654321"
    settings.CLINIC_WEBSITE = "https://eyes.example.cn"

    report = report_generate(record=signed_record, actor=doctor)

    text = pdf_text(stored(report), tmp_path)
    header = text.split("患者")[0]  # the letterhead comes before the patient block
    for line in (
        "光明眼科诊所",
        "上海市徐汇区示例路 8 号",
        "021-87654321",
        "https://eyes.example.cn",
    ):
        assert line in header
    assert (240, 120) in image_sizes(stored(report), tmp_path)
    assert clinic_logo_readable(None) == []


def test_an_unreadable_logo_is_a_check_warning_and_the_report_prints_without_it(
    signed_record, doctor, settings, tmp_path
):
    (tmp_path / "logo.png").write_text("not a picture", encoding="utf-8")
    settings.CLINIC_LOGO = str(tmp_path / "logo.png")

    warnings = clinic_logo_readable(None)
    report = report_generate(record=signed_record, actor=doctor)

    assert [(type(w), w.id) for w in warnings] == [(CheckWarning, "reports.W001")]
    assert "is not a PNG or JPEG image" in warnings[0].msg
    assert report.status == "final" and report.pdf_size > 0
    assert (300, 100) not in image_sizes(stored(report), tmp_path)


def test_a_missing_logo_file_is_named_by_the_check(settings, tmp_path):
    settings.CLINIC_LOGO = str(tmp_path / "nowhere.png")
    [warning] = clinic_logo_readable(None)
    assert warning.id == "reports.W001"
    assert str(tmp_path / "nowhere.png") in warning.msg and "cannot be read" in warning.msg


# --- signature --------------------------------------------------------------------------------


def test_the_signing_doctors_signature_is_printed_on_the_final_report(
    signed_record, doctor, admin_user, tmp_path
):
    profile = give_signature(doctor, admin_user)

    report = report_generate(record=signed_record, actor=doctor)

    assert report.signature_name == profile.signature.name
    assert len(report.signature_sha256) == 64
    assert SIGNATURE_SIZE in image_sizes(stored(report), tmp_path)
    assert "doctor1" in pdf_text(stored(report), tmp_path)


def test_without_a_signature_image_only_the_name_is_printed(signed_record, doctor, tmp_path):
    report = report_generate(record=signed_record, actor=doctor)

    assert (report.signature_name, report.signature_sha256) == ("", "")
    assert SIGNATURE_SIZE not in image_sizes(stored(report), tmp_path)
    assert "doctor1" in pdf_text(stored(report), tmp_path)


def test_a_draft_report_has_no_signature(analysed_record, doctor, admin_user, tmp_path):
    give_signature(doctor, admin_user)
    report = report_generate(record=analysed_record, actor=doctor)
    assert report.status == "draft" and report.signature_name == ""
    assert SIGNATURE_SIZE not in image_sizes(stored(report), tmp_path)


def test_a_replaced_signature_does_not_change_an_already_signed_review(
    signed_record, doctor, admin_user, tmp_path
):
    first = give_signature(doctor, admin_user)
    v1 = report_generate(record=signed_record, actor=doctor)
    give_signature(doctor, admin_user, size=(400, 100))

    v2 = report_generate(record=signed_record, actor=doctor)

    assert v2.version == 2
    assert (v2.signature_name, v2.signature_sha256) == (v1.signature_name, v1.signature_sha256)
    assert v2.signature_name == first.signature.name
    sizes = image_sizes(stored(v2), tmp_path)
    assert SIGNATURE_SIZE in sizes and (400, 100) not in sizes


def test_a_signature_file_that_no_longer_matches_is_left_off(
    signed_record, doctor, admin_user, tmp_path
):
    give_signature(doctor, admin_user)
    v1 = report_generate(record=signed_record, actor=doctor)
    with default_storage.open(v1.signature_name, "wb") as handle:  # tampered on disk
        handle.write(signature_file(size=(500, 100)).read())

    v2 = report_generate(record=signed_record, actor=doctor)

    sizes = image_sizes(stored(v2), tmp_path)
    assert SIGNATURE_SIZE not in sizes and (500, 100) not in sizes


# --- batch print ------------------------------------------------------------------------------


@pytest.fixture
def two_final_reports(signed_record, doctor, admin_user, technician, photo_file, package):
    """Two screenings reported today; the second was screened earlier, so it prints first."""
    give_signature(doctor, admin_user)
    earlier = ScreeningRecordFactory(
        patient=PatientFactory(name="第二位患者", created_by=technician),
        operator=technician,
        screened_at=signed_record.screened_at - dt.timedelta(hours=2),
    )
    make_analysed(earlier, technician, photo_file, package)
    sign(doctor, earlier)
    late = report_generate(record=signed_record, actor=doctor)
    early = report_generate(record=earlier, actor=doctor)
    return early, late


def test_the_days_final_reports_print_as_one_pdf_in_screening_order(
    two_final_reports, doctor, technician, tmp_path
):
    early, late = two_final_reports
    report_generate(record=late.record, actor=doctor)  # v2 of the same screening today
    newest = Report.objects.get(record=late.record, version=2)
    today = timezone.localdate()

    batch = report_batch_print(
        reports=reports_final_on(day=today), actor=technician, label=today.isoformat()
    )

    assert [r.pk for r in batch.printed] == [early.pk, newest.pk]
    single = [page_count(stored(r), tmp_path) for r in (early, newest)]
    assert batch.pages == sum(single) == page_count(batch.content, tmp_path)
    text = pdf_text(batch.content, tmp_path, "batch.pdf")
    pages = text.split("\f")
    first_of_second = single[0]
    assert "第二位患者" in pages[0] and late.record.patient.name not in pages[0]
    assert late.record.patient.name in pages[first_of_second]
    # Each report numbers its own pages: "1 / 2", "2 / 2", then "1 / 2" again.
    numbers = re.findall(r"(\d) / (\d)\s*$", text, flags=re.MULTILINE)
    assert numbers == [(str(i), str(n)) for n in single for i in range(1, n + 1)]
    assert sorted(image_sizes(batch.content, tmp_path)).count(SIGNATURE_SIZE) == 2
    events = AuditEvent.objects.filter(action="download", actor_username="tech1").order_by("id")
    assert [(e.object_id, e.changes["batch_print"][1]) for e in events] == [
        (str(early.pk), today.isoformat()),
        (str(newest.pk), today.isoformat()),
    ]


def test_a_report_whose_screening_changed_since_is_left_out(two_final_reports, technician):
    early, late = two_final_reports
    Report.objects.filter(pk=early.pk).update(summary_basis_sha256="0" * 64)
    early.refresh_from_db()

    batch = report_batch_print(reports=[early, late], actor=technician, label="test")

    assert [r.pk for r in batch.printed] == [late.pk]
    assert [r.pk for r in batch.changed] == [early.pk]
    assert AuditEvent.objects.filter(action="download").count() == 1


def test_nothing_to_print_is_an_error_and_writes_no_audit(analysed_record, doctor, technician):
    draft = report_generate(record=analysed_record, actor=doctor)
    with pytest.raises(NothingToPrint) as refused:
        report_batch_print(reports=[draft], actor=technician, label="test")
    assert refused.value.messages == ["There are no final reports to print."]
    assert not AuditEvent.objects.filter(action="download").exists()


def test_someone_without_report_access_cannot_print(two_final_reports, patient_user):
    with pytest.raises(PermissionDenied):
        report_batch_print(reports=list(two_final_reports), actor=patient_user, label="x")
    assert not AuditEvent.objects.filter(action="download").exists()


def test_the_staff_page_lists_the_day_and_returns_the_pdf(
    client, two_final_reports, technician, tmp_path
):
    early, late = two_final_reports
    client.force_login(technician)
    url = reverse("reports:batch-print")
    today = timezone.localdate().isoformat()

    page = client.get(url, {"day": today})
    response = client.post(url, {"day": today})

    assert page.status_code == 200
    body = page.content.decode()
    assert body.index(early.number) < body.index(late.number)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'inline; filename="reports-{today}.pdf"'
    assert page_count(response.content, tmp_path) == page_count(
        stored(early), tmp_path
    ) + page_count(stored(late), tmp_path)
    assert AuditEvent.objects.filter(action="download", source="web").count() == 2


def test_the_staff_page_says_when_there_is_nothing_to_print(client, technician):
    client.force_login(technician)
    url = reverse("reports:batch-print")

    response = client.post(url, {"day": "2026-01-02"}, follow=True)

    assert response.redirect_chain == [(f"{url}?day=2026-01-02", 302)]
    assert [str(m) for m in response.context["messages"]] == [
        "There are no final reports to print."
    ]
    assert not AuditEvent.objects.filter(action="download").exists()


def test_the_staff_page_is_refused_without_report_access(client, patient_user, two_final_reports):
    client.force_login(patient_user)
    url = reverse("reports:batch-print")
    assert client.get(url).status_code == 403
    assert client.post(url, {"day": timezone.localdate().isoformat()}).status_code == 403
    assert not AuditEvent.objects.filter(action="download").exists()


def test_the_admin_action_prints_the_selected_final_reports(
    client, two_final_reports, technician, doctor, tmp_path
):
    early, late = two_final_reports
    unreviewed = ScreeningRecordFactory(patient=PatientFactory(), operator=technician)
    draft = report_generate(record=unreviewed, actor=doctor)
    client.force_login(doctor)

    response = client.post(
        reverse("admin:reports_report_changelist"),
        {"action": "print_selected", "_selected_action": [late.pk, early.pk, draft.pk]},
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = pdf_text(response.content, tmp_path, "admin.pdf")
    assert text.index("第二位患者") < text.index(late.record.patient.name)
    events = AuditEvent.objects.filter(action="download", source="admin").order_by("id")
    assert [(e.object_id, e.changes["batch_print"][1]) for e in events] == [
        (str(early.pk), "admin"),
        (str(late.pk), "admin"),
    ]


def test_the_admin_action_says_when_only_drafts_are_selected(client, analysed_record, doctor):
    draft = report_generate(record=analysed_record, actor=doctor)
    client.force_login(doctor)

    response = client.post(
        reverse("admin:reports_report_changelist"),
        {"action": "print_selected", "_selected_action": [draft.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == [
        "There are no final reports to print."
    ]
    assert not AuditEvent.objects.filter(action="download").exists()


def test_the_staff_page_speaks_chinese(client, technician, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    client.force_login(technician)

    body = client.get(reverse("reports:batch-print"), {"day": "2026-01-02"}).content.decode()

    assert "2026-01-02 的正式报告" in body
    assert "没有可打印的正式报告。" in body
    assert "Print" not in body.split("<main")[-1]


def test_a_day_larger_than_one_batch_prints_in_parts(
    client, two_final_reports, technician, settings, tmp_path
):
    early, late = two_final_reports
    settings.REPORT_BATCH_MAX = 1
    client.force_login(technician)
    url = reverse("reports:batch-print")
    today = timezone.localdate().isoformat()

    page = client.get(url, {"day": today}).content.decode()
    whole = client.post(url, {"day": today}, follow=True)
    second = client.post(url, {"day": today, "part": "2"})

    assert "Print reports 1–1 as one PDF" in page and "Print reports 2–2 as one PDF" in page
    assert [str(m) for m in whole.context["messages"]] == [
        "2 reports are more than the 1 that can be printed at once; print them in parts."
    ]
    assert second["Content-Type"] == "application/pdf"
    assert late.record.patient.name in pdf_text(second.content, tmp_path, "part.pdf")
    events = AuditEvent.objects.filter(action="download")
    assert [(e.object_id, e.changes["batch_print"][1]) for e in events] == [
        (str(late.pk), f"{today} (2)")
    ]


def test_the_list_page_reads_a_fixed_number_of_queries(
    client, two_final_reports, technician, django_assert_max_num_queries
):
    client.force_login(technician)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("reports:batch-print"))
    assert response.status_code == 200
