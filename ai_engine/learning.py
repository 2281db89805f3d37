"""The learning loop's reads: a package's agreement with the clinic's signed reviews, per
condition, and the promotion gate's comparison of a candidate with the active package.

Cases. A signed screening (its latest signed review) gives one case per eye when the doctor
filled in that eye's conclusion (``conclusion_codes_od/os``); otherwise one case for the visit,
read from the visit-level conclusion, with the AI positive when either eye's photo is. The
doctor's ICDR grade of an eye (R1 or worse) also counts as DR for that eye. A case the doctor
called ungradable is left out. A package assesses a condition on a case when its latest
finished (gradable) analysis of the eye's photo has a label of that condition; its positives
are read by the card's decision rule (``analysis_findings``), shadow runs included.

Held-out cases (what a candidate never trained on). A card listing ``trained_on_keys`` (the
salted patient keys of ``training_patient_key``) is evaluated on the signed screenings of the
other patients; a card without keys on the screenings signed after its ``trained_at`` date,
else after the package was registered.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ai_engine.conditions import AGREEMENT_CATEGORIES, ASSESSED_ONLY, Category
from ai_engine.models import Analysis, AnalysisStatus, Finding, ModelPackage
from ai_engine.selectors import analysis_findings
from ai_engine.training_export import export_salt, training_patient_key
from screening.models import ConclusionCode, DoctorReview, Eye, FundusImage, ScreeningRecord
from screening.selectors import current_reviews

CONDITIONS: dict[str, Category] = {category.code: category for category in AGREEMENT_CATEGORIES}
# What reading a run needs: not its large JSON (result, metrics, timings), nor the heatmaps.
UNREAD_ANALYSIS_FIELDS = ("result", "quality_metrics", "timings", "quality_reasons", "error")
READ_FINDING_FIELDS = (
    "analysis_id",
    "label_code",
    "label_zh",
    "label_en",
    "probability",
    "threshold",
    "positive",
    "referable",
    "cam_method",
    "abnormal_areas",
)
BOOTSTRAP_SAMPLES = 400
BOOTSTRAP_SEED = 20261205
WILSON_Z = 1.959964  # 95 %


# --- patient keys -----------------------------------------------------------------------------
def patient_training_key(patient_pk: int) -> str:
    """The salted key a training export writes for a patient (ai_engine.training_export): the
    card lists these, never the IDs."""
    return training_patient_key(patient_pk=patient_pk, salt=export_salt())


# --- statistics -------------------------------------------------------------------------------
def wilson_interval(part: int, total: int, z: float = WILSON_Z) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion `part`/`total`; None without cases."""
    if total <= 0:
        return None
    p = part / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def cohen_kappa(tp: int, fp: int, fn: int, tn: int) -> float | None:
    """Cohen's kappa of two binary raters from their 2×2 table; None when undefined."""
    n = tp + fp + fn + tn
    if n == 0:
        return None
    observed = (tp + tn) / n
    expected = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1 - expected)


def kappa_interval(
    tp: int, fp: int, fn: int, tn: int, *, samples: int = BOOTSTRAP_SAMPLES
) -> tuple[float, float] | None:
    """A percentile bootstrap 95 % interval of Cohen's kappa (cases resampled, fixed seed)."""
    import numpy as np

    n = tp + fp + fn + tn
    if n == 0:
        return None
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    tables = rng.multinomial(n, [tp / n, fp / n, fn / n, tn / n], size=samples)
    values = sorted(k for k in (cohen_kappa(*map(int, row)) for row in tables) if k is not None)
    if not values:
        return None
    return values[int(0.025 * (len(values) - 1))], values[int(0.975 * (len(values) - 1))]


@dataclass
class ConditionAgreement:
    """One package against the doctors on one condition: the 2×2 table and its measures."""

    code: str
    tp: int = 0  # AI and doctor positive
    fp: int = 0  # AI only
    fn: int = 0  # doctor only
    tn: int = 0

    def add(self, *, ai: bool, doctor: bool) -> None:
        if ai and doctor:
            self.tp += 1
        elif ai:
            self.fp += 1
        elif doctor:
            self.fn += 1
        else:
            self.tn += 1

    @property
    def label(self) -> str:
        return str(CONDITIONS[self.code].label) if self.code in CONDITIONS else self.code

    @property
    def cases(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def positives(self) -> int:
        return self.tp + self.fn

    @property
    def negatives(self) -> int:
        return self.tn + self.fp

    @property
    def sensitivity(self) -> float | None:
        return self.tp / self.positives if self.positives else None

    @property
    def sensitivity_ci(self) -> tuple[float, float] | None:
        return wilson_interval(self.tp, self.positives)

    @property
    def specificity(self) -> float | None:
        return self.tn / self.negatives if self.negatives else None

    @property
    def specificity_ci(self) -> tuple[float, float] | None:
        return wilson_interval(self.tn, self.negatives)

    @property
    def kappa(self) -> float | None:
        return cohen_kappa(self.tp, self.fp, self.fn, self.tn)

    @cached_property
    def kappa_ci(self) -> tuple[float, float] | None:
        return kappa_interval(self.tp, self.fp, self.fn, self.tn)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "cases": self.cases,
            "sensitivity": _round(self.sensitivity),
            "sensitivity_ci": _round_pair(self.sensitivity_ci),
            "specificity": _round(self.specificity),
            "specificity_ci": _round_pair(self.specificity_ci),
            "kappa": _round(self.kappa),
            "kappa_ci": _round_pair(self.kappa_ci),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _round_pair(pair: tuple[float, float] | None) -> list[float] | None:
    return None if pair is None else [round(pair[0], 4), round(pair[1], 4)]


# --- cases ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One eye (or a whole visit, when the doctor concluded per visit) of a signed screening."""

    record_id: int
    eye: str  # "OD", "OS" or "" for the visit
    doctor: frozenset[str]  # the condition codes the doctor called positive
    images: tuple[tuple[int, ...], ...]  # per eye: photo IDs, preferred first


def _eye_images(record: ScreeningRecord) -> dict[str, tuple[int, ...]]:
    """Per eye, the current photos: the doctor's choice first, then the newest."""
    current = [i for i in record.images.all() if i.superseded_by_id is None]
    ordered = sorted(current, key=lambda i: (not i.chosen_for_report, -i.uploaded_at.timestamp()))
    return {eye: tuple(i.pk for i in ordered if i.eye == eye) for eye in Eye.values}


def _doctor_conditions(codes: Iterable[str], grades: Iterable[int | None]) -> frozenset[str]:
    codes = set(codes)
    positive = {c.code for c in AGREEMENT_CATEGORIES if codes & c.doctor_codes}
    if any(grade is not None and grade >= 1 for grade in grades):
        positive.add("dr")
    return frozenset(positive)


def review_cases(review: DoctorReview, record: ScreeningRecord) -> list[Case]:
    """The cases one signed review gives (see the module docstring)."""
    images = _eye_images(record)
    grades = {eye.eye: eye.grade for eye in review.diabetic_eyes}
    per_eye = {Eye.OD: review.conclusion_codes_od or [], Eye.OS: review.conclusion_codes_os or []}
    if any(per_eye.values()):
        return [
            Case(record.pk, eye, _doctor_conditions(codes, [grades.get(eye)]), (images[eye],))
            for eye, codes in per_eye.items()
            if codes and ConclusionCode.UNGRADABLE not in codes
        ]
    if not review.conclusion_codes or ConclusionCode.UNGRADABLE in review.conclusion_codes:
        return []
    return [
        Case(
            record.pk,
            "",
            _doctor_conditions(review.conclusion_codes, grades.values()),
            tuple(images[eye] for eye in Eye.values),
        )
    ]


def signed_cases(
    *, records=None, signed_after: dt.datetime | None = None, exclude_keys: Iterable[str] = ()
) -> list[Case]:
    """The cases of every signed screening (latest signed review), optionally only `records`,
    those signed after `signed_after`, and those of patients whose key is not excluded."""
    latest = current_reviews(records=records)
    excluded = set(exclude_keys)
    chosen = [
        review
        for review in latest.values()
        if (signed_after is None or review.signed_at > signed_after)
        and not (excluded and patient_training_key(review.record.patient_id) in excluded)
    ]
    photos = Prefetch(
        "images",
        queryset=FundusImage.objects.only(
            "id", "record_id", "eye", "superseded_by_id", "chosen_for_report", "uploaded_at"
        ),
    )
    by_record = {
        r.pk: r
        for r in ScreeningRecord.objects.filter(
            pk__in=[r.record_id for r in chosen]
        ).prefetch_related(photos)
    }
    return [case for review in chosen for case in review_cases(review, by_record[review.record_id])]


def held_out_cases(package: ModelPackage) -> tuple[list[Case], str]:
    """The signed cases `package` never trained on, and the rule that chose them."""
    card = package.card or {}
    keys = card.get("trained_on_keys") or []
    if keys:
        return (
            signed_cases(exclude_keys=keys),
            f"patients not among the card's {len(keys)} trained_on_keys",
        )
    trained_at = _card_datetime(str(card.get("trained_at") or ""))
    if trained_at is not None:
        return signed_cases(
            signed_after=trained_at
        ), f"signed after trained_at {trained_at:%Y-%m-%d}"
    return (
        signed_cases(signed_after=package.registered_at),
        f"signed after registration {timezone.localtime(package.registered_at):%Y-%m-%d %H:%M}",
    )


def _card_datetime(value: str) -> dt.datetime | None:
    if not value:
        return None
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value[:10])
        if day is None:
            return None
        # The whole training day counts as trained on.
        moment = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


# --- a package's reading of the cases ---------------------------------------------------------
Reading = dict[str, bool]  # condition code → AI positive, for the conditions it assessed


def analysis_reading(analysis: Analysis) -> Reading:
    """The conditions a finished analysis assessed, each with whether it called it positive."""
    reading: Reading = {}
    positive = {f.code.lower() for f in analysis_findings(analysis) if f.positive and not f.normal}
    for finding in analysis.findings.all():
        code = finding.label_code.lower()
        for category in AGREEMENT_CATEGORIES:
            if code in category.ai_labels:
                reading[category.code] = reading.get(category.code, False) or code in positive
            elif code in ASSESSED_ONLY.get(category.code, ()):
                reading.setdefault(category.code, False)
    return reading


def package_readings(package: ModelPackage, cases: list[Case]) -> dict[int, Reading]:
    """Per photo of the cases, `package`'s reading (latest done run; shadow runs included)."""
    image_ids = {i for case in cases for eye in case.images for i in eye}
    latest: dict[int, Analysis] = {}
    analyses = (
        Analysis.objects.filter(package=package, status=AnalysisStatus.DONE, image_id__in=image_ids)
        .select_related("package")
        .defer(*UNREAD_ANALYSIS_FIELDS)
        .prefetch_related(Prefetch("findings", queryset=Finding.objects.only(*READ_FINDING_FIELDS)))
        .order_by("run")
    )
    for analysis in analyses:
        latest[analysis.image_id] = analysis
    return {image_id: analysis_reading(a) for image_id, a in latest.items()}


def case_reading(case: Case, readings: dict[int, Reading]) -> Reading | None:
    """The package's reading of a case: per eye its first photo it read; a visit case is
    positive where either eye is. None when it read no photo of the case."""
    eyes = [next((readings[i] for i in ids if i in readings), None) for ids in case.images]
    eyes = [e for e in eyes if e is not None]
    if not eyes:
        return None
    merged: Reading = {}
    for reading in eyes:
        for code, positive in reading.items():
            merged[code] = merged.get(code, False) or positive
    return merged


def package_agreement(package: ModelPackage, cases: list[Case]) -> dict[str, ConditionAgreement]:
    """`package` against the doctors on `cases`, per condition it assessed."""
    readings = package_readings(package, cases)
    result: dict[str, ConditionAgreement] = {}
    for case in cases:
        reading = case_reading(case, readings)
        if reading is None:
            continue
        for code, ai in reading.items():
            result.setdefault(code, ConditionAgreement(code)).add(ai=ai, doctor=code in case.doctor)
    return {code: result[code] for code in CONDITIONS if code in result}


def agreement_of_packages(
    packages: list[ModelPackage], *, records=None
) -> list[tuple[ModelPackage, dict[str, ConditionAgreement]]]:
    """For the statistics page: each package's agreement on the signed cases of `records`."""
    cases = signed_cases(records=records)
    return [(package, package_agreement(package, cases)) for package in packages]


@dataclass
class ShadowRow:
    code: str
    label: str
    shadow: ConditionAgreement | None
    active: ConditionAgreement | None
    active_package: ModelPackage | None


@dataclass
class ShadowComparison:
    """A shadow package and, per condition, the active package it would stand beside."""

    package: ModelPackage
    rows: list[ShadowRow]


def shadow_comparisons(*, records=None) -> list[ShadowComparison]:
    """Each shadow package's agreement with the signed reviews of `records`, per condition, next
    to the active package's: the active one of the same name, else the first active package
    that reads that condition."""
    shadows = list(ModelPackage.objects.filter(state="shadow").order_by("name", "version"))
    if not shadows:
        return []
    active = [
        p
        for p in ModelPackage.objects.filter(state="active").order_by("name", "version")
        if not p.is_quality_model
    ]
    cases = signed_cases(records=records)
    active_results = {p.pk: package_agreement(p, cases) for p in active}
    comparisons = []
    for shadow in shadows:
        mine = package_agreement(shadow, cases)
        same_name = [p for p in active if p.name == shadow.name]
        rows = []
        for code, category in CONDITIONS.items():
            counterpart = next(
                (p for p in [*same_name, *active] if code in active_results[p.pk]), None
            )
            theirs = active_results[counterpart.pk].get(code) if counterpart else None
            if code in mine or theirs is not None:
                rows.append(
                    ShadowRow(code, str(category.label), mine.get(code), theirs, counterpart)
                )
        comparisons.append(ShadowComparison(shadow, rows))
    return comparisons


# --- the promotion gate -----------------------------------------------------------------------
@dataclass
class GateRow:
    code: str
    candidate: ConditionAgreement
    active: ConditionAgreement | None
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "candidate": self.candidate.to_dict(),
            "active": self.active.to_dict() if self.active is not None else None,
            "problems": self.problems,
        }


@dataclass
class GateResult:
    """The comparison the gate prints and stores, and whether it lets the candidate through."""

    candidate: ModelPackage
    active: ModelPackage | None
    main_condition: str
    margin: float
    min_cases: int
    rule: str
    rows: list[GateRow]
    problems: list[str]

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": str(self.candidate),
            "active": str(self.active) if self.active is not None else None,
            "main_condition": self.main_condition,
            "margin": self.margin,
            "min_cases": self.min_cases,
            "held_out": self.rule,
            "rows": [row.to_dict() for row in self.rows],
            "problems": self.problems,
            "passed": self.passed,
        }


def active_counterpart(candidate: ModelPackage) -> ModelPackage | None:
    """The active package the candidate would replace: the active one of the same name."""
    return (
        ModelPackage.objects.filter(name=candidate.name, state="active")
        .exclude(pk=candidate.pk)
        .order_by("-registered_at")
        .first()
    )


def promotion_gate(candidate: ModelPackage, *, active: ModelPackage | None = None) -> GateResult:
    """Compare the candidate with the active package of its name on the signed cases the
    candidate never trained on, paired (only cases both read count, per condition).

    Refused when the candidate is worse than the active package by more than
    ``AI_PROMOTION_MARGIN`` in sensitivity or specificity on any condition, is not better in
    Cohen's kappa on the main condition (card ``main_condition``, else
    ``AI_PROMOTION_MAIN_CONDITION``), or a condition has fewer than ``AI_PROMOTION_MIN_CASES``.
    """
    active = active if active is not None else active_counterpart(candidate)
    margin = float(settings.AI_PROMOTION_MARGIN)
    min_cases = int(settings.AI_PROMOTION_MIN_CASES)
    main = str((candidate.card or {}).get("main_condition") or settings.AI_PROMOTION_MAIN_CONDITION)
    cases, rule = held_out_cases(candidate)
    problems: list[str] = []
    rows: list[GateRow] = []
    if active is None:
        problems.append(f"no active package named {candidate.name} to compare with")
    else:
        mine = package_readings(candidate, cases)
        theirs = package_readings(active, cases)
        paired: dict[str, tuple[ConditionAgreement, ConditionAgreement]] = {}
        for case in cases:
            a, b = case_reading(case, mine), case_reading(case, theirs)
            if a is None or b is None:
                continue
            for code in a.keys() & b.keys():
                pair = paired.setdefault(code, (ConditionAgreement(code), ConditionAgreement(code)))
                pair[0].add(ai=a[code], doctor=code in case.doctor)
                pair[1].add(ai=b[code], doctor=code in case.doctor)
        for code in [c for c in CONDITIONS if c in paired]:
            row = GateRow(code, *paired[code])
            row.problems = _row_problems(row, margin=margin, min_cases=min_cases, main=code == main)
            rows.append(row)
            problems.extend(f"{code}: {problem}" for problem in row.problems)
        if main not in paired:
            problems.append(f"{main}: no held-out case that both packages read (main condition)")
    return GateResult(candidate, active, main, margin, min_cases, rule, rows, problems)


def _row_problems(row: GateRow, *, margin: float, min_cases: int, main: bool) -> list[str]:
    new, old = row.candidate, row.active
    assert old is not None  # noqa: S101 - rows are paired
    problems = []
    if new.cases < min_cases:
        problems.append(f"{new.cases} cases, fewer than the minimum {min_cases}")
    for name in ("sensitivity", "specificity"):
        mine, theirs = getattr(new, name), getattr(old, name)
        if mine is not None and theirs is not None and mine < theirs - margin:
            problems.append(f"{name} {mine:.3f} is worse than {theirs:.3f} by more than {margin:g}")
    if main:
        if new.kappa is None or (old.kappa is not None and new.kappa <= old.kappa):
            problems.append(
                f"kappa {_fmt(new.kappa)} is not better than {_fmt(old.kappa)} (main condition)"
            )
    return problems


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _fmt_ci(value: float | None, ci: list[float] | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" + (f" [{ci[0]:.2f}–{ci[1]:.2f}]" if ci else "")


def comparison_lines(comparison: dict[str, Any]) -> list[str]:
    """The stored comparison (``GateResult.to_dict``) as the plain-text table the command prints."""
    if not comparison:
        return []
    lines = [
        f"candidate {comparison.get('candidate')}  vs  active {comparison.get('active') or '–'}",
        f"held-out cases: {comparison.get('held_out')}; main condition {comparison.get('main_condition')}; "
        f"margin {comparison.get('margin')}; minimum {comparison.get('min_cases')} cases",
        f"{'condition':<14}{'model':<10}{'n':>5}{'TP':>5}{'FP':>5}{'FN':>5}{'TN':>5}  "
        f"{'sensitivity':<22}{'specificity':<22}{'kappa':<22}",
    ]
    for row in comparison.get("rows", []):
        for who in ("candidate", "active"):
            m = row.get(who)
            if m is None:
                continue
            lines.append(
                f"{row['code'] if who == 'candidate' else '':<14}{who:<10}{m['cases']:>5}{m['tp']:>5}"
                f"{m['fp']:>5}{m['fn']:>5}{m['tn']:>5}  "
                f"{_fmt_ci(m['sensitivity'], m['sensitivity_ci']):<22}"
                f"{_fmt_ci(m['specificity'], m['specificity_ci']):<22}"
                f"{_fmt_ci(m['kappa'], m['kappa_ci']):<22}"
            )
    problems = comparison.get("problems") or []
    lines.append("gate: " + ("passed" if not problems else "REFUSED"))
    lines.extend(f"  - {problem}" for problem in problems)
    return lines
