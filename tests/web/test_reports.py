"""The report page: summary editor (doctors), read-only summary (others), PDF preview, versions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.models import AuditEvent
from reports.models import Report
from reports.services import report_generate
from screening.services import review_save_draft, review_sign


@pytest.fixture(autouse=True)
def _template_summary(settings):
    settings.LLM_BASE_URL = ""
    settings.LLM_MODEL = ""
    settings.LLM_API_KEY = ""


@pytest.fixture
def report(analysed_record, doctor):
    review = review_save_draft(
        doctor=doctor,
        record=analysed_record,
        conclusion_codes=["dr_moderate"],
        recommendation="refer",
        follow_up_months=3,
    )
    review_sign(doctor=doctor, review=review)
    return report_generate(record=analysed_record, actor=doctor)


def test_a_doctor_sees_the_drafted_summary_the_editor_the_preview_and_the_versions(
    client, doctor, report
):
    client.force_login(doctor)
    response = client.get(reverse("reports:detail", args=[report.pk]))
    html = response.content.decode()

    assert response.status_code == 200
    assert report.summary_source == "template"
    assert '<dd id="summary-source">the template</dd>' in html
    assert f'action="{reverse("reports:approve-summary", args=[report.pk])}"' in html
    assert response.context["summary_form"]["text"].value() == report.summary_final
    assert (
        f'<iframe class="pdf-preview" src="{reverse("reports:report-pdf", args=[report.pk])}"'
        in html
    )
    assert [v.pk for v in response.context["versions"]] == [report.pk]
    assert '<span class="pill pill-final">Final</span>' in html
    event = AuditEvent.objects.get(action="view", object_type="patients.patient")
    assert (event.actor, event.patient_ref) == (doctor, report.record.patient.patient_id)


def test_the_pdf_can_be_framed_by_the_report_page(client, doctor, report):
    client.force_login(doctor)
    response = client.get(reverse("reports:report-pdf", args=[report.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("inline;")
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_a_doctor_approves_an_edited_summary_as_a_new_version(client, doctor, report):
    client.force_login(doctor)

    response = client.post(
        reverse("reports:approve-summary", args=[report.pk]), {"text": "  医生修改后的说明。  "}
    )

    approved = Report.objects.get(record=report.record, version=2)
    assert response.status_code == 302
    assert response["Location"] == reverse("reports:detail", args=[approved.pk])
    assert approved.summary_final == "医生修改后的说明。"
    assert (approved.summary_ai, approved.summary_source) == (
        report.summary_ai,
        report.summary_source,
    )
    assert (approved.summary_approved_by, approved.based_on) == (doctor, report)
    report.refresh_from_db()
    assert report.summary_approved_by is None
    page = client.get(response["Location"])
    assert "Summary approved: version 2 was rendered." in page.content.decode()
    assert [v.version for v in page.context["versions"]] == [2, 1]


def test_an_older_version_is_read_only_and_points_to_the_newest(client, doctor, report):
    newer = report_generate(record=report.record, actor=doctor)
    client.force_login(doctor)

    response = client.get(reverse("reports:detail", args=[report.pk]))

    assert response.context["newer"] == newer
    assert response.context["summary_form"] is None
    assert reverse("reports:approve-summary", args=[report.pk]) not in response.content.decode()
    refused = client.post(reverse("reports:approve-summary", args=[report.pk]), {"text": "新的"})
    # Sent to the newest version (the current content), told why; nothing was approved.
    assert (refused.status_code, refused["Location"]) == (
        302,
        reverse("reports:detail", args=[newer.pk]),
    )
    page = client.get(refused["Location"]).content.decode()
    assert "Version 2 of this report is newer; approve the summary there." in page
    assert Report.objects.filter(record=report.record).count() == 2
    assert not Report.objects.filter(summary_approved_by__isnull=False).exists()


def test_an_empty_summary_is_a_form_error(client, doctor, report):
    client.force_login(doctor)

    response = client.post(reverse("reports:approve-summary", args=[report.pk]), {"text": "   "})

    assert response.status_code == 400
    assert response.context["summary_form"].errors == {"text": ["This field is required."]}
    assert 'id="id_text_error"' in response.content.decode()
    assert Report.objects.filter(record=report.record).count() == 1


def test_a_technician_sees_the_summary_read_only_and_cannot_approve(client, technician, report):
    client.force_login(technician)
    html = client.get(reverse("reports:detail", args=[report.pk])).content.decode()
    assert reverse("reports:approve-summary", args=[report.pk]) not in html
    assert "<textarea" not in html
    assert '<blockquote class="summary-text" id="summary-final">' in html

    response = client.post(reverse("reports:approve-summary", args=[report.pk]), {"text": "改了"})

    assert response.status_code == 403
    assert Report.objects.filter(record=report.record).count() == 1
    report.refresh_from_db()
    assert report.summary_approved_by is None


def test_the_screening_page_links_each_report_version_to_its_page(client, doctor, report):
    client.force_login(doctor)
    html = client.get(reverse("pages:screening-detail", args=[report.record_id])).content.decode()
    assert f'href="{reverse("reports:detail", args=[report.pk])}"' in html


def test_the_report_page_sends_anonymous_users_to_log_in(client, report):
    response = client.get(reverse("reports:detail", args=[report.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_report_page_speaks_chinese(client, doctor, report):
    client.force_login(doctor)
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    html = client.get(reverse("reports:detail", args=[report.pk])).content.decode()
    assert '<dd id="summary-source">模板</dd>' in html
    assert "审核通过说明</button>" in html


def test_a_superuser_who_is_not_a_doctor_gets_no_summary_form_and_cannot_approve(client, report):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    page = client.get(reverse("reports:detail", args=[report.pk]))
    assert page.context["summary_form"] is None
    assert 'id="summary-form"' not in page.content.decode()
    response = client.post(reverse("reports:approve-summary", args=[report.pk]), {"text": "x"})
    assert response.status_code == 403
    assert Report.objects.count() == 1
