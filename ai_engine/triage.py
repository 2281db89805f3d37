"""Triage: combine AI findings with the visit's measurements into a worklist priority.

Reasons are stored as codes with parameters and rendered in the reader's language, so a
worklist in Chinese and one in English say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils.translation import get_language
from django.utils.translation import gettext as _

from ai_engine.inference.diabetic import EyeDiabetic, dr_grade_words
from ai_engine.inference.results import is_normal_label
from ai_engine.models import TRIAGE_PRIORITY, TriageLevel
from screening.acuity import LOW_VISION_CHINESE

IOP_HIGH = Decimal("21")
IOP_VERY_HIGH = Decimal("30")
LOW_VISION = Decimal("0.3")
GLAUCOMA_CODES = {"G", "glaucoma", "glaucoma_suspect"}


@dataclass(frozen=True)
class EyeFindings:
    """What the engine concluded for one eye, in plain values (from Analysis/Finding rows)."""

    eye: str
    gradable: bool | None
    failed: bool = False
    monochrome: bool = False  # gradable with limits: no colour model read it
    positive: list[dict[str, Any]] = field(
        default_factory=list
    )  # {code, label_zh, label_en, probability, referable, normal}; not the DR / DME models'
    # The DR grade and macular oedema (ai_engine.inference.diabetic): their models' findings
    # are read from here only, with the card's decision rule.
    diabetic: EyeDiabetic | None = None


@dataclass
class TriageResult:
    level: str = TriageLevel.NONE
    reasons: list[dict[str, Any]] = field(default_factory=list)

    @property
    def priority(self) -> int:
        return TRIAGE_PRIORITY[self.level]

    def add(self, level: str, code: str, eye: str = "", **params: Any) -> None:
        reason = {"code": code, "eye": eye, "level": str(level), "params": params}
        if reason in self.reasons:  # one eye reported twice (two models) says it once
            return
        self.reasons.append(reason)
        if TRIAGE_PRIORITY[level] > TRIAGE_PRIORITY[self.level]:
            self.level = level


def triage_compute(
    *,
    eyes: list[EyeFindings],
    iop: dict[str, Decimal | None],
    va: dict[str, Decimal | None],
    va_category: dict[str, str] | None = None,
) -> TriageResult:
    """`va`: each eye's uncorrected decimal acuity; `va_category`: the low-vision category
    (CF/HM/LP/NLP) an eye was written as, so its reason names it rather than a number."""
    result = TriageResult()
    for eye_findings in eyes:
        eye = eye_findings.eye
        eye_iop = iop.get(eye)
        if eye_findings.failed:
            result.add(TriageLevel.HIGH, "analysis_failed", eye)
            continue
        if eye_findings.gradable is False:
            result.add(TriageLevel.HIGH, "ungradable", eye)
            continue
        if eye_findings.monochrome:
            result.add(TriageLevel.HIGH, "monochrome_photo", eye)
            continue
        abnormal = [
            f for f in eye_findings.positive if not f.get("normal", is_normal_label(f["code"]))
        ]
        diabetic_abnormal = _diabetic_reasons(result, eye, eye_findings.diabetic)
        for finding in abnormal:
            params = {
                "label_zh": finding["label_zh"],
                "label_en": finding["label_en"],
                "probability": round(float(finding["probability"]), 2),
            }
            if finding["code"] in GLAUCOMA_CODES and eye_iop is not None and eye_iop > IOP_HIGH:
                result.add(
                    TriageLevel.URGENT, "glaucoma_with_high_iop", eye, iop=str(eye_iop), **params
                )
            elif finding.get("referable"):
                result.add(TriageLevel.HIGH, "referable_finding", eye, **params)
            else:
                result.add(TriageLevel.ROUTINE, "finding", eye, **params)
        eye_va = va.get(eye)
        if eye_va is not None and eye_va < LOW_VISION and not abnormal and not diabetic_abnormal:
            category = (va_category or {}).get(eye)
            extra = {"va_category": category} if category else {}
            result.add(TriageLevel.HIGH, "low_vision_normal_photo", eye, va=str(eye_va), **extra)
    for eye, value in sorted(iop.items()):
        if value is None:
            continue
        if value > IOP_VERY_HIGH:
            result.add(TriageLevel.URGENT, "iop_very_high", eye, iop=str(value))
        elif value > IOP_HIGH:
            result.add(TriageLevel.HIGH, "iop_high", eye, iop=str(value))
    return result


def _diabetic_reasons(result: TriageResult, eye: str, diabetic: EyeDiabetic | None) -> bool:
    """Add the eye's DR / DME reasons: a severe grade (argmax >= the card's
    ``vision_threatening_from``) is urgent; referable DR and macular oedema are a referral within
    weeks (as the DR issue asks, and as screening programmes refer maculopathy); a milder grade is
    routine. Oedema is not urgent on its own: the bundled DME model flags about a third of
    EyePACS-style grade-0 photos, which would flood the urgent list. Whether anything abnormal was
    found."""
    if diabetic is None or not diabetic.assessed:
        return False
    dr, dme = diabetic.dr, diabetic.dme
    if dr is not None:
        params = {
            "grade": dr.grade,
            "probability": round(dr.grade_probability, 2),
            "p_referable": round(dr.p_referable, 2),
            "referable_from": dr.referable_from,
        }
        if dr.severe:
            result.add(TriageLevel.URGENT, "dr_vision_threatening", eye, **params)
        elif dr.referable:
            result.add(TriageLevel.HIGH, "dr_referable", eye, **params)
        elif dr.grade > 0:
            result.add(TriageLevel.ROUTINE, "dr_grade", eye, **params)
    oedema = dme is not None and dme.positive
    if oedema:
        result.add(
            TriageLevel.HIGH,
            "dme",
            eye,
            probability=round(dme.probability, 2),
            threshold=round(dme.threshold, 2),
        )
    return oedema or (dr is not None and (dr.grade > 0 or dr.referable))


def triage_reason_text(reason: dict[str, Any]) -> str:
    """One reason in the active language, e.g. "OD: glaucoma suspicion (p=0.81) with IOP 24 mmHg"."""
    params = dict(reason.get("params", {}))
    if "label_zh" in params:
        params["label"] = (
            params["label_zh"]
            if (get_language() or "zh-hans").startswith("zh")
            else params["label_en"]
        )
    if "va_category" in params:
        chinese = (get_language() or "zh-hans").startswith("zh")
        category = params["va_category"]
        params["va"] = LOW_VISION_CHINESE.get(category, category) if chinese else category
    if "grade" in params:
        params["grade_text"] = dr_grade_words(int(params["grade"]), get_language() or "zh-hans")
    templates = {
        "analysis_failed": _("AI analysis failed: review the photo yourself"),
        "ungradable": _("photo not gradable: retake"),
        "monochrome_photo": _(
            "monochrome photo (greyscale or red-free): colour AI not applicable, review the photo yourself"
        ),
        "glaucoma_with_high_iop": _("%(label)s (p=%(probability)s) with IOP %(iop)s mmHg"),
        "sight_threatening": _("possible sight-threatening %(label)s (p=%(probability)s)"),
        "dr_vision_threatening": _(
            "vision-threatening diabetic retinopathy: %(grade_text)s (p=%(probability)s), "
            "urgent referral"
        ),
        "dr_referable": _(
            "referable diabetic retinopathy: %(grade_text)s, "
            "P(≥R%(referable_from)s)=%(p_referable)s, referral within weeks"
        ),
        "dr_grade": _("diabetic retinopathy: %(grade_text)s (p=%(probability)s)"),
        "dme": _(
            "diabetic macular oedema (p=%(probability)s ≥ %(threshold)s), referral within weeks"
        ),
        "referable_finding": _("referable finding: %(label)s (p=%(probability)s)"),
        "finding": _("finding: %(label)s (p=%(probability)s)"),
        "low_vision_normal_photo": _("low vision (%(va)s) with a normal-looking photo"),
        "iop_very_high": _("IOP %(iop)s mmHg, far above normal"),
        "iop_high": _("IOP %(iop)s mmHg, above 21"),
    }
    template = templates.get(reason.get("code", ""), reason.get("code", ""))
    text = template % params if params else template
    eye = reason.get("eye")
    return f"{eye}: {text}" if eye else text
