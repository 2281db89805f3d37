"""Reads of reports."""

from __future__ import annotations

from django.db.models import QuerySet

from reports.models import Report
from screening.models import ScreeningRecord


def report_list(*, record: ScreeningRecord | None = None) -> QuerySet[Report]:
    reports = Report.objects.select_related(
        "record__patient", "generated_by", "summary_approved_by"
    ).order_by("record_id", "-version")
    if record is not None:
        reports = reports.filter(record=record)
    return reports


def report_latest(*, record: ScreeningRecord, language: str | None = None) -> Report | None:
    reports = Report.objects.filter(record=record)
    if language:
        reports = reports.filter(language=language)
    return reports.order_by("-version").first()


def report_by_verification_code(*, code: str) -> Report | None:
    """The report a printed verification code belongs to (codes are typed in any case)."""
    return Report.objects.filter(verification_code=code.strip().upper()).first()
