"""Template filters of the staff web UI: codes stored by the engine, rendered per language."""

from __future__ import annotations

from django import template
from django.utils.translation import get_language

from ai_engine.wording import area_text, quality_reason_text, stage_text

register = template.Library()


def _is_chinese() -> bool:
    return (get_language() or "zh-hans").startswith("zh")


@register.filter
def quality_reason(code: str) -> str:
    return quality_reason_text(code)


@register.filter
def area_name(code: str) -> str:
    return area_text(code)


@register.filter
def stage_name(code: str) -> str:
    return stage_text(code)


@register.filter
def display_name(user) -> str:
    """A person as staff know them: the full name, else the username ("" for nobody)."""
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


@register.filter
def finding_label(finding) -> str:
    """A finding's label in the reader's language (the card gives both): a stored finding row,
    or the engine's result finding (``ai_engine.selectors.analysis_findings``)."""
    code = getattr(finding, "label_code", None) or getattr(finding, "code", "")
    if _is_chinese():
        return getattr(finding, "label_zh", None) or getattr(finding, "zh", "") or code
    return getattr(finding, "label_en", None) or getattr(finding, "en", "") or code


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
    from core.web import can_see_statistics

    return can_see_statistics(user)


@register.filter
def may(user, permission: str) -> bool:
    """`{% if user|may:"screening.sign_doctorreview" %}`: a clinical act needs the doctor role,
    which `perms` (True for a superuser) does not check."""
    from core.roles import user_may

    return user_may(user, permission)
