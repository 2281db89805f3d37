"""What a report says, collected once: the de-identified facts and the media behind them.

`report_facts` is the only input of the summary (LLM or template). It never holds the patient's
name, phone, ID number or patient ID: those appear only in the PDF's patient block, which the
PDF renderer reads from the record itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from ai_engine.inference.diabetic import DME_NAMES, NO_DME_NAMES, EyeDiabetic, dr_grade_words
from ai_engine.inference.results import Finding as ResultFinding
from ai_engine.models import Analysis, AnalysisStatus, RecordTriage
from ai_engine.selectors import analyses_diabetic, analysis_findings, record_eye_photos
from core.profiles import clinic_va_notation
from screening.icd10 import code_name
from screening.models import (
    AcuityKind,
    ConclusionCode,
    DoctorReview,
    FundusImage,
    Recommendation,
    ScreeningRecord,
    iop_flag,
)
from screening.selectors import record_current_review

REPORTED_ANALYSIS_STATUSES = (AnalysisStatus.DONE, AnalysisStatus.UNGRADABLE)
VA_LOW = Decimal(
    "0.5"
)  # decimal acuity below this is flagged on the report (WHO: visual impairment < 0.3)
REDACTED = "[…]"
# AI label codes (model cards, lower-cased) → the doctor's conclusion codes that confirm them.
_DR = {"dr_mild", "dr_moderate", "dr_severe", "dr_proliferative"}
AI_LABEL_CONCLUSIONS: dict[str, set[str]] = {
    "g": {"glaucoma_suspect"},
    "glaucoma": {"glaucoma_suspect"},
    "glaucoma_suspect": {"glaucoma_suspect"},
    "c": {"cataract"},
    "cataract": {"cataract"},
    "d": _DR,
    "dr": _DR,
    "referable_dr": _DR - {"dr_mild"},
    "1": {"dr_mild"},
    "2": {"dr_moderate"},
    "3": {"dr_severe"},
    "4": {"dr_proliferative"},
    # ICDR grade labels of a dr_grading package (ophai-dr); R0 is its normal label
    "dr1": {"dr_mild"},
    "dr2": {"dr_moderate"},
    "dr3": {"dr_severe"},
    "dr4": {"dr_proliferative"},
    "a": {"amd"},
    "amd": {"amd"},
    "h": {"hypertensive"},
    "m": {"myopia"},
    "myopia": {"myopia"},
    "o": {"other"},
}


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
    # The previous visit beside this one (``previous_visit_comparison``); not in the facts, so
    # the summary and its basis stay about this visit.
    previous_visit: dict[str, Any] | None = None

    @property
    def review_version(self) -> int | None:
        return self.review.version if self.review is not None else None

    def media_names(self) -> list[str]:
        return [name for eye in self.media.values() for name in (eye.photo, eye.heatmap) if name]


def report_inputs(*, record: ScreeningRecord) -> ReportInputs:
    """Collect a record's facts (de-identified) and the photo/heatmap of each eye.

    Each eye speaks through one photo (``record_eye_photos``: the doctor's choice, else the
    newest gradable photo with AI results); its findings are read with the model's decision
    rule (``analysis_findings``), the same as the screening page, triage and API.
    """
    record = ScreeningRecord.objects.select_related("patient").get(pk=record.pk)
    review = record_current_review(record=record)
    patient = record.patient
    scrub = _scrubber(patient)
    eyes: dict[str, Any] = {}
    media: dict[str, EyeMedia] = {}
    for eye, photos in record_eye_photos(record=record).items():
        analyses = _latest_finished(photos.chosen)
        findings = [(a, f) for a in analyses for f in analysis_findings(a)]
        eyes[eye] = {
            **_measurements(record, eye),
            "photo_taken": photos.chosen is not None,
            "other_photos": len(photos.history),
            "quality": _quality(analyses),
            "ai_findings": [
                _finding_fact(a, f, _confirmed_codes(review, eye)) for a, f in findings
            ],
            "diabetic": _diabetic_fact(analyses_diabetic(eye, analyses)),
        }
        media[eye] = _eye_media(photos.chosen, findings)
    screened_on = timezone.localtime(record.screened_at).date()
    facts = {
        "patient": {"age": patient.age_on(screened_on), "sex": patient.sex},
        "screening": {"date": screened_on.isoformat()},
        "eyes": eyes,
        "triage": _triage(record),
        "doctor_review": _review_fact(review, scrub) if review is not None else None,
        "report_status": "final" if review is not None else "draft",
    }
    return ReportInputs(
        facts=facts,
        review=review,
        media=media,
        previous_visit=previous_visit_comparison(record=record, review=review),
    )


def previous_visit_comparison(
    *, record: ScreeningRecord, review: DoctorReview | None = None
) -> dict[str, Any] | None:
    """The patient's visit before `record` and this one side by side (VA, IOP, the AI's top
    finding and the doctor's conclusion); None on a first visit."""
    previous = (
        ScreeningRecord.objects.filter(patient_id=record.patient_id)
        .filter(
            Q(screened_at__lt=record.screened_at)
            | Q(screened_at=record.screened_at, pk__lt=record.pk)
        )
        .order_by("-screened_at", "-pk")
        .first()
    )
    if previous is None:
        return None
    before = _visit_summary(previous, record_current_review(record=previous))
    now = _visit_summary(record, review)
    return {
        "previous_date": before["date"],
        "current_date": now["date"],
        "eyes": [
            {"eye": eye, "previous": before["eyes"][eye], "current": now["eyes"][eye]}
            for eye in ("OD", "OS")
        ],
        "previous_conclusion": before["conclusion_labels"],
        "current_conclusion": now["conclusion_labels"],
    }


def _visit_summary(record: ScreeningRecord, review: DoctorReview | None) -> dict[str, Any]:
    eyes = {}
    for eye, photos in record_eye_photos(record=record).items():
        findings = [f for a in _latest_finished(photos.chosen) for f in analysis_findings(a)]
        abnormal = [f for f in findings if f.abnormal]
        top = max(abnormal or findings, key=lambda f: f.probability, default=None)
        eyes[eye] = {
            **_measurements(record, eye),
            "top_finding": None
            if top is None
            else {
                "label_zh": top.zh,
                "label_en": top.en,
                "probability": round(top.probability, 3),
                "abnormal": top.abnormal,
            },
        }
    labels = dict(ConclusionCode.choices)  # lazy: the PDF shows them in its language
    return {
        "date": timezone.localtime(record.screened_at).date().isoformat(),
        "eyes": eyes,
        "conclusion_labels": None
        if review is None
        else [labels.get(code, code) for code in review.conclusion_codes],
    }


def _latest_finished(image: FundusImage | None) -> list[Analysis]:
    """The photo's newest finished (done or ungradable) run of each model."""
    if image is None:
        return []
    latest: dict[int, Analysis] = {}
    runs = (
        Analysis.objects.visible()
        .filter(image=image, status__in=REPORTED_ANALYSIS_STATUSES)
        .select_related("package")
        .prefetch_related("findings")
        .order_by("package_id", "-run")
    )
    for analysis in runs:
        latest.setdefault(analysis.package_id, analysis)
    return list(latest.values())


def _acuity_fact(record: ScreeningRecord, kind: str, eye: str) -> dict[str, Any] | None:
    """One acuity for the report: decimal, logMAR, 5-point, and as the clinic writes it."""
    value = record.acuity_of(kind, eye)
    if value is None:
        return None
    fact: dict[str, Any] = {
        "decimal": None if value.category else float(value.decimal),
        "logmar": float(value.logmar),
        "five_point": None if value.category else float(value.five_point),
        "category": value.category,
        "display": record.acuity_text(kind, eye, clinic_va_notation()),
        "flag": "low" if value.category or value.decimal < VA_LOW else "",
    }
    if kind == AcuityKind.CORRECTED:
        fact["correction"] = getattr(record, f"cva_correction_{eye}")
    return fact


def _measurements(record: ScreeningRecord, eye: str) -> dict[str, Any]:
    suffix = eye.lower()
    iop = getattr(record, f"iop_{suffix}")
    return {
        "visual_acuity": _acuity_fact(record, AcuityKind.UNCORRECTED, suffix),
        "corrected_visual_acuity": _acuity_fact(record, AcuityKind.CORRECTED, suffix),
        "pinhole_visual_acuity": _acuity_fact(record, AcuityKind.PINHOLE, suffix),
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


def _finding_fact(
    analysis: Analysis, finding: ResultFinding, confirmed: set[str] | None
) -> dict[str, Any]:
    return {
        "label_code": finding.code,
        "label_zh": finding.zh,
        "label_en": finding.en,
        "probability": round(finding.probability, 3),
        "threshold": None if finding.shown_threshold is None else round(finding.threshold, 3),
        "decision": finding.decision,
        "positive": finding.positive,
        "normal": finding.normal,
        "outcome": finding.outcome,
        # None before a doctor signed; then whether the doctor's conclusion names this finding.
        "confirmed_by_doctor": None
        if confirmed is None
        else finding.abnormal and _conclusions_for(finding.code) & confirmed != set(),
        "abnormal_areas": [area.code for area in finding.areas],
        "model_name": analysis.model_name,
        "model_version": analysis.model_version,
        "demonstration": analysis.demonstration,
        "evidence": analysis.package.evidence,
        "evidence_zh": analysis.package.evidence_in("zh-hans"),
        "evidence_en": analysis.package.evidence_in("en"),
    }


def _diabetic_fact(eye: EyeDiabetic) -> dict[str, Any] | None:
    """The eye's DR grade and macular oedema (``ai_engine.inference.diabetic``), both languages'
    words; None when no DR / DME model read the photo."""
    if not eye.assessed:
        return None
    dr, dme = eye.dr, eye.dme
    return {
        "dr": None
        if dr is None
        else {
            "grade": dr.grade,
            "grade_text_zh": dr.words("zh"),
            "grade_text_en": dr.words("en"),
            "grade_probability": round(dr.grade_probability, 3),
            "p_referable": round(dr.p_referable, 3),
            "referable_from": dr.referable_from,
            "referable_threshold": dr.referable_threshold,
            "decision": dr.decision,
            "referable": dr.referable,
            "vision_threatening": dr.severe,
            **_model_fact(dr),
        },
        "dme": None
        if dme is None
        else {
            "positive": dme.positive,
            "text_zh": dme.words("zh"),
            "text_en": dme.words("en"),
            "probability": round(dme.probability, 3),
            "threshold": dme.threshold,
            **_model_fact(dme),
        },
        "referable": eye.referable,
        "vision_threatening": eye.vision_threatening,
    }


def _model_fact(assessment) -> dict[str, Any]:
    return {
        "model_name": assessment.model_name,
        "model_version": assessment.model_version,
        "demonstration": assessment.demonstration,
        "evidence_zh": assessment.evidence("zh"),
        "evidence_en": assessment.evidence("en"),
    }


def _conclusions_for(label_code: str) -> set[str]:
    """The doctor's conclusion codes that confirm an AI label (by the label's usual codes)."""
    return AI_LABEL_CONCLUSIONS.get(label_code.lower(), set())


def _confirmed_codes(review: DoctorReview | None, eye: str) -> set[str] | None:
    """The signed review's conclusion codes for `eye` (None without a review): the eye's own
    when the doctor gave them, else the visit's. An AI finding counts as confirmed when the
    doctor concluded the same disease."""
    if review is None:
        return None
    eye_codes = getattr(review, f"conclusion_codes_{eye.lower()}")
    return set(eye_codes or review.conclusion_codes)


def _eye_media(
    image: FundusImage | None, findings: list[tuple[Analysis, ResultFinding]]
) -> EyeMedia:
    if image is None:
        return EyeMedia()
    rows = {
        (row.analysis_id, row.label_code): row
        for analysis, _ in findings
        for row in analysis.findings.all()
    }
    with_heatmap = sorted(
        (
            (finding, rows[(analysis.pk, finding.code)])
            for analysis, finding in findings
            if rows[(analysis.pk, finding.code)].heatmap
        ),
        key=lambda pair: (not pair[0].abnormal, -pair[0].probability),
    )
    top = with_heatmap[0] if with_heatmap else None
    return EyeMedia(
        # The sanitised copy: a PDF leaves the clinic, the original's metadata must not.
        photo=image.sanitized_file.name or image.file.name,
        heatmap=top[1].heatmap.name if top else "",
        heatmap_label=top[0].code if top else "",
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
        "diabetic_eyes": _review_diabetic_eyes(review),
        "eye_conclusions": _review_eye_conclusions(review, scrub),
    }


def _review_eye_conclusions(review: DoctorReview, scrub) -> list[dict[str, Any]]:
    """The eyes with a per-eye conclusion: labels in the report's language, ICD-10 codes with
    both names, the doctor's text (identifiers cut out) and recommendation."""
    return [
        {
            "eye": str(eye.eye),
            "eye_label": eye.label,
            "conclusion_codes": list(eye.conclusion_codes),
            "conclusion_labels": eye.conclusion_labels,
            "diagnoses": [
                {
                    "code": code,
                    "name_zh": code_name(code, "zh-hans"),
                    "name_en": code_name(code, "en"),
                    "name": name,
                }
                for code, name in eye.diagnoses
            ],
            "conclusion_text": scrub(eye.text),
            "recommendation": eye.recommendation,
            "recommendation_label": eye.recommendation_label,
        }
        for eye in review.recorded_eye_conclusions
    ]


def _review_diabetic_eyes(review: DoctorReview) -> list[dict[str, Any]]:
    """The eyes the doctor graded: ICDR grade (0–4, "ungradable" or None) and macular oedema,
    in words of the report's language (the doctor's grade is the authority)."""
    zh = (translation.get_language() or "zh-hans").startswith("zh")
    rows = []
    for eye in review.diabetic_eyes:
        if not eye.recorded:
            continue
        grade = eye.grade
        if grade is not None:
            grade_text = dr_grade_words(grade, "zh" if zh else "en")
        else:
            grade_text = _("Ungradable") if eye.ungradable else ""
        dme_names = DME_NAMES if eye.dme else NO_DME_NAMES
        rows.append(
            {
                "eye": str(eye.eye),
                "eye_label": eye.label,
                "dr_grade": grade if grade is not None else (eye.dr_grade or None),
                "dr_grade_text": grade_text,
                "dme": eye.dme,
                "dme_text": "" if eye.dme is None else dme_names[0 if zh else 1],
            }
        )
    return rows


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
