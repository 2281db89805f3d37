"""Generating, versioning and approving reports; permissions; the sign → task → report path."""

from __future__ import annotations

import hashlib

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage

from core.conflicts import StaleVersion
from core.models import AuditEvent
from reports import services
from reports.models import CODE_ALPHABET, Report
from reports.services import report_approve_summary, report_generate
from reports.tasks import generate_report_for_record, generate_report_on_demand
from screening.models import RecordStatus, ScreeningRecord
from tests.reports.conftest import sign


def stored_pdfs() -> list[str]:
    names = []
    for year in default_storage.listdir("reports")[0] if default_storage.exists("reports") else []:
        for month in default_storage.listdir(f"reports/{year}")[0]:
            names += [
                f"reports/{year}/{month}/{f}"
                for f in default_storage.listdir(f"reports/{year}/{month}")[1]
            ]
    return names


def test_generating_a_final_report_stores_the_pdf_and_marks_the_record_reported(
    signed_record, doctor
):
    report = report_generate(record=signed_record, actor=doctor)

    assert (report.version, report.status, report.language, report.review_version) == (
        1,
        "final",
        "zh-hans",
        1,
    )
    assert report.summary_source == "template"
    assert report.summary_final == report.summary_ai
    assert report.pdf.name.startswith("reports/") and report.pdf.name.endswith(".pdf")
    with report.pdf.open("rb") as stored:
        content = stored.read()
    assert content.startswith(b"%PDF")
    assert report.pdf_sha256 == hashlib.sha256(content).hexdigest()
    assert report.pdf_size == len(content)
    assert len(report.access_code) == 8 and set(report.access_code) <= set(CODE_ALPHABET)
    assert len(report.verification_code) == 12
    assert report.generated_by == doctor
    assert ScreeningRecord.objects.get(pk=signed_record.pk).status == RecordStatus.REPORTED
    event = AuditEvent.objects.get(object_type="reports.report")
    assert (event.action, event.actor, event.patient_ref) == (
        "create",
        doctor,
        signed_record.patient.patient_id,
    )
    assert event.changes["status"] == [None, "final"]


def test_regenerating_makes_a_new_version_and_keeps_the_old_pdf(signed_record, doctor):
    first = report_generate(record=signed_record, actor=doctor)
    second = report_generate(record=signed_record, actor=doctor)

    assert [r.version for r in Report.objects.filter(record=signed_record)] == [2, 1]
    assert first.pdf.name != second.pdf.name
    assert default_storage.exists(first.pdf.name) and default_storage.exists(second.pdf.name)
    assert first.verification_code != second.verification_code
    assert sorted(stored_pdfs()) == sorted([first.pdf.name, second.pdf.name])


def test_approving_a_summary_renders_a_new_version_and_keeps_the_drafted_text(
    signed_record, doctor
):
    report = report_generate(record=signed_record, actor=doctor)

    approved = report_approve_summary(report=report, doctor=doctor, text="  医生修改后的说明。  ")

    assert approved.version == 2
    assert approved.summary_final == "医生修改后的说明。"
    assert approved.summary_ai == report.summary_ai
    assert approved.summary_source == report.summary_source
    assert (approved.summary_approved_by, approved.based_on) == (doctor, report)
    assert approved.summary_approved_at is not None
    report.refresh_from_db()
    assert report.summary_approved_by is None  # the earlier version is untouched
    event = AuditEvent.objects.filter(object_type="reports.report").first()
    assert event.changes["summary_approved_from"] == [None, 1]


def test_an_older_version_cannot_be_approved(signed_record, doctor):
    first = report_generate(record=signed_record, actor=doctor)
    report_generate(record=signed_record, actor=doctor)
    with pytest.raises(StaleVersion) as excinfo:
        report_approve_summary(report=first, doctor=doctor, text="新的说明")
    assert excinfo.value.code == "conflict"
    assert excinfo.value.current.version == 2
    assert Report.objects.count() == 2


def test_the_same_version_approved_twice_renders_one_new_version(signed_record, doctor):
    """Two doctors approving the version they saw: the second finds the first's newer."""
    report = report_generate(record=signed_record, actor=doctor)
    approved = report_approve_summary(report=report, doctor=doctor, text="第一位医生的说明")
    with pytest.raises(StaleVersion) as excinfo:
        report_approve_summary(report=report, doctor=doctor, text="第二位医生的说明")
    assert excinfo.value.current == approved
    assert list(Report.objects.order_by("version").values_list("version", "summary_final")) == [
        (1, report.summary_final),
        (2, "第一位医生的说明"),
    ]


def test_a_superuser_who_is_not_a_doctor_cannot_approve_a_summary(signed_record, doctor):
    from tests.factories import UserFactory

    report = report_generate(record=signed_record, actor=doctor)
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    with pytest.raises(PermissionDenied):
        report_approve_summary(report=report, doctor=root, text="未见异常")
    assert Report.objects.count() == 1


def test_an_empty_summary_is_refused(signed_record, doctor):
    report = report_generate(record=signed_record, actor=doctor)
    with pytest.raises(ValidationError) as excinfo:
        report_approve_summary(report=report, doctor=doctor, text="   ")
    assert excinfo.value.message_dict == {"text": ["The summary cannot be empty."]}
    assert Report.objects.count() == 1


def test_a_technician_can_neither_generate_nor_approve(signed_record, doctor, technician):
    with pytest.raises(PermissionDenied):
        report_generate(record=signed_record, actor=technician)
    assert not Report.objects.exists()
    assert stored_pdfs() == []

    report = report_generate(record=signed_record, actor=doctor)
    with pytest.raises(PermissionDenied):
        report_approve_summary(report=report, doctor=technician, text="改过的说明")
    assert list(Report.objects.values_list("version", "summary_final")) == [
        (1, report.summary_final)
    ]
    assert AuditEvent.objects.filter(object_type="reports.report").count() == 1


def test_an_unknown_language_is_refused(signed_record, doctor):
    with pytest.raises(ValidationError) as excinfo:
        report_generate(record=signed_record, actor=doctor, language="fr")
    assert list(excinfo.value.message_dict) == ["language"]


def test_the_pdf_is_removed_when_the_database_write_fails(signed_record, doctor, monkeypatch):
    def broken_audit(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "audit_log", broken_audit)
    with pytest.raises(RuntimeError):
        report_generate(record=signed_record, actor=doctor)
    assert not Report.objects.exists()
    assert stored_pdfs() == []
    assert ScreeningRecord.objects.get(pk=signed_record.pk).status == RecordStatus.REVIEWED


def test_signing_queues_the_report_task_which_makes_the_final_report(
    analysed_record, doctor, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sign(doctor, analysed_record)

    report = Report.objects.get(record=analysed_record)
    assert (report.version, report.status, report.review_version) == (1, "final", 1)
    assert report.generated_by is None
    assert ScreeningRecord.objects.get(pk=analysed_record.pk).status == RecordStatus.REPORTED
    assert AuditEvent.objects.get(object_type="reports.report").source == "task"


def test_the_task_is_idempotent_per_signed_review_and_language(signed_record):
    first = generate_report_for_record(signed_record.pk)
    again = generate_report_for_record(signed_record.pk)
    english = generate_report_for_record(signed_record.pk, "en")

    assert again == first
    assert english != first
    assert list(Report.objects.values_list("version", "language")) == [(2, "en"), (1, "zh-hans")]


def test_an_amended_review_gets_a_new_report_from_the_task(signed_record, doctor):
    generate_report_for_record(signed_record.pk)
    sign(
        doctor,
        signed_record,
        conclusion_codes=["dr_severe"],
        recommendation="urgent",
        amendment_reason="复核",
    )

    generate_report_for_record(signed_record.pk)

    latest = Report.objects.filter(record=signed_record).first()
    assert (latest.version, latest.review_version) == (2, 2)


def test_the_task_does_nothing_for_unsigned_or_missing_records(analysed_record):
    assert generate_report_for_record(analysed_record.pk) is None
    assert generate_report_for_record(987654) is None
    assert not Report.objects.exists()


def test_on_demand_generation_checks_the_requesting_user(analysed_record, doctor, technician):
    report_id = generate_report_on_demand(analysed_record.pk, doctor.pk, "en")
    assert Report.objects.get(pk=report_id).status == "draft"
    with pytest.raises(PermissionDenied):
        generate_report_on_demand(analysed_record.pk, technician.pk)
    assert Report.objects.count() == 1


def test_the_llm_budget_must_fit_in_the_task_timeout(settings):
    from reports.checks import llm_fits_in_task_timeout

    assert llm_fits_in_task_timeout(None) == []
    settings.LLM_TIMEOUT = 100.0
    settings.LLM_MAX_RETRIES = 1
    assert [error.id for error in llm_fits_in_task_timeout(None)] == ["reports.E001"]


# --- a summary approved on a draft, then the review is signed -----------------------------------
def _approve_on_draft(record, doctor) -> Report:
    draft = report_generate(record=record, actor=doctor)
    assert draft.status == "draft"
    return report_approve_summary(report=draft, doctor=doctor, text="医生在签名前确认的说明。")


def test_a_summary_approved_on_the_draft_carries_into_the_final_report(
    analysed_record, doctor, settings
):
    approved = _approve_on_draft(analysed_record, doctor)
    sign(doctor, analysed_record)
    generate_report_for_record(analysed_record.pk)  # the task queued by signing

    final = Report.objects.filter(record=analysed_record).first()
    assert (final.version, final.status) == (3, "final")
    assert final.summary_final == "医生在签名前确认的说明。"
    assert (final.summary_approved_by, final.summary_approved_at) == (
        doctor,
        approved.summary_approved_at,
    )
    assert final.based_on == approved
    assert final.summary_ai == approved.summary_ai  # the drafted text is kept beside it
    event = AuditEvent.objects.filter(object_type="reports.report").first()
    assert event.changes["summary_approved_from"] == [None, 2]


def test_an_approved_summary_is_not_carried_when_the_ai_findings_changed(
    analysed_record, doctor, package
):
    from ai_engine.models import Finding

    _approve_on_draft(analysed_record, doctor)
    Finding.objects.filter(label_code="D", positive=True).update(probability=0.97)
    sign(doctor, analysed_record)
    generate_report_for_record(analysed_record.pk)

    final = Report.objects.filter(record=analysed_record).first()
    assert final.status == "final"
    assert final.summary_approved_by is None and final.based_on is None
    assert final.summary_final != "医生在签名前确认的说明。"


def test_an_approved_summary_is_not_carried_when_another_doctor_signs(analysed_record, doctor):
    from tests.conftest import make_user

    _approve_on_draft(analysed_record, doctor)
    sign(make_user("doctor", "doctor2"), analysed_record)
    generate_report_for_record(analysed_record.pk)

    final = Report.objects.filter(record=analysed_record).first()
    assert final.status == "final" and final.summary_approved_by is None


def test_an_approved_summary_is_not_carried_into_an_amended_review(signed_record, doctor):
    first = report_generate(record=signed_record, actor=doctor)
    report_approve_summary(report=first, doctor=doctor, text="按中度病变说明。")
    sign(
        doctor,
        signed_record,
        conclusion_codes=["dr_severe"],
        recommendation="urgent",
        amendment_reason="复核",
    )
    generate_report_for_record(signed_record.pk)

    latest = Report.objects.filter(record=signed_record).first()
    assert (latest.version, latest.review_version) == (3, 2)
    assert latest.summary_approved_by is None
    assert latest.summary_final != "按中度病变说明。"
