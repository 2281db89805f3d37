"""Clinic statistics for a date range: activity, AI findings, quality, AI–doctor agreement.

Agreement compares, per screening, the doctor's signed conclusion with the AI's positive
findings, grouped into conditions both can express (AGREEMENT_CATEGORIES). A screening counts
for a condition only when an AI model assessed it there (some finding's label belongs to the
condition) and the analysis was gradable: otherwise "no AI finding" would mean "not looked at".
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Count, Prefetch
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ai_engine.models import Analysis, AnalysisStatus, Finding
from screening.models import ConclusionCode, DoctorReview, Recommendation, ScreeningRecord

REFERRAL_RECOMMENDATIONS = {Recommendation.REFER, Recommendation.URGENT}


@dataclass(frozen=True)
class Category:
    code: str
    label: str
    doctor_codes: frozenset[str]
    ai_labels: frozenset[str]  # lower-cased model label codes


def _labels(*codes: str) -> frozenset[str]:
    return frozenset(code.lower() for code in codes)


DR_GRADES = ("1", "2", "3", "4", "grade1", "grade2", "grade3", "grade4")
AGREEMENT_CATEGORIES: tuple[Category, ...] = (
    Category(
        "dr",
        _("Diabetic retinopathy"),
        frozenset(
            {
                ConclusionCode.DR_MILD,
                ConclusionCode.DR_MODERATE,
                ConclusionCode.DR_SEVERE,
                ConclusionCode.DR_PROLIFERATIVE,
            }
        ),
        # ODIR "D", a binary/RETFound "DR", ICDR grades 1–4 of a grading model.
        _labels(
            "D",
            "DR",
            "diabetic_retinopathy",
            "npdr",
            "pdr",
            "dr_mild",
            "dr_moderate",
            "dr_severe",
            "dr_proliferative",
            *DR_GRADES,
        ),
    ),
    Category(
        "glaucoma",
        _("Glaucoma"),
        frozenset({ConclusionCode.GLAUCOMA_SUSPECT}),
        _labels("G", "glaucoma", "glaucoma_suspect"),
    ),
    Category(
        "cataract", _("Cataract"), frozenset({ConclusionCode.CATARACT}), _labels("C", "cataract")
    ),
    Category("amd", _("AMD"), frozenset({ConclusionCode.AMD}), _labels("A", "AMD")),
    Category(
        "hypertensive",
        _("Hypertensive retinopathy"),
        frozenset({ConclusionCode.HYPERTENSIVE}),
        _labels("H", "hypertensive", "hypertensive_retinopathy", "hypertension"),
    ),
    Category(
        "myopia",
        _("Pathological myopia"),
        frozenset({ConclusionCode.MYOPIA}),
        _labels("M", "myopia", "pathological_myopia"),
    ),
)
# Labels that only say "not diseased" for a grading model: they mark the condition as assessed.
ASSESSED_ONLY = {"dr": _labels("0", "grade0")}


@dataclass
class Agreement:
    category: Category
    both_positive: int = 0
    ai_only: int = 0
    doctor_only: int = 0
    both_negative: int = 0

    @property
    def total(self) -> int:
        return self.both_positive + self.ai_only + self.doctor_only + self.both_negative

    @property
    def agreed(self) -> int:
        return self.both_positive + self.both_negative

    @property
    def rate(self) -> float | None:
        return self.agreed / self.total if self.total else None


@dataclass
class ClinicStatistics:
    start: dt.date
    end: dt.date
    per_day: list[tuple[dt.date, int]]
    screenings: int
    findings: list[tuple[str, str, str, int]]  # (code, label_zh, label_en, photos)
    analyses_graded: int
    analyses_ungradable: int
    agreements: list[Agreement]
    reviews_signed: int
    referrals: int
    recommendations: Counter = field(default_factory=Counter)

    @property
    def ungradable_rate(self) -> float | None:
        total = self.analyses_graded + self.analyses_ungradable
        return self.analyses_ungradable / total if total else None

    @property
    def referral_rate(self) -> float | None:
        return self.referrals / self.reviews_signed if self.reviews_signed else None


def _bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=tz),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
    )


def clinic_statistics(*, start: dt.date, end: dt.date) -> ClinicStatistics:
    """Everything the statistics page shows, for screenings made from `start` to `end` inclusive."""
    low, high = _bounds(start, end)
    records = ScreeningRecord.objects.filter(screened_at__gte=low, screened_at__lt=high)

    counts = dict(
        records.annotate(day=TruncDate("screened_at", tzinfo=timezone.get_current_timezone()))
        .values_list("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    per_day = [
        (start + dt.timedelta(days=offset), counts.get(start + dt.timedelta(days=offset), 0))
        for offset in range((end - start).days + 1)
    ]

    analyses = Analysis.objects.filter(image__record__in=records)
    status_counts = dict(
        analyses.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    findings = list(
        Finding.objects.filter(
            analysis__in=analyses.filter(status=AnalysisStatus.DONE), positive=True
        )
        .values("label_code")
        .annotate(photos=Count("analysis__image", distinct=True))
        .order_by("-photos", "label_code")
        .values_list("label_code", "photos")
    )
    names = {
        code: (zh, en)
        for code, zh, en in Finding.objects.filter(label_code__in=[code for code, _n in findings])
        .values_list("label_code", "label_zh", "label_en")
        .distinct()
    }
    finding_rows = [(code, *names.get(code, (code, code)), photos) for code, photos in findings]

    signed = _latest_signed_reviews(records)
    recommendations = Counter(review.recommendation for review in signed.values())
    referrals = sum(recommendations[code] for code in REFERRAL_RECOMMENDATIONS)

    return ClinicStatistics(
        start=start,
        end=end,
        per_day=per_day,
        screenings=sum(counts.values()),
        findings=finding_rows,
        analyses_graded=status_counts.get(AnalysisStatus.DONE, 0),
        analyses_ungradable=status_counts.get(AnalysisStatus.UNGRADABLE, 0),
        agreements=_agreements(records.filter(pk__in=signed.keys()), signed),
        reviews_signed=len(signed),
        referrals=referrals,
        recommendations=recommendations,
    )


def _latest_signed_reviews(records) -> dict[int, DoctorReview]:
    latest: dict[int, DoctorReview] = {}
    for review in DoctorReview.objects.filter(record__in=records, signed_at__isnull=False).order_by(
        "record_id", "-version"
    ):
        latest.setdefault(review.record_id, review)
    return latest


def _agreements(records, signed: dict[int, DoctorReview]) -> list[Agreement]:
    done = Analysis.objects.filter(status=AnalysisStatus.DONE).prefetch_related(
        Prefetch("findings", queryset=Finding.objects.only("analysis_id", "label_code", "positive"))
    )
    results = {category.code: Agreement(category) for category in AGREEMENT_CATEGORIES}
    for record in records.prefetch_related(Prefetch("images__analyses", queryset=done)):
        assessed: set[str] = set()
        ai_positive: set[str] = set()
        for image in record.images.all():
            for analysis in image.analyses.all():
                for finding in analysis.findings.all():
                    code = finding.label_code.lower()
                    for category in AGREEMENT_CATEGORIES:
                        if code in category.ai_labels:
                            assessed.add(category.code)
                            if finding.positive:
                                ai_positive.add(category.code)
                        elif code in ASSESSED_ONLY.get(category.code, ()):
                            assessed.add(category.code)
        doctor_codes = set(signed[record.pk].conclusion_codes)
        if ConclusionCode.UNGRADABLE in doctor_codes:
            continue
        for category in AGREEMENT_CATEGORIES:
            if category.code not in assessed:
                continue
            ai = category.code in ai_positive
            doctor = bool(doctor_codes & category.doctor_codes)
            agreement = results[category.code]
            if ai and doctor:
                agreement.both_positive += 1
            elif ai:
                agreement.ai_only += 1
            elif doctor:
                agreement.doctor_only += 1
            else:
                agreement.both_negative += 1
    return list(results.values())
