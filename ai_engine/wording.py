"""The engine's stored codes (quality reasons, heatmap zones, stages) in the reader's language."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

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
