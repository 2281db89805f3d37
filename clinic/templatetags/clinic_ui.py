"""Template filters of the staff web UI: codes stored by the engine, rendered per language."""

from __future__ import annotations

from django import template
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

register = template.Library()

QUALITY_REASONS = {
    "no_fundus": _("No fundus visible in the photo"),
    "small_field_of_view": _("Field of view too small"),
    "underexposed": _("Too dark (underexposed)"),
    "overexposed": _("Too bright (overexposed)"),
    "low_contrast": _("Contrast too low"),
    "out_of_focus": _("Out of focus (blurred)"),
    "too_small": _("Image resolution too small"),
    "partial_field": _("Part of the field hidden or missing (obstruction)"),
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


def _is_chinese() -> bool:
    return (get_language() or "zh-hans").startswith("zh")


@register.filter
def quality_reason(code: str) -> str:
    return str(QUALITY_REASONS.get(code, code))


@register.filter
def area_name(code: str) -> str:
    return str(ABNORMAL_AREAS.get(code, code))


@register.filter
def finding_label(finding) -> str:
    """A finding's label in the reader's language (the card gives both)."""
    if _is_chinese():
        return finding.label_zh or finding.label_code
    return finding.label_en or finding.label_code


@register.filter
def card_label(label: dict) -> str:
    code = label.get("code", "")
    return (label.get("zh") if _is_chinese() else label.get("en")) or code


@register.filter
def triage_reason(reason: dict) -> str:
    from ai_engine.triage import triage_reason_text

    return triage_reason_text(reason)


@register.filter
def percent(value) -> str:
    if value is None:
        return "–"
    return f"{float(value) * 100:.0f}%"


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def is_scalar(value) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


@register.filter(name="can_see_statistics")
def can_see_statistics_filter(user) -> bool:
    from clinic.web import can_see_statistics

    return can_see_statistics(user)


NORMAL_LABEL_CODES = {"n", "normal", "0", "grade0"}


@register.filter
def is_normal_finding(finding) -> bool:
    """A label that means "no disease" (the card's `normal` flag, or the usual codes)."""
    card = getattr(getattr(finding.analysis, "package", None), "card", None) or {}
    for label in card.get("labels", []):
        if label.get("code") == finding.label_code and "normal" in label:
            return bool(label["normal"])
    return finding.label_code.lower() in NORMAL_LABEL_CODES
