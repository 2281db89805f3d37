"""Staff web UI: the worklist (home page) and the statistics page."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from clinic.charts import bar_chart
from clinic.statistics import clinic_statistics
from clinic.turnaround import turnaround_of
from clinic.worklist import (
    ME,
    PAGE_SIZE,
    UNASSIGNED,
    WorklistFilterForm,
    WorklistFilters,
    day_start,
    doctors,
    worklist_records,
    worklist_status_counts,
)
from clinic.workload import (
    CLINIC_TABLES,
    PERIODS,
    TABLES,
    WEEK,
    clinic_tables,
    workload_statistics,
)
from core.audit import audit_log
from core.models import AuditEvent
from core.roles import is_doctor, user_may
from core.tabular import UnknownFormat, export_format, table_response
from core.web import can_see_statistics, staff_view
from patients.forms import PatientSearchForm
from screening.models import RecordStatus, ScreeningRecord
from screening.selectors import recall_list
from screening.services import record_assign, record_may_assign

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


def _page_query(request: HttpRequest, **changes: str) -> str:
    """The current query string with `changes` applied ("" removes a parameter)."""
    query = request.GET.copy()
    for key, value in changes.items():
        query.pop(key, None)
        if value:
            query[key] = value
    return query.urlencode()


@staff_view("screening.view_screeningrecord", "patients.view_patient")
def dashboard(request: HttpRequest) -> HttpResponse:
    """The worklist: filtered screenings by workflow state, most urgent first, 25 a page;
    without dates, today's screenings plus older ones still waiting for review."""
    today = timezone.localdate()
    doctor_list = list(doctors())
    form = WorklistFilterForm(request.GET or None, doctor_list=doctor_list)
    if form.is_bound:
        form.is_valid()
    day = parse_date(request.GET.get("day") or "")
    filters = WorklistFilters.from_form(form, day=day)
    page = Paginator(worklist_records(filters=filters, user=request.user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    now = timezone.now()
    grouped: dict[str, list[ScreeningRecord]] = {
        code: [] for code, _label, _help in WORKLIST_GROUPS
    }
    for record in page:
        record.is_backlog = record.screened_at < day_start(filters.start or today)
        record.turnaround = turnaround_of(
            first_upload_at=record.first_upload_at,
            first_signed_at=record.first_signed_at,
            now=now,
        )
        grouped[_group_of(record)].append(record)
    single_day = filters.start if filters.start == filters.end else None
    shown_day = single_day or (None if filters.has_dates else today)
    may_assign = record_may_assign(request.user)
    recalls_due = (
        recall_list().count() if user_may(request.user, "screening.view_followupcontact") else None
    )
    return render(
        request,
        "clinic/dashboard.html",
        {
            "day": shown_day,
            "is_today": shown_day == today and not filters.has_dates,
            "is_mine": filters.doctor == ME,
            "filters": filters,
            "previous_day": shown_day - dt.timedelta(days=1) if shown_day else None,
            "next_day": shown_day + dt.timedelta(days=1) if shown_day else None,
            "groups": [
                {"code": code, "label": label, "help": help_text, "records": grouped[code]}
                for code, label, help_text in WORKLIST_GROUPS
            ],
            "page": page,
            "total": page.paginator.count,
            "status_counts": [
                (status, label, count, _page_query(request, status=status, page=""))
                for status, label, count in worklist_status_counts(
                    filters=filters, user=request.user
                )
            ],
            "filter_form": form,
            "is_filtered": bool(request.GET),
            "mine_query": _page_query(request, doctor=ME, page=""),
            "previous_query": _page_query(request, page=str(page.number - 1)),
            "next_query": _page_query(request, page=str(page.number + 1)),
            "may_assign": may_assign,
            "assign_doctors": doctor_list if may_assign else [],
            "is_doctor": is_doctor(request.user),
            "recalls_due": recalls_due,
            "search_form": PatientSearchForm(),
        },
    )


@require_POST
@staff_view("screening.view_screeningrecord", "patients.view_patient")
def worklist_assign(request: HttpRequest) -> HttpResponse:
    """Bulk assignment from the worklist: the ticked screenings go to one doctor (or to none)."""
    if not record_may_assign(request.user):
        raise PermissionDenied
    back = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = ""
    back = back or reverse("dashboard")
    doctor_id = request.POST.get("doctor") or ""
    doctor = None
    if doctor_id != UNASSIGNED:
        doctor = doctors().filter(pk=int(doctor_id) if doctor_id.isdigit() else 0).first()
        if doctor is None:
            messages.error(request, _("Choose the doctor to assign the screenings to."))
            return redirect(back)
    ids = [int(value) for value in request.POST.getlist("records") if value.isdigit()]
    if not ids:
        messages.error(request, _("Tick the screenings to assign first."))
        return redirect(back)
    assigned = 0
    for record in ScreeningRecord.objects.filter(pk__in=ids).select_related("patient"):
        try:
            record_assign(actor=request.user, record=record, doctor=doctor)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            assigned += 1
    if assigned:
        if doctor is None:
            text = ngettext(
                "%(count)d screening put back on every doctor's worklist.",
                "%(count)d screenings put back on every doctor's worklist.",
                assigned,
            ) % {"count": assigned}
        else:
            text = ngettext(
                "%(count)d screening assigned to %(doctor)s.",
                "%(count)d screenings assigned to %(doctor)s.",
                assigned,
            ) % {"count": assigned, "doctor": doctor.get_full_name() or doctor.get_username()}
        messages.success(request, text)
    return redirect(back)


def _statistics_range(request: HttpRequest) -> tuple[dt.date, dt.date, str, str]:
    """(start, end, period, a notice) from ?start=&end=&period=; at most a year."""
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
    period = request.GET.get("period") if request.GET.get("period") in PERIODS else WEEK
    return start, end, period, error


def _range_records(start: dt.date, end: dt.date):
    return ScreeningRecord.objects.filter(
        screened_at__gte=day_start(start), screened_at__lt=day_start(end + dt.timedelta(days=1))
    )


@staff_view()
def statistics(request: HttpRequest) -> HttpResponse:
    if not can_see_statistics(request.user):
        raise PermissionDenied
    start, end, period, error = _statistics_range(request)
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
            "period": period,
            "range_error": error,
            "workload": workload_statistics(
                records=_range_records(start, end), start=start, end=end, period=period
            ),
            "export_query": urlencode(
                {"start": start.isoformat(), "end": end.isoformat(), "period": period}
            ),
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


@staff_view()
def statistics_export(request: HttpRequest, table: str) -> HttpResponse:
    """One statistics table as CSV (UTF-8 with BOM) or .xlsx (?format=csv|xlsx); audited."""
    if not can_see_statistics(request.user):
        raise PermissionDenied
    if table not in (*TABLES, *CLINIC_TABLES):
        raise Http404
    try:
        fmt = export_format(request.GET.get("format"))
    except UnknownFormat:
        return HttpResponseBadRequest(
            _("Unknown export format “%(format)s”: use csv or xlsx.")
            % {"format": request.GET.get("format", "")},
            content_type="text/plain; charset=utf-8",
        )
    start, end, period, _error = _statistics_range(request)
    if table in CLINIC_TABLES:
        chinese = (request.LANGUAGE_CODE or "").startswith("zh")
        export = clinic_tables(clinic_statistics(start=start, end=end), chinese=chinese)[table]
    else:
        export = workload_statistics(
            records=_range_records(start, end), start=start, end=end, period=period
        ).table(table)
    audit_log(
        actor=request.user,
        action=AuditEvent.Action.DOWNLOAD,
        object_type="clinic.statistics",
        object_id=table,
        object_repr=f"{table} {start:%Y-%m-%d}..{end:%Y-%m-%d}",
        changes={
            "start": start.isoformat(),
            "end": end.isoformat(),
            "period": period,
            "format": fmt,
        },
    )
    return table_response(export, fmt, f"statistics-{table}-{start:%Y%m%d}-{end:%Y%m%d}")
