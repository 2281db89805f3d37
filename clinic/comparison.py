"""Two visits of one patient side by side: per eye the photo each visit's report uses, its AI
findings (as the model's decision rule reads them) and the doctor's signed conclusion."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Prefetch
from django.utils.translation import gettext as _

from ai_engine.inference.results import Finding as ResultFinding
from ai_engine.models import Analysis, Finding
from ai_engine.selectors import analysis_findings, record_eye_photos, record_latest_analyses
from patients.models import Patient
from screening.models import (
    ConclusionCode,
    DoctorReview,
    Eye,
    FundusImage,
    Recommendation,
    ScreeningRecord,
)
from screening.selectors import record_current_review, record_list


class VisitChoiceError(ValueError):
    """The visits asked for cannot be compared (not two distinct visit numbers)."""


@dataclass
class EyeConclusion:
    """The doctor's per-eye conclusion, when the review filled it."""

    labels: list[str] = field(default_factory=list)
    diagnosis_codes: list[str] = field(default_factory=list)
    text: str = ""
    recommendation: str = ""

    @property
    def filled(self) -> bool:
        return bool(self.labels or self.diagnosis_codes or self.text or self.recommendation)


@dataclass
class VisitEye:
    """One eye of one visit: its photos (the report's first), AI results and conclusion."""

    eye: str
    label: str
    photo: FundusImage | None
    photos: list[FundusImage]
    analyses: list[Analysis]
    heatmaps: list[Finding]
    top_finding: ResultFinding | None
    conclusion: EyeConclusion
    va: float | None
    iop: float | None
    viewer_photos: str = ""  # the viewer's JSON, set by the page


@dataclass
class Visit:
    """A visit as the comparison shows it."""

    record: ScreeningRecord
    review: DoctorReview | None
    eyes: dict[str, VisitEye]

    @property
    def conclusion_labels(self) -> list[str]:
        return self.review.conclusion_labels if self.review is not None else []


def parse_visit_ids(first: str | None, second: str | None) -> tuple[int, int] | None:
    """The two visit numbers of the query (None when neither is given)."""
    if not first and not second:
        return None
    try:
        ids = (int(first or ""), int(second or ""))
    except ValueError as exc:
        raise VisitChoiceError(_("Choose two visits to compare.")) from exc
    if ids[0] == ids[1]:
        raise VisitChoiceError(_("Choose two different visits to compare."))
    return ids


def patient_visits(*, patient: Patient) -> list[ScreeningRecord]:
    """The patient's visits, newest first."""
    return list(record_list(patient=patient).order_by("-screened_at", "-pk"))


def visit_pair(
    *, visits: list[ScreeningRecord], ids: tuple[int, int] | None
) -> tuple[ScreeningRecord, ScreeningRecord] | None:
    """The two visits to compare, earlier first: the ones asked for (both must be among the
    patient's `visits`, else None), or the latest two; None when there are fewer than two."""
    if ids is None:
        chosen = visits[:2]
    else:
        chosen = [visit for visit in visits if visit.pk in ids]
    if len(chosen) != 2:
        return None
    earlier, later = sorted(chosen, key=lambda r: (r.screened_at, r.pk))
    return earlier, later


def top_finding(analyses: list[Analysis]) -> ResultFinding | None:
    """The finding that best sums up a photo: the most probable abnormal one, else the most
    probable result."""
    findings = [finding for analysis in analyses for finding in analysis.decided_findings]
    abnormal = [finding for finding in findings if finding.abnormal]
    pool = abnormal or findings
    return max(pool, key=lambda f: f.probability) if pool else None


def _eye_conclusion(review: DoctorReview | None, eye: str) -> EyeConclusion:
    if review is None:
        return EyeConclusion()
    suffix = eye.lower()
    labels = dict(ConclusionCode.choices)
    recommendation = getattr(review, f"recommendation_{suffix}")
    return EyeConclusion(
        labels=[str(labels.get(c, c)) for c in getattr(review, f"conclusion_codes_{suffix}")],
        diagnosis_codes=list(getattr(review, f"diagnosis_codes_{suffix}")),
        text=getattr(review, f"conclusion_text_{suffix}"),
        recommendation=str(dict(Recommendation.choices).get(recommendation, "")),
    )


def _number(value) -> float | None:
    return None if value is None else float(value)


def visit_comparison(*, record: ScreeningRecord) -> Visit:
    """What the comparison shows of one visit."""
    record = (
        ScreeningRecord.objects.select_related("patient")
        .prefetch_related(
            Prefetch("images", queryset=FundusImage.objects.order_by("eye", "uploaded_at"))
        )
        .get(pk=record.pk)
    )
    analyses = record_latest_analyses(record=record)
    for analysis in analyses:
        analysis.decided_findings = analysis_findings(analysis)
    review = record_current_review(record=record)
    selection = record_eye_photos(record=record, analyses=analyses)
    eyes = {}
    for eye, label in Eye.choices:
        photos = selection[eye]
        chosen = photos.chosen
        ordered = ([chosen] if chosen else []) + photos.history
        chosen_analyses = [a for a in analyses if chosen is not None and a.image_id == chosen.pk]
        eyes[eye] = VisitEye(
            eye=eye,
            label=str(label),
            photo=chosen,
            photos=ordered,
            analyses=chosen_analyses,
            heatmaps=[row for a in chosen_analyses for row in a.findings.all() if row.heatmap],
            top_finding=top_finding(chosen_analyses),
            conclusion=_eye_conclusion(review, eye),
            va=_number(getattr(record, f"va_{eye.lower()}")),
            iop=_number(getattr(record, f"iop_{eye.lower()}")),
        )
    return Visit(record=record, review=review, eyes=eyes)
