"""Drift watch for the operations page: per ISO week, the active models' ungradable rate,
positive rate per condition and agreement with signed reviews, each flagged when it moves
beyond the configured band from its trailing baseline (a new camera, a new operator, a model
gone stale).

A week's value is flagged when it differs from the mean of the previous
``AI_DRIFT_BASELINE_WEEKS`` weeks that had data (at least two) by more than ``AI_DRIFT_BAND``
(absolute) and by at least two binomial standard errors, so a handful of photos does not
raise an alarm.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Prefetch
from django.utils import timezone

from ai_engine.learning import (
    CONDITIONS,
    READ_FINDING_FIELDS,
    UNREAD_ANALYSIS_FIELDS,
    Reading,
    analysis_reading,
    case_reading,
    signed_cases,
)
from ai_engine.models import Analysis, AnalysisStatus, Finding, PackageState
from screening.models import ScreeningRecord

Z_MIN = 2.0


@dataclass
class DriftValue:
    """One week's share (`part` of `total`) and how it compares with its baseline."""

    part: int = 0
    total: int = 0
    baseline: float | None = None
    flagged: bool = False

    @property
    def rate(self) -> float | None:
        return self.part / self.total if self.total else None


@dataclass
class DriftWeek:
    start: dt.date  # the Monday
    photos: int = 0
    ungradable: DriftValue = field(default_factory=DriftValue)
    positive: dict[str, DriftValue] = field(default_factory=dict)
    agreement: DriftValue = field(default_factory=DriftValue)

    @property
    def label(self) -> str:
        year, week, _day = self.start.isocalendar()
        return f"{year}-W{week:02d}"

    def values(self) -> list[DriftValue]:
        return [self.ungradable, *self.positive.values(), self.agreement]

    @property
    def flagged(self) -> bool:
        return any(value.flagged for value in self.values())


@dataclass
class DriftTable:
    weeks: list[DriftWeek]  # oldest first, the shown weeks only
    conditions: list[tuple[str, str]]  # (code, label) with data in some shown week
    band: float
    baseline_weeks: int

    @property
    def flagged_weeks(self) -> list[DriftWeek]:
        return [week for week in self.weeks if week.flagged]


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def drift_weeks(*, now: dt.datetime | None = None) -> DriftTable:
    """The last ``AI_DRIFT_WEEKS`` ISO weeks (this one included) of the active packages'
    visible analyses of photos uploaded in them, and of the screenings signed since."""
    now = now or timezone.now()
    shown = int(settings.AI_DRIFT_WEEKS)
    baseline_weeks = int(settings.AI_DRIFT_BASELINE_WEEKS)
    band = float(settings.AI_DRIFT_BAND)
    this_week = _monday(timezone.localdate(now))
    mondays = [this_week - dt.timedelta(weeks=n) for n in range(shown + baseline_weeks - 1, -1, -1)]
    tz = timezone.get_current_timezone()
    since = dt.datetime.combine(mondays[0], dt.time.min, tzinfo=tz)
    weeks = {monday: DriftWeek(monday) for monday in mondays}

    analyses = (
        Analysis.objects.visible()
        .filter(
            package__state=PackageState.ACTIVE,
            image__uploaded_at__gte=since,
            status__in=(AnalysisStatus.DONE, AnalysisStatus.UNGRADABLE),
        )
        .select_related("package", "image")
        .defer(*UNREAD_ANALYSIS_FIELDS)
        .prefetch_related(Prefetch("findings", queryset=Finding.objects.only(*READ_FINDING_FIELDS)))
        .order_by("run")
    )
    latest: dict[tuple[int, int], Analysis] = {}
    for analysis in analyses:
        latest[(analysis.image_id, analysis.package_id)] = analysis
    per_image: dict[int, list[Analysis]] = {}
    for analysis in latest.values():
        per_image.setdefault(analysis.image_id, []).append(analysis)
    readings: dict[int, Reading] = {}
    for image_id, image_analyses in per_image.items():
        week = weeks.get(_monday(timezone.localdate(image_analyses[0].image.uploaded_at)))
        if week is None:
            continue
        week.photos += 1
        done = [a for a in image_analyses if a.status == AnalysisStatus.DONE]
        week.ungradable.total += 1
        week.ungradable.part += not done
        reading: Reading = {}
        for analysis in done:
            for code, positive in analysis_reading(analysis).items():
                reading[code] = reading.get(code, False) or positive
        readings[image_id] = reading
        for code, positive in reading.items():
            value = week.positive.setdefault(code, DriftValue())
            value.total += 1
            value.part += positive

    records = ScreeningRecord.objects.filter(screened_at__gte=since)
    screened = dict(records.values_list("pk", "screened_at"))
    for case in signed_cases(records=records):
        reading = case_reading(case, readings)
        week = weeks.get(_monday(timezone.localdate(screened[case.record_id])))
        if reading is None or week is None:
            continue
        for code, ai in reading.items():
            week.agreement.total += 1
            week.agreement.part += ai == (code in case.doctor)

    ordered = [weeks[monday] for monday in mondays]
    codes = sorted({c for w in ordered for c in w.positive}, key=list(CONDITIONS).index)
    for index, week in enumerate(ordered):
        history = ordered[max(0, index - baseline_weeks) : index]
        _flag(week.ungradable, [w.ungradable for w in history], band)
        _flag(week.agreement, [w.agreement for w in history], band)
        for code in codes:
            value = week.positive.setdefault(code, DriftValue())
            _flag(value, [w.positive.get(code, DriftValue()) for w in history], band)
        week.positive = {code: week.positive[code] for code in codes}
    shown_weeks = ordered[-shown:]
    shown_codes = [c for c in codes if any(w.positive[c].total for w in shown_weeks)]
    for week in shown_weeks:
        week.positive = {code: week.positive[code] for code in shown_codes}
    return DriftTable(
        weeks=shown_weeks,
        conditions=[(code, str(CONDITIONS[code].label)) for code in shown_codes],
        band=band,
        baseline_weeks=baseline_weeks,
    )


def _flag(value: DriftValue, history: list[DriftValue], band: float) -> None:
    rates = [h.rate for h in history if h.rate is not None]
    if len(rates) < 2 or value.rate is None:
        return
    baseline = sum(rates) / len(rates)
    value.baseline = baseline
    clipped = min(max(baseline, 0.5 / value.total), 1 - 0.5 / value.total)
    z = (value.rate - baseline) / math.sqrt(clipped * (1 - clipped) / value.total)
    value.flagged = abs(value.rate - baseline) > band and abs(z) >= Z_MIN
