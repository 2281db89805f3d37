"""What a report says, collected once: the de-identified facts and the media behind them.

`report_facts` is the only input of the summary (LLM or template). It never holds the patient's
name, phone, ID number or patient ID: those appear only in the PDF's patient block, which the
PDF renderer reads from the record itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch
from django.utils import timezone

from ai_engine.models import Analysis, AnalysisStatus, Finding, RecordTriage
from screening.models import (
    ConclusionCode,
    DoctorReview,
    Eye,
    FundusImage,
    Recommendation,
    ScreeningRecord,
    iop_flag,
)
from screening.selectors import record_current_review

REPORTED_ANALYSIS_STATUSES = (AnalysisStatus.DONE, AnalysisStatus.UNGRADABLE)
VA_LOW = 0.5  # decimal acuity below this is flagged on the report (WHO: visual impairment < 0.3)
REDACTED = "[…]"


@dataclass
class EyeMedia:
    """The photo and heatmap a report shows for one eye (storage names)."""

    photo: str = ""
    heatmap: str = ""
    heatmap_label: str = ""


@dataclass
class ReportInputs:
    """Everything a report is built from: facts for the summary, media and review for the PDF."""

    facts: dict[str, Any]
    review: DoctorReview | None
    media: dict[str, EyeMedia] = field(default_factory=dict)

    @property
    def review_version(self) -> int | None:
        return self.review.version if self.review is not None else None

    def media_names(self) -> list[str]:
        return [name for eye in self.media.values() for name in (eye.photo, eye.heatmap) if name]


def report_inputs(*, record: ScreeningRecord) -> ReportInputs:
    """Collect a record's facts (de-identified) and the photo/heatmap of each eye."""
    record = ScreeningRecord.objects.select_related("patient").get(pk=record.pk)
    review = record_current_review(record=record)
    images = list(
        FundusImage.objects.filter(record=record)
        .order_by("uploaded_at", "pk")
        .prefetch_related(
            Prefetch(
                "analyses",
                queryset=Analysis.objects.filter(status__in=REPORTED_ANALYSIS_STATUSES)
                .select_related("package")
                .prefetch_related(
                    Prefetch(
                        "findings",
                        queryset=Finding.objects.order_by("-positive", "-probability", "pk"),
                    )
                )
                .order_by("package_id", "-run"),
            )
        )
    )
    patient = record.patient
    scrub = _scrubber(patient)
    eyes: dict[str, Any] = {}
    media: dict[str, EyeMedia] = {}
    for eye in Eye.values:
        image = _primary_image([image for image in images if image.eye == eye])
        analyses = _latest_per_package(image) if image is not None else []
        eyes[eye] = {
            **_measurements(record, eye),
            "photo_taken": image is not None,
            "quality": _quality(analyses),
            "ai_findings": [_finding_fact(a, f) for a in analyses for f in a.findings.all()],
        }
        media[eye] = _eye_media(image, analyses)
    screened_on = timezone.localtime(record.screened_at).date()
    facts = {
        "patient": {"age": patient.age_on(screened_on), "sex": patient.sex},
        "screening": {"date": screened_on.isoformat()},
        "eyes": eyes,
        "triage": _triage(record),
        "doctor_review": _review_fact(review, scrub) if review is not None else None,
        "report_status": "final" if review is not None else "draft",
    }
    return ReportInputs(facts=facts, review=review, media=media)


def _primary_image(images: list[FundusImage]) -> FundusImage | None:
    """The newest photo of the eye that the engine could read, else the newest photo."""
    for image in reversed(images):
        if image.analyses.all():
            return image
    return images[-1] if images else None


def _latest_per_package(image: FundusImage) -> list[Analysis]:
    latest: dict[int, Analysis] = {}
    for analysis in image.analyses.all():  # ordered by package, newest run first
        latest.setdefault(analysis.package_id, analysis)
    return list(latest.values())


def _measurements(record: ScreeningRecord, eye: str) -> dict[str, Any]:
    suffix = eye.lower()
    va = getattr(record, f"va_{suffix}")
    iop = getattr(record, f"iop_{suffix}")
    return {
        "visual_acuity": None
        if va is None
        else {
            "decimal": float(va),
            "logmar": float(getattr(record, f"logmar_{suffix}") or 0),
            "flag": "low" if float(va) < VA_LOW else "",
        },
        "iop": None
        if iop is None
        else {"mmhg": float(iop), "flag": iop_flag(iop), "normal_range": "10-21"},
    }


def _quality(analyses: list[Analysis]) -> dict[str, Any] | None:
    for analysis in analyses:
        if analysis.quality_score is not None or analysis.quality_gradable is not None:
            return {
                "score": None
                if analysis.quality_score is None
                else round(analysis.quality_score, 2),
                "gradable": analysis.quality_gradable
                if analysis.quality_gradable is not None
                else analysis.status != AnalysisStatus.UNGRADABLE,
                "reasons": [str(reason) for reason in analysis.quality_reasons or []],
            }
    return None


def _finding_fact(analysis: Analysis, finding: Finding) -> dict[str, Any]:
    return {
        "label_code": finding.label_code,
        "label_zh": finding.label_zh,
        "label_en": finding.label_en,
        "probability": round(finding.probability, 3),
        "threshold": round(finding.threshold, 3),
        "positive": finding.positive,
        "abnormal_areas": [str(area) for area in finding.abnormal_areas or []],
        "model_name": analysis.model_name,
        "model_version": analysis.model_version,
        "demonstration": analysis.demonstration,
        "evidence": analysis.package.evidence,
        "evidence_zh": analysis.package.evidence_in("zh-hans"),
        "evidence_en": analysis.package.evidence_in("en"),
    }


def _eye_media(image: FundusImage | None, analyses: list[Analysis]) -> EyeMedia:
    if image is None:
        return EyeMedia()
    findings = sorted(
        (f for a in analyses for f in a.findings.all() if f.heatmap),
        key=lambda f: (not f.positive, -f.probability),
    )
    top = findings[0] if findings else None
    return EyeMedia(
        photo=image.file.name,
        heatmap=top.heatmap.name if top else "",
        heatmap_label=f"{top.label_code}" if top else "",
    )


def _triage(record: ScreeningRecord) -> dict[str, Any] | None:
    triage = RecordTriage.objects.filter(record=record).first()
    if triage is None:
        return None
    return {
        "level": triage.level,
        "reasons": [
            {
                "code": str(reason.get("code", "")),
                "eye": str(reason.get("eye", "")),
                "params": reason.get("params", {}),
            }
            for reason in triage.reasons or []
            if isinstance(reason, dict)
        ],
    }


def _review_fact(review: DoctorReview, scrub) -> dict[str, Any]:
    conclusion_labels = dict(ConclusionCode.choices)
    recommendation_labels = dict(Recommendation.choices)
    return {
        "conclusion_codes": list(review.conclusion_codes),
        "conclusion_labels": [str(conclusion_labels.get(c, c)) for c in review.conclusion_codes],
        "conclusion_text": scrub(review.conclusion_text),
        "recommendation": review.recommendation,
        "recommendation_label": str(recommendation_labels.get(review.recommendation, "")),
        "recommendation_text": scrub(review.recommendation_text),
        "follow_up_date": _iso(review.follow_up_date),
        "signed_on": _iso(timezone.localtime(review.signed_at).date())
        if review.signed_at
        else None,
    }


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _scrubber(patient):
    """Doctors' free text goes to the LLM: cut the patient's identifiers out of it first."""
    identifiers = [
        value
        for value in (patient.name, patient.phone, patient.national_id, patient.patient_id)
        if value and len(value) >= 2
    ]

    def scrub(text: str) -> str:
        for value in identifiers:
            text = text.replace(value, REDACTED)
        return text

    return scrub
