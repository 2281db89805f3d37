"""Staff web UI: the worklist (home page) and the statistics page."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext_lazy as _

from clinic.charts import bar_chart
from clinic.statistics import clinic_statistics
from core.web import can_see_statistics, staff_view
from patients.forms import PatientSearchForm
from reports.models import Report
from screening.models import RecordStatus, ScreeningRecord

S = RecordStatus
WORKLIST_GROUPS = (
    ("review", _("Waiting for review"), _("Sorted by AI triage priority, most urgent first.")),
    (
        "ungradable",
        _("Ungradable — retake photos"),
        _("The AI could not grade at least one photo."),
    ),
    ("analysing", _("AI analysing"), ""),
    ("waiting_photos", _("Waiting for photos"), ""),
    ("reviewed", _("Reviewed"), _("Signed; the report is being prepared.")),
    ("reported", _("Reported"), ""),
)
STATISTICS_DEFAULT_DAYS = 30
STATISTICS_MAX_DAYS = 366


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    return start, start + dt.timedelta(days=1)


def _group_of(record: ScreeningRecord) -> str:
    if record.status == S.DRAFT:
        return "waiting_photos"
    if record.status in (S.IMAGES_UPLOADED, S.ANALYSING):
        return "analysing"
    if record.status == S.ANALYSED:
        triage = getattr(record, "triage", None)
        reasons = triage.reasons if triage is not None else []
        return "ungradable" if any(r.get("code") == "ungradable" for r in reasons) else "review"
    return "reviewed" if record.status == S.REVIEWED else "reported"


def _priority(record: ScreeningRecord) -> int:
    triage = getattr(record, "triage", None)
    return triage.priority if triage is not None else 0


@staff_view("screening.view_screeningrecord", "patients.view_patient")
def dashboard(request: HttpRequest) -> HttpResponse:
    """Today's screenings by workflow state, plus older screenings still waiting for review."""
    today = timezone.localdate()
    day = parse_date(request.GET.get("day") or "") or today
    start, end = _day_bounds(day)
    records = (
        ScreeningRecord.objects.filter(
            Q(screened_at__gte=start, screened_at__lt=end)
            | Q(status=S.ANALYSED, screened_at__lt=start)
        )
        .select_related("patient", "operator", "triage")
        .annotate(image_count=Count("images"))
        .prefetch_related(
            Prefetch(
                "reports", queryset=Report.objects.order_by("-version"), to_attr="report_versions"
            )
        )
        .order_by("screened_at")
    )
    grouped: dict[str, list[ScreeningRecord]] = {
        code: [] for code, _label, _help in WORKLIST_GROUPS
    }
    for record in records:
        record.is_backlog = record.screened_at < start
        grouped[_group_of(record)].append(record)
    for code in ("review", "ungradable"):
        grouped[code].sort(key=lambda r: (-_priority(r), r.screened_at))
    groups = [
        {"code": code, "label": label, "help": help_text, "records": grouped[code]}
        for code, label, help_text in WORKLIST_GROUPS
    ]
    return render(
        request,
        "clinic/dashboard.html",
        {
            "day": day,
            "is_today": day == today,
            "previous_day": day - dt.timedelta(days=1),
            "next_day": day + dt.timedelta(days=1),
            "groups": groups,
            "total": sum(not r.is_backlog for r in records),
            "search_form": PatientSearchForm(),
        },
    )


@staff_view()
def statistics(request: HttpRequest) -> HttpResponse:
    if not can_see_statistics(request.user):
        raise PermissionDenied
    today = timezone.localdate()
    end = parse_date(request.GET.get("end") or "") or today
    start = parse_date(request.GET.get("start") or "") or end - dt.timedelta(
        days=STATISTICS_DEFAULT_DAYS - 1
    )
    error = ""
    if start > end:
        start, end = end, start
    if (end - start).days >= STATISTICS_MAX_DAYS:
        start = end - dt.timedelta(days=STATISTICS_MAX_DAYS - 1)
        error = _(
            "The range is limited to %(days)d days; showing the last %(days)d days up to the end date."
        ) % {"days": STATISTICS_MAX_DAYS}
    stats = clinic_statistics(start=start, end=end)
    zh = (request.LANGUAGE_CODE or "").startswith("zh")
    return render(
        request,
        "clinic/statistics.html",
        {
            "stats": stats,
            "dr_agreements": [stats.dr.referable, stats.dr.dme],
            "start": start,
            "end": end,
            "range_error": error,
            "per_day_chart": bar_chart([(f"{day:%m-%d}", count) for day, count in stats.per_day]),
            "findings_chart": bar_chart(
                [
                    (zh_label if zh else en_label, photos)
                    for _code, zh_label, en_label, photos in stats.findings
                ]
            ),
            "finding_rows": [
                (code, zh_label if zh else en_label, photos)
                for code, zh_label, en_label, photos in stats.findings
            ],
        },
    )
