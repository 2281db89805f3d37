"""Writes of reports: generate a version, approve its summary (a new version), log downloads."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core.audit import audit_log
from core.conflicts import StaleVersion
from core.models import AuditEvent, StaffProfile
from core.roles import require_permission
from core.signatures import signature_sha256
from core.tasks import enqueue_on_commit
from reports.facts import ReportInputs, report_inputs
from reports.llm import SummaryResult, summary_for_facts
from reports.models import Report, ReportLanguage, ReportStatus
from screening.models import ScreeningRecord
from screening.services import record_mark_reported

logger = logging.getLogger(__name__)

SUMMARY_EDIT_MAX_CHARS = 4000
CODE_ATTEMPTS = 3


def report_storage_name() -> str:
    """A server-chosen name, e.g. ``reports/2026/11/<uuid4 hex>.pdf``."""
    return f"reports/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.pdf"


def report_generate(
    *,
    record: ScreeningRecord,
    actor=None,
    language: str = ReportLanguage.ZH_HANS,
    only_if_missing: bool = False,
) -> Report:
    """Render a new report version of `record` (final when a signed review exists).

    `actor` None means the system (the task after signing). With `only_if_missing`, an existing
    report for the current signed review in `language` is returned instead of a new version.
    """
    if actor is not None:
        require_permission(actor, "reports.add_report")
    _check_language(language)
    with translation.override(language):
        inputs = report_inputs(record=record)
        if only_if_missing and (existing := _current_report(record, inputs, language)):
            return existing
        if approved := _approved_summary_to_carry(record, inputs, language):
            return _save_version(
                record=record,
                inputs=inputs,
                language=language,
                summary=SummaryResult(
                    text=approved.summary_ai,
                    source=approved.summary_source,
                    fallback_reason=approved.summary_fallback_reason,
                ),
                actor=actor,
                only_if_missing=only_if_missing,
                approved_text=approved.summary_final,
                approval=(approved.summary_approved_by, approved.summary_approved_at),
                based_on=approved,
            )
        # Before the transaction below: an LLM call may take seconds and must hold no row lock.
        summary = summary_for_facts(inputs.facts, language=language)
    return _save_version(
        record=record,
        inputs=inputs,
        language=language,
        summary=summary,
        actor=actor,
        only_if_missing=only_if_missing,
    )


def summary_basis_sha256(facts: dict) -> str:
    """A fingerprint of what a summary speaks of: the facts without the doctor's review and the
    report's status, so signing a review does not by itself make an approved summary stale."""
    basis = {k: v for k, v in facts.items() if k not in ("doctor_review", "report_status")}
    basis["eyes"] = {
        eye: {
            **values,
            "ai_findings": [
                {k: v for k, v in finding.items() if k != "confirmed_by_doctor"}
                for finding in values.get("ai_findings", [])
            ],
        }
        for eye, values in facts.get("eyes", {}).items()
    }
    encoded = json.dumps(basis, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _approved_summary_to_carry(
    record: ScreeningRecord, inputs: ReportInputs, language: str
) -> Report | None:
    """The doctor's approved summary of the latest version, when the new version may keep it.

    A summary approved on a draft (before signing) carries into the final report when the
    findings and measurements it speaks of are unchanged and the doctor who approved it signed
    the review; one approved on a final report carries into a re-render of the same signed
    review. An amended review, changed findings or another signing doctor get a fresh draft
    summary to approve.
    """
    latest = (
        Report.objects.filter(record=record, language=language)
        .select_related("summary_approved_by")
        .order_by("-version")
        .first()
    )
    if latest is None or latest.summary_approved_by_id is None:
        return None
    if latest.review_version not in (None, inputs.review_version):
        return None
    if latest.summary_basis_sha256 != summary_basis_sha256(inputs.facts):
        return None
    if inputs.review is not None and inputs.review.doctor_id != latest.summary_approved_by_id:
        return None
    return latest


def report_approve_summary(*, report: Report, doctor, text: str) -> Report:
    """The doctor's edited/approved summary, rendered as a new version; the AI text is kept."""
    require_permission(doctor, "reports.approve_summary")
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": [_("The summary cannot be empty.")]})
    if len(text) > SUMMARY_EDIT_MAX_CHARS:
        raise ValidationError(
            {
                "text": [
                    _("The summary is limited to %(max)d characters.")
                    % {"max": SUMMARY_EDIT_MAX_CHARS}
                ]
            }
        )
    with transaction.atomic():
        # Under the record's lock (as every new version is numbered): of two approvals of the
        # same version, the second finds the first's version newer and writes nothing.
        ScreeningRecord.objects.select_for_update().get(pk=report.record_id)
        newer = (
            Report.objects.filter(
                record_id=report.record_id, language=report.language, version__gt=report.version
            )
            .order_by("-version")
            .first()
        )
        if newer is not None:
            raise StaleVersion(
                _("Version %(version)d of this report is newer; approve the summary there.")
                % {"version": newer.version},
                current=newer,
            )
        with translation.override(report.language):
            inputs = report_inputs(record=report.record)
        summary = SummaryResult(
            text=report.summary_ai,
            source=report.summary_source,
            fallback_reason=report.summary_fallback_reason,
        )
        return _save_version(
            record=report.record,
            inputs=inputs,
            language=report.language,
            summary=summary,
            actor=doctor,
            approved_text=text,
            based_on=report,
        )


class NothingToPrint(ValidationError):
    """The reports asked for cannot be printed: none is final, or too many at once."""


@dataclass(frozen=True)
class BatchPrint:
    """One PDF of several final reports, and what was left out."""

    content: bytes
    pages: int
    printed: list[Report]
    changed: list[Report]  # final reports whose screening changed since they were rendered
    drafts: int


def report_batch_print(*, reports: Iterable[Report], actor, label: str) -> BatchPrint:
    """The final ones of `reports`, in the given order, as one PDF; one audit line each.

    Each report is laid out again from its screening (with today's letterhead and the
    signature it recorded), so only reports whose screening still says what they say are
    printed: a report whose review was amended or whose findings changed since it was
    rendered is left out and named. `label` (e.g. the day) goes into the audit lines.
    """
    require_permission(actor, "reports.view_report")
    reports = list(reports)
    finals = [report for report in reports if report.is_final]
    if len(finals) > settings.REPORT_BATCH_MAX:
        raise NothingToPrint(
            _(
                "%(count)d reports are more than the %(max)d that can be printed at once; "
                "print them in parts."
            )
            % {"count": len(finals), "max": settings.REPORT_BATCH_MAX},
            code="too_many",
        )
    items: list[tuple[Report, ReportInputs]] = []
    changed: list[Report] = []
    for report in finals:
        with translation.override(report.language):
            inputs = report_inputs(record=report.record)
        if _still_current(report, inputs):
            items.append((report, inputs))
        else:
            changed.append(report)
    if not items:
        raise NothingToPrint(_("There are no final reports to print."), code="nothing_to_print")
    from reports.pdf import render_reports_pdf  # WeasyPrint: see _save_version

    rendered = render_reports_pdf(items)
    with transaction.atomic():
        for report, _inputs in items:
            audit_log(
                actor=actor,
                action=AuditEvent.Action.DOWNLOAD,
                obj=report,
                patient_ref=report.record.patient.patient_id,
                changes={"version": [None, report.version], "batch_print": [None, label]},
            )
    return BatchPrint(
        content=rendered.content,
        pages=rendered.pages or 0,
        printed=[report for report, _inputs in items],
        changed=changed,
        drafts=len(reports) - len(finals),
    )


def _still_current(report: Report, inputs: ReportInputs) -> bool:
    """The screening still holds the signed review and the findings `report` was made from."""
    if inputs.review_version != report.review_version:
        return False
    basis = report.summary_basis_sha256
    return not basis or basis == summary_basis_sha256(inputs.facts)


def report_record_download(*, report: Report, actor) -> None:
    """Log that `actor` downloaded the report's PDF (the caller has checked permission)."""
    audit_log(
        actor=actor,
        action=AuditEvent.Action.DOWNLOAD,
        obj=report,
        patient_ref=report.record.patient.patient_id,
        changes={"version": [None, report.version]},
    )


def _check_language(language: str) -> None:
    if language not in ReportLanguage.values:
        raise ValidationError(
            {
                "language": [
                    _("Choose one of: %(choices)s.") % {"choices": ", ".join(ReportLanguage.values)}
                ]
            }
        )


def _current_report(record: ScreeningRecord, inputs: ReportInputs, language: str) -> Report | None:
    """The report already built from the record's current signed review in `language`."""
    if inputs.review is None:
        return None
    return (
        Report.objects.filter(
            record=record,
            language=language,
            status=ReportStatus.FINAL,
            review_version=inputs.review_version,
        )
        .order_by("-version")
        .first()
    )


def _save_version(
    *,
    record: ScreeningRecord,
    inputs: ReportInputs,
    language: str,
    summary: SummaryResult,
    actor,
    only_if_missing: bool = False,
    approved_text: str = "",
    approval: tuple | None = None,
    based_on: Report | None = None,
) -> Report:
    """Number, render and store one version; the row and its PDF exist together or not at all.

    `approval` (approver, approved_at) is the original approval of a carried summary; without
    it an `approved_text` is approved by `actor` now."""
    if approved_text and approval is None:
        approval = (actor, timezone.now())
    status = ReportStatus.FINAL if inputs.review is not None else ReportStatus.DRAFT
    stored_name = ""
    try:
        with transaction.atomic():
            # The record's row lock serialises version numbers (and the only_if_missing check).
            locked = (
                ScreeningRecord.objects.select_for_update()
                .select_related("patient")
                .get(pk=record.pk)
            )
            if only_if_missing and (existing := _current_report(locked, inputs, language)):
                return existing
            last = locked.reports.order_by("-version").values_list("version", flat=True).first()
            report = _create_row(
                record=locked,
                version=(last or 0) + 1,
                status=status,
                language=language,
                review_version=inputs.review_version,
                summary=summary,
                approved_text=approved_text,
                approval=approval,
                based_on=based_on,
                actor=actor,
                basis_sha256=summary_basis_sha256(inputs.facts),
                signature=_signature_snapshot(locked, inputs),
            )
            # Imported here: WeasyPrint parses its stylesheets on import (about a second), a
            # cost only the processes that render should pay.
            from reports.pdf import render_report_pdf

            rendered = render_report_pdf(report=report, inputs=inputs)
            stored_name = default_storage.save(report_storage_name(), ContentFile(rendered.content))
            report.pdf = stored_name
            report.pdf_sha256 = hashlib.sha256(rendered.content).hexdigest()
            report.pdf_size = len(rendered.content)
            report.save(update_fields=["pdf", "pdf_sha256", "pdf_size"])
            audit_log(
                actor=actor,
                action=AuditEvent.Action.CREATE,
                obj=report,
                patient_ref=locked.patient.patient_id,
                changes={
                    "version": [None, report.version],
                    "status": [None, report.status],
                    "language": [None, report.language],
                    "summary_source": [None, report.summary_source],
                    **({"summary_approved_from": [None, based_on.version]} if based_on else {}),
                    **(
                        {"summary_fallback_reason": [None, summary.fallback_reason]}
                        if summary.fallback_reason
                        else {}
                    ),
                },
            )
            if status == ReportStatus.FINAL:
                record_mark_reported(record=locked)
                _enqueue_report_final(report)
    except BaseException:
        if stored_name:
            default_storage.delete(stored_name)
        raise
    record.status = locked.status
    logger.info(
        "Report %s v%s (%s, %s) for record %s: summary %s%s",
        report.number,
        report.version,
        report.status,
        report.language,
        record.pk,
        report.summary_source,
        f" ({summary.fallback_reason})" if summary.fallback_reason else "",
    )
    return report


def _signature_snapshot(record: ScreeningRecord, inputs: ReportInputs) -> tuple[str, str]:
    """(storage name, SHA-256) of the signature a report of `inputs.review` prints.

    The first report of a signed review takes the doctor's signature image of that moment
    (it is generated right after signing); every later version of the same review keeps it,
    so a doctor who replaces the image later does not change what was signed. A review
    reported before signatures existed keeps printing none.
    """
    if inputs.review is None:
        return "", ""
    first = (
        Report.objects.filter(
            record=record, status=ReportStatus.FINAL, review_version=inputs.review_version
        )
        .order_by("version")
        .only("signature_name", "signature_sha256")
        .first()
    )
    if first is not None:
        return first.signature_name, first.signature_sha256
    profile = StaffProfile.objects.filter(user_id=inputs.review.doctor_id).first()
    sha256 = signature_sha256(profile)
    return (profile.signature.name, sha256) if sha256 else ("", "")


def _enqueue_report_final(report: Report) -> None:
    """Tell integrations once the final version commits (REPORT_FINAL_TASK, by dotted name:
    reports never imports the API or webhook code)."""
    task_path = getattr(settings, "REPORT_FINAL_TASK", "")
    if task_path:
        enqueue_on_commit(task_path, report.pk)


def _create_row(
    *,
    record,
    version,
    status,
    language,
    review_version,
    summary,
    approved_text,
    approval,
    based_on,
    actor,
    basis_sha256,
    signature,
) -> Report:
    approver, approved_at = approval or (None, None)
    fields = {
        "record": record,
        "version": version,
        "status": status,
        "language": language,
        "review_version": review_version,
        "summary_ai": summary.text,
        "summary_final": approved_text or summary.text,
        "summary_source": summary.source,
        "summary_fallback_reason": summary.fallback_reason,
        "summary_approved_by": approver,
        "summary_approved_at": approved_at,
        "summary_basis_sha256": basis_sha256,
        "based_on": based_on,
        "generated_by": actor,
        "signature_name": signature[0],
        "signature_sha256": signature[1],
    }
    for attempt in range(CODE_ATTEMPTS):
        try:
            # A savepoint: a (vanishingly rare) code collision must not break the transaction.
            with transaction.atomic():
                return Report.objects.create(**fields)
        except IntegrityError:
            if (
                attempt == CODE_ATTEMPTS - 1
                or Report.objects.filter(record=record, version=version).exists()
            ):
                raise
    raise AssertionError("unreachable")
