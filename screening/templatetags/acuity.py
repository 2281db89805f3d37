"""{% acuity record "va" "od" %}: a stored acuity in the viewer's notation (My settings, else
the clinic's VA_NOTATION); a fourth argument names the notation instead (reports)."""

from __future__ import annotations

from django import template

from core.profiles import va_notation_for
from screening.models import ScreeningRecord

register = template.Library()


@register.simple_tag(takes_context=True)
def acuity(context, record: ScreeningRecord, kind: str, eye: str, notation: str = "") -> str:
    if not notation:
        request = context.get("request")
        notation = va_notation_for(getattr(request, "user", None))
    return record.acuity_text(kind, eye, notation) or "–"


@register.simple_tag(takes_context=True)
def va_notation(context) -> str:
    """The viewer's notation: 'five_point' or 'decimal'."""
    request = context.get("request")
    return va_notation_for(getattr(request, "user", None))
