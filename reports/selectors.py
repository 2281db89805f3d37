"""Reads of reports."""

from __future__ import annotations

import datetime as dt

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from reports.models import Report, ReportStatus
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


def reports_final_on(*, day: dt.date) -> list[Report]:
    """The final reports that became final on `day` (local time), for printing: of each
    screening and language the newest version of that day, in the order of screening."""
    start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    end = start + dt.timedelta(days=1)
    of_day = Report.objects.filter(
        status=ReportStatus.FINAL, generated_at__gte=start, generated_at__lt=end
    )
    newer = of_day.filter(
        record=OuterRef("record"), language=OuterRef("language"), version__gt=OuterRef("version")
    )
    return list(
        of_day.exclude(Exists(newer))
        .select_related("record__patient", "record__operator")
        .order_by("record__screened_at", "record_id", "language")
    )
