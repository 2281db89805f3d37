"""Clinic statistics for a date range: activity, AI findings, quality, AI–doctor agreement.

Agreement compares, per screening, the doctor's signed conclusion with the AI's positive
findings, grouped into conditions both can express (AGREEMENT_CATEGORIES). A screening counts
for a condition only when an AI model assessed it there (some finding's label belongs to the
condition) and the analysis was gradable: otherwise "no AI finding" would mean "not looked at".
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Prefetch
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ai_engine.conditions import AGREEMENT_CATEGORIES, ASSESSED_ONLY, Category
from ai_engine.inference.diabetic import EyeDiabetic
from ai_engine.learning import ShadowComparison, shadow_comparisons
from ai_engine.models import Analysis, AnalysisStatus, Finding
from ai_engine.selectors import record_diabetic_eyes
from clinic.diabetic import GRADES, quadratic_weighted_kappa
from screening.icd10 import code_name
from screening.models import (
    DR_REFERABLE_FROM,
    ConclusionCode,
    DoctorReview,
    DrGrade,
    Recommendation,
    ScreeningRecord,
)
from screening.selectors import current_reviews

REFERRAL_RECOMMENDATIONS = {Recommendation.REFER, Recommendation.URGENT}


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

    @property
    def sensitivity(self) -> float | None:
        """Of the cases the doctor called positive, the share the AI called positive too."""
        positive = self.both_positive + self.doctor_only
        return self.both_positive / positive if positive else None

    @property
    def specificity(self) -> float | None:
        """Of the cases the doctor called negative, the share the AI called negative too."""
        negative = self.both_negative + self.ai_only
        return self.both_negative / negative if negative else None

    def add(self, *, ai: bool, doctor: bool) -> None:
        if ai and doctor:
            self.both_positive += 1
        elif ai:
            self.ai_only += 1
        elif doctor:
            self.doctor_only += 1
        else:
            self.both_negative += 1


REFERABLE_DR = Category(
    "referable_dr", _("Referable DR (R2 or worse), per eye"), frozenset(), frozenset()
)
MACULAR_OEDEMA = Category("dme", _("Macular oedema, per eye"), frozenset(), frozenset())


@dataclass
class Share:
    """`part` of `total` (eyes or visits)."""

    part: int = 0
    total: int = 0

    @property
    def rate(self) -> float | None:
        return self.part / self.total if self.total else None


@dataclass
class DrStatistics:
    """Diabetic eyes: the AI's argmax ICDR grades (every screened eye a DR model read) and the
    doctors' grades (latest signed review only), referral rates, and their agreement per eye
    where both graded."""

    ai_grades: list[int] = field(default_factory=lambda: [0] * GRADES)
    doctor_grades: list[int] = field(default_factory=lambda: [0] * GRADES)
    doctor_ungradable: int = 0
    ai_referable_eyes: Share = field(default_factory=Share)
    ai_referable_visits: Share = field(default_factory=Share)
    doctor_referable_eyes: Share = field(default_factory=Share)
    doctor_referable_visits: Share = field(default_factory=Share)
    referable: Agreement = field(default_factory=lambda: Agreement(REFERABLE_DR))
    dme: Agreement = field(default_factory=lambda: Agreement(MACULAR_OEDEMA))
    grade_pairs: list[tuple[int, int]] = field(default_factory=list)  # (AI, doctor)

    @property
    def grade_rows(self) -> list[tuple[str, int, int]]:
        """(grade label, AI eyes, doctor eyes) for R0–R4."""
        labels = dict(DrGrade.choices)
        return [
            (str(labels[str(g)]), self.ai_grades[g], self.doctor_grades[g]) for g in range(GRADES)
        ]

    @property
    def exact(self) -> Share:
        return Share(sum(a == d for a, d in self.grade_pairs), len(self.grade_pairs))

    @property
    def within_one(self) -> Share:
        return Share(sum(abs(a - d) <= 1 for a, d in self.grade_pairs), len(self.grade_pairs))

    @property
    def kappa(self) -> float | None:
        return quadratic_weighted_kappa(self.grade_pairs)

    @property
    def any(self) -> bool:
        return bool(sum(self.ai_grades) or sum(self.doctor_grades) or self.doctor_ungradable)


@dataclass(frozen=True)
class DiagnosisCount:
    """One ICD-10 code in the latest signed reviews: eyes per side and screenings."""

    code: str
    od: int
    os: int
    screenings: int

    @property
    def name(self) -> str:
        return code_name(self.code)

    @property
    def eyes(self) -> int:
        return self.od + self.os


def _diagnosis_counts(signed: dict[int, DoctorReview]) -> list[DiagnosisCount]:
    """Per ICD-10 code: the eyes (right, left) and screenings whose latest signed review
    records it; most eyes first."""
    per_eye: dict[str, Counter] = {"od": Counter(), "os": Counter()}
    screenings: Counter = Counter()
    for review in signed.values():
        for eye in ("od", "os"):
            per_eye[eye].update(set(getattr(review, f"diagnosis_codes_{eye}")))
        screenings.update(set(review.diagnosis_codes_od) | set(review.diagnosis_codes_os))
    rows = [
        DiagnosisCount(code, per_eye["od"][code], per_eye["os"][code], count)
        for code, count in screenings.items()
    ]
    return sorted(rows, key=lambda row: (-row.eyes, row.code))


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
    dr: DrStatistics = field(default_factory=DrStatistics)
    shadow: list[ShadowComparison] = field(default_factory=list)
    diagnoses: list[DiagnosisCount] = field(default_factory=list)

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

    analyses = Analysis.objects.visible().filter(image__record__in=records)
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

    signed = current_reviews(records=records)
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
        dr=_dr_statistics(records, signed),
        shadow=shadow_comparisons(records=records),
        diagnoses=_diagnosis_counts(signed),
    )


def _agreements(records, signed: dict[int, DoctorReview]) -> list[Agreement]:
    done = (
        Analysis.objects.visible()
        .filter(status=AnalysisStatus.DONE)
        .prefetch_related(
            Prefetch(
                "findings", queryset=Finding.objects.only("analysis_id", "label_code", "positive")
            )
        )
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


def _diabetic_by_record(records) -> dict[int, dict[str, EyeDiabetic]]:
    """record_diabetic_eyes for every record, in a fixed number of queries."""
    analyses = (
        Analysis.objects.visible()
        .filter(image__record__in=records)
        .select_related("image", "package")
        .prefetch_related(
            Prefetch(
                "findings",
                queryset=Finding.objects.only("analysis_id", "label_code", "probability"),
            )
        )
        .order_by("run")
    )
    latest: dict[int, dict[tuple[int, int], Analysis]] = defaultdict(dict)
    for analysis in analyses:
        latest[analysis.image.record_id][(analysis.image_id, analysis.package_id)] = analysis
    return {
        record.pk: record_diabetic_eyes(
            record=record, analyses=list(latest.get(record.pk, {}).values())
        )
        for record in records.prefetch_related("images")
    }


def _dr_statistics(records, signed: dict[int, DoctorReview]) -> DrStatistics:
    stats = DrStatistics()
    for record_id, eyes in _diabetic_by_record(records).items():
        review = signed.get(record_id)
        doctor = {eye.eye: eye for eye in review.diabetic_eyes} if review is not None else {}
        ai_visit: list[bool] = []
        doctor_visit: list[bool] = []
        for code, ai in eyes.items():
            if ai.dr is not None:
                stats.ai_grades[ai.dr.grade] += 1
            if ai.assessed:
                ai_visit.append(ai.referable)
            graded = doctor.get(code)
            if graded is None:
                continue
            if graded.grade is not None:
                stats.doctor_grades[graded.grade] += 1
            elif graded.ungradable:
                stats.doctor_ungradable += 1
            if graded.referable is not None:
                doctor_visit.append(graded.referable)
            if ai.dr is not None and graded.grade is not None:
                stats.grade_pairs.append((ai.dr.grade, graded.grade))
                stats.referable.add(ai=ai.dr.referable, doctor=graded.grade >= DR_REFERABLE_FROM)
            if ai.dme is not None and graded.dme is not None:
                stats.dme.add(ai=ai.dme.positive, doctor=graded.dme)
        for visit, eyes_share, visits_share in (
            (ai_visit, stats.ai_referable_eyes, stats.ai_referable_visits),
            (doctor_visit, stats.doctor_referable_eyes, stats.doctor_referable_visits),
        ):
            if visit:
                eyes_share.part += sum(visit)
                eyes_share.total += len(visit)
                visits_share.part += any(visit)
                visits_share.total += 1
    return stats
