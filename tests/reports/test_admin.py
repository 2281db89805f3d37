"""Reports in the admin: list, versions, summary editor, generate button, permissions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.models import AuditEvent
from reports.models import Report
from reports.services import report_generate


@pytest.fixture
def report(signed_record, doctor):
    return report_generate(record=signed_record, actor=doctor)


def test_the_list_filters_and_links_downloads(client, technician, report):
    client.force_login(technician)
    response = client.get(
        reverse("admin:reports_report_changelist") + "?status__exact=final&language__exact=zh-hans"
    )
    assert response.status_code == 200
    assert reverse("reports:report-pdf", args=[report.pk]) in response.content.decode()
    assert "Generate a report" not in response.content.decode()  # technicians cannot


def test_the_change_page_lists_the_versions_and_is_audited(client, doctor, report, signed_record):
    second = report_generate(record=signed_record, actor=doctor)
    client.force_login(doctor)
    response = client.get(reverse("admin:reports_report_change", args=[second.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert reverse("reports:report-pdf", args=[report.pk]) in body  # v1 still there
    assert reverse("admin:reports_report_summary", args=[second.pk]) in body
    assert AuditEvent.objects.filter(
        action="view", patient_ref=signed_record.patient.patient_id
    ).exists()


def test_a_doctor_approves_the_summary_in_the_admin(client, doctor, report):
    client.force_login(doctor)
    url = reverse("admin:reports_report_summary", args=[report.pk])
    assert client.get(url).status_code == 200

    response = client.post(url, {"text": "医生改写的说明。"})

    new = Report.objects.get(version=2)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:reports_report_change", args=[new.pk])
    assert (new.summary_final, new.summary_approved_by) == ("医生改写的说明。", doctor)


def test_a_technician_cannot_open_the_summary_editor(client, technician, report):
    client.force_login(technician)
    url = reverse("admin:reports_report_summary", args=[report.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"text": "x"}).status_code == 403
    assert Report.objects.count() == 1


def test_a_doctor_generates_from_the_admin(
    client, doctor, report, signed_record, django_capture_on_commit_callbacks
):
    client.force_login(doctor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:reports_report_generate"), {"record": signed_record.pk, "language": "en"}
        )
    assert response.status_code == 302
    assert list(Report.objects.values_list("version", "language")) == [(2, "en"), (1, "zh-hans")]


def test_a_technician_cannot_generate_from_the_admin(
    client, technician, signed_record, django_capture_on_commit_callbacks
):
    client.force_login(technician)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:reports_report_generate"), {"record": signed_record.pk, "language": "en"}
        )
    assert response.status_code == 403
    assert not Report.objects.exists()


def test_reports_cannot_be_edited_or_deleted_in_the_admin(client, admin_user, report):
    client.force_login(admin_user)
    change = client.post(
        reverse("admin:reports_report_change", args=[report.pk]), {"summary_final": "hacked"}
    )
    assert change.status_code in (302, 403)
    assert (
        client.post(
            reverse("admin:reports_report_delete", args=[report.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    report.refresh_from_db()
    assert report.summary_final != "hacked"
