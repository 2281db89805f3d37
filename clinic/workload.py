"""Statistics a manager asks for: turnaround, workload per doctor and per technician, and the
referral rate by condition over time. Each comes as a `core.tabular.Table`, which the
statistics page shows and the exports download (CSV / .xlsx), so both always agree.

Turnaround is first photo upload → first signed review (clinic.turnaround), in hours, per
screening. Screenings are taken by the day they were screened (clinic time); periods are ISO
weeks (from Monday) or calendar months.

Referral rate by condition: of the screenings with a signed review in a period (the latest
signed version counts), the share the doctor referred (recommendation "refer" or "urgent",
for the visit or either eye) with the condition in the conclusion (visit or either eye).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from ai_engine.models import Analysis, AnalysisStatus
from clinic.charts import LineChart, line_chart
from clinic.statistics import AGREEMENT_CATEGORIES, REFERRAL_RECOMMENDATIONS, ClinicStatistics
from clinic.turnaround import median, percentile, with_turnaround
from core.tabular import Table
from screening.models import DoctorReview, FundusImage, ScreeningRecord
from screening.selectors import current_reviews

WEEK = "week"
MONTH = "month"
PERIODS = (WEEK, MONTH)
TABLES = ("turnaround", "doctors", "technicians", "referrals")
# The statistics page's other tables (clinic.statistics), exported the same way.
CLINIC_TABLES = ("per_day", "findings", "agreement")
P90 = 0.9


def period_start(day: dt.date, period: str) -> dt.date:
    if period == MONTH:
        return day.replace(day=1)
    return day - dt.timedelta(days=day.weekday())


def periods_between(start: dt.date, end: dt.date, period: str) -> list[dt.date]:
    """Every period that overlaps start..end, in order (its first day)."""
    first = period_start(start, period)
    result = []
    current = first
    while current <= end:
        result.append(current)
        if period == MONTH:
            current = (current.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        else:
            current += dt.timedelta(days=7)
    return result


def period_label(first_day: dt.date, period: str) -> str:
    if period == MONTH:
        return f"{first_day:%Y-%m}"
    iso = first_day.isocalendar()
    return _("%(year)d week %(week)02d (from %(day)s)") % {
        "year": iso.year,
        "week": iso.week,
        "day": f"{first_day:%m-%d}",
    }


def _local_day(moment: dt.datetime) -> dt.date:
    return timezone.localtime(moment).date()


def _hours(duration: dt.timedelta) -> float:
    return round(duration.total_seconds() / 3600, 2)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _person(user) -> str:
    return user.get_full_name() or user.get_username()


@dataclass
class Workload:
    """The four tables and the referral chart for screenings made from `start` to `end`."""

    start: dt.date
    end: dt.date
    period: str
    turnaround: Table
    doctors: Table
    technicians: Table
    referrals: Table
    referral_chart: LineChart

    def table(self, name: str) -> Table:
        return getattr(self, name)

    @property
    def tables(self) -> list[tuple[str, Table]]:
        return [(name, self.table(name)) for name in TABLES]


def workload_statistics(*, records: QuerySet[ScreeningRecord], start, end, period) -> Workload:
    """Everything above for `records` (the screenings of the range), in a fixed number of
    queries."""
    signed_records = list(
        with_turnaround(records.select_related(None))
        .filter(first_upload_at__isnull=False, first_signed_at__isnull=False)
        .values_list("pk", "screened_at", "first_upload_at", "first_signed_at")
    )
    turnaround_hours = {
        pk: _hours(signed - uploaded) for pk, _s, uploaded, signed in signed_records
    }
    periods = periods_between(start, end, period)
    referrals, chart = _referrals(records, periods, period)
    return Workload(
        start=start,
        end=end,
        period=period,
        turnaround=_turnaround_table(signed_records, turnaround_hours, periods, period),
        doctors=_doctor_table(records, turnaround_hours),
        technicians=_technician_table(records),
        referrals=referrals,
        referral_chart=chart,
    )


def _turnaround_table(signed_records, hours: dict[int, float], periods, period) -> Table:
    table = Table(
        title=_("Turnaround"),
        columns=[
            _("Period"),
            _("Signed screenings"),
            _("Median turnaround (hours)"),
            _("90th percentile (hours)"),
        ],
    )
    by_period: dict[dt.date, list[float]] = defaultdict(list)
    for pk, screened_at, _uploaded, _signed in signed_records:
        by_period[period_start(_local_day(screened_at), period)].append(hours[pk])
    for first_day in periods:
        values = by_period.get(first_day, [])
        table.add(
            [
                period_label(first_day, period),
                len(values),
                _round(median(values)),
                _round(percentile(values, P90)),
            ]
        )
    every = list(hours.values())
    table.add([_("All"), len(every), _round(median(every)), _round(percentile(every, P90))])
    return table


def _doctor_table(records, hours: dict[int, float]) -> Table:
    """Signed reviews per doctor (amendments count too); the median turnaround of the
    screenings the doctor signed first."""
    table = Table(
        title=_("Doctors' workload"),
        columns=[
            _("Doctor"),
            _("Reviews signed"),
            _("Screenings signed first"),
            _("Median turnaround (hours)"),
        ],
    )
    signed = (
        DoctorReview.objects.filter(record__in=records, signed_at__isnull=False)
        .select_related("doctor")
        .order_by("record_id", "signed_at", "id")
    )
    reviews: Counter = Counter()
    first_hours: dict[int, list[float]] = defaultdict(list)
    people = {}
    seen: set[int] = set()
    for review in signed:
        people[review.doctor_id] = review.doctor
        reviews[review.doctor_id] += 1
        if review.record_id not in seen:
            seen.add(review.record_id)
            if review.record_id in hours:
                first_hours[review.doctor_id].append(hours[review.record_id])
    for doctor_id in sorted(people, key=lambda pk: (-reviews[pk], _person(people[pk]))):
        table.add(
            [
                _person(people[doctor_id]),
                reviews[doctor_id],
                len(first_hours[doctor_id]),
                _round(median(first_hours[doctor_id])),
            ]
        )
    return table


def _technician_table(records) -> Table:
    """Visits by their operator; photos and the AI's ungradable share by who uploaded them."""
    table = Table(
        title=_("Technicians' workload"),
        columns=[
            _("Technician"),
            _("Screenings"),
            _("Photos"),
            _("Ungradable analyses"),
            _("Ungradable rate (%)"),
        ],
    )
    visits = Counter(dict(records.order_by().values_list("operator").annotate(n=Count("id"))))
    photos = Counter(
        dict(
            FundusImage.objects.filter(record__in=records)
            .order_by()
            .values_list("uploaded_by")
            .annotate(n=Count("id"))
        )
    )
    graded = {
        uploader: (done, bad)
        for uploader, done, bad in Analysis.objects.filter(image__record__in=records)
        .order_by()
        .values_list("image__uploaded_by")
        .annotate(
            done=Count("id", filter=Q(status=AnalysisStatus.DONE)),
            bad=Count("id", filter=Q(status=AnalysisStatus.UNGRADABLE)),
        )
        .values_list("image__uploaded_by", "done", "bad")
    }
    people = get_user_model().objects.in_bulk([*visits, *photos])
    for pk in sorted(people, key=lambda pk: (-visits[pk], -photos[pk], _person(people[pk]))):
        done, bad = graded.get(pk, (0, 0))
        rate = _round(100 * bad / (done + bad)) if done + bad else None
        table.add([_person(people[pk]), visits[pk], photos[pk], bad, rate])
    return table


def _referrals(records, periods: list[dt.date], period: str) -> tuple[Table, LineChart]:
    columns = [_("Period"), _("Signed screenings"), _("Referred"), _("Referral rate (%)")]
    columns += [
        _("%(condition)s referred (%%)") % {"condition": c.label} for c in AGREEMENT_CATEGORIES
    ]
    table = Table(title=_("Referral rate by condition"), columns=columns)
    latest = current_reviews(records=records)
    signed: Counter = Counter()
    referred: Counter = Counter()
    by_condition: dict[dt.date, Counter] = defaultdict(Counter)
    for review in latest.values():
        first_day = period_start(_local_day(review.record.screened_at), period)
        signed[first_day] += 1
        recommendations = {
            review.recommendation,
            review.recommendation_od,
            review.recommendation_os,
        }
        if not recommendations & REFERRAL_RECOMMENDATIONS:
            continue
        referred[first_day] += 1
        codes = {
            *review.conclusion_codes,
            *review.conclusion_codes_od,
            *review.conclusion_codes_os,
        }
        for category in AGREEMENT_CATEGORIES:
            if codes & category.doctor_codes:
                by_condition[first_day][category.code] += 1

    def rate(part: int, total: int) -> float | None:
        return round(100 * part / total, 1) if total else None

    series: dict[str, list[float | None]] = {c.code: [] for c in AGREEMENT_CATEGORIES}
    for first_day in periods:
        total = signed[first_day]
        table.add(
            [
                period_label(first_day, period),
                total,
                referred[first_day],
                rate(referred[first_day], total),
                *(rate(by_condition[first_day][c.code], total) for c in AGREEMENT_CATEGORIES),
            ]
        )
        for category in AGREEMENT_CATEGORIES:
            series[category.code].append(rate(by_condition[first_day][category.code], total))
    values = [v for vs in series.values() for v in vs if v is not None]
    top = max(values, default=0)
    y_max = max(10, -(-top // 10) * 10)
    chart = line_chart(
        x_labels=[f"{d:%Y-%m}" if period == MONTH else f"{d:%m-%d}" for d in periods],
        series=[
            (str(c.label), f"condition-{c.code}", series[c.code])
            for c in AGREEMENT_CATEGORIES
            if any(v for v in series[c.code])
        ],
        y_min=0,
        y_max=y_max,
        y_step=y_max / 5,
    )
    return table, chart


def clinic_tables(stats: ClinicStatistics, *, chinese: bool) -> dict[str, Table]:
    """The page's activity, AI findings and AI–doctor agreement as downloadable tables."""
    per_day = Table(title=_("Screenings per day"), columns=[_("Day"), _("Screenings")])
    for day, count in stats.per_day:
        per_day.add([day, count])
    findings = Table(title=_("AI findings"), columns=[_("Code"), _("Finding"), _("Photos")])
    for code, zh, en, photos in stats.findings:
        findings.add([code, zh if chinese else en, photos])
    agreement = Table(
        title=_("AI–doctor agreement"),
        columns=[
            _("Condition"),
            _("Cases"),
            _("Both positive"),
            _("AI only"),
            _("Doctor only"),
            _("Both negative"),
            _("Agreement (%)"),
            _("Sensitivity (%)"),
            _("Specificity (%)"),
        ],
    )

    def percent(value: float | None) -> float | None:
        return None if value is None else round(100 * value, 1)

    for row in [*stats.agreements, stats.dr.referable, stats.dr.dme]:
        agreement.add(
            [
                str(row.category.label),
                row.total,
                row.both_positive,
                row.ai_only,
                row.doctor_only,
                row.both_negative,
                percent(row.rate),
                percent(row.sensitivity),
                percent(row.specificity),
            ]
        )
    return {"per_day": per_day, "findings": findings, "agreement": agreement}
