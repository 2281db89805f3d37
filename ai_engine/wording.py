"""The engine's stored codes (quality reasons, heatmap zones, stages) and the diabetic eye
results in the reader's language."""

from __future__ import annotations

from typing import Any

from django.utils.translation import get_language
from django.utils.translation import gettext as gettext_now
from django.utils.translation import gettext_lazy as _

from ai_engine.inference.diabetic import DrAssessment, EyeDiabetic

# Always bilingual, whatever the page's or report's language (like the PDF's safety marks).
RESEARCH_ONLY = "仅供研究——不可用于诊断 / research use — not for diagnosis"

QUALITY_REASONS = {
    "no_fundus": _("No fundus visible in the photo"),
    "small_field_of_view": _("Field of view too small"),
    "underexposed": _("Too dark (underexposed)"),
    "overexposed": _("Too bright (overexposed)"),
    "low_contrast": _("Contrast too low"),
    "out_of_focus": _("Out of focus (blurred)"),
    "too_small": _("Image resolution too small"),
    "partial_field": _("Part of the field hidden or missing (obstruction)"),
    "quality_model": _("The image-quality model judges the photo ungradable"),
    "monochrome": _(
        "Monochrome fundus photo (greyscale or red-free): colour AI models not applicable — "
        "review the photo yourself"
    ),
}

ABNORMAL_AREAS = {
    "optic_disc": _("optic disc"),
    "macula": _("macula"),
    "vascular_arcade": _("vascular arcade"),
    "periphery": _("retinal periphery"),
    "posterior_pole": _("posterior pole"),
}

# ai_engine.monitoring.STAGE_ORDER: the steps of one analysis, timed on the operations page.
STAGES = {
    "decode": _("decode the photo"),
    "crop": _("find and crop the fundus"),
    "quality": _("quality check"),
    "forward": _("model inference"),
    "cam": _("heatmaps"),
    "png": _("save the heatmaps"),
    "total": _("total"),
}


def quality_reason_text(code: str) -> str:
    """A quality reason in the active language; an unknown one as stored."""
    return str(QUALITY_REASONS.get(code, code))


def area_text(code: str) -> str:
    """A heatmap zone in the active language; older rows stored a name, shown as stored."""
    return str(ABNORMAL_AREAS.get(code, code))


def stage_text(code: str) -> str:
    return str(STAGES.get(code, code))


def _p(value: float) -> str:
    return f"{value:.2f}"


def dr_rule_text(dr: DrAssessment) -> str:
    """The decision rule the DR model actually used for "referable", with its numbers, e.g.
    "可转诊：P(≥R2)=0.41 ≥ 阈值 0.30（模型卡的筛查工作点，灵敏度优先）"."""
    return dr_rule_words(
        grade=dr.grade,
        referable_from=dr.referable_from,
        p_referable=dr.p_referable,
        threshold=dr.referable_threshold,
        referable=dr.referable,
    )


def dr_rule_words(
    *, grade: int, referable_from: int, p_referable: float, threshold: float | None, referable: bool
) -> str:
    """:func:`dr_rule_text` from stored values (a report's facts)."""
    values = {
        "from": referable_from,
        "grade": grade,
        "p": _p(p_referable),
        "t": "" if threshold is None else _p(threshold),
    }
    if threshold is None:
        return gettext_now("By the most probable grade: referable from R%(from)s") % values
    if p_referable >= threshold:
        return (
            gettext_now(
                "Referable: P(≥R%(from)s)=%(p)s ≥ threshold %(t)s (the model card's screening "
                "operating point, sensitivity first)"
            )
            % values
        )
    if referable:  # a vision-threatening grade under a high operating point
        return (
            gettext_now("Referable: the most probable grade R%(grade)s threatens vision") % values
        )
    return (
        gettext_now(
            "Not referable: P(≥R%(from)s)=%(p)s < threshold %(t)s (the model card's screening "
            "operating point, sensitivity first)"
        )
        % values
    )


def diabetic_eye_view(eye: EyeDiabetic) -> dict[str, Any] | None:
    """One eye's DR grade and macular oedema for a page or report, in the active language
    (None when no DR or DME model read the eye's photo)."""
    if not eye.assessed:
        return None
    language = get_language() or "zh-hans"
    view: dict[str, Any] = {
        "referable": eye.referable,
        "vision_threatening": eye.vision_threatening,
        "dr": None,
        "dme": None,
        "models": [],
        "research_only": RESEARCH_ONLY,
    }
    for assessment in (eye.dr, eye.dme):
        if assessment is not None:
            view["models"].append(
                {
                    "name": assessment.model_name,
                    "version": assessment.model_version,
                    "demonstration": assessment.demonstration,
                    "evidence": assessment.evidence(language),
                }
            )
    view["demonstration"] = any(model["demonstration"] for model in view["models"])
    if eye.dr is not None:
        dr = eye.dr
        view["dr"] = {
            "grade": dr.grade,
            "text": dr.words(language),
            "other_text": dr.words("en" if language.startswith("zh") else "zh"),
            "probability": _p(dr.grade_probability),
            "p_referable": _p(dr.p_referable),
            "referable_from": dr.referable_from,
            "referable": dr.referable,
            "severe": dr.severe,
            "rule": dr_rule_text(dr),
        }
    if eye.dme is not None:
        view["dme"] = {
            "positive": eye.dme.positive,
            "text": eye.dme.words(language),
            "probability": _p(eye.dme.probability),
            "threshold": _p(eye.dme.threshold),
        }
    return view
