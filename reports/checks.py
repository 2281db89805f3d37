"""System checks: the LLM's worst-case time must fit inside the report task's timeout; the
clinic logo printed on reports must be readable."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register

from core.branding import LogoError, clinic_logo_png

# A malformed reply is asked once more, so a summary may take two rounds of (retries + 1) calls.
LLM_ROUNDS = 2
RENDER_ALLOWANCE_S = 30


@register()
def llm_fits_in_task_timeout(app_configs, **kwargs):
    timeout = settings.Q_CLUSTER.get("timeout") or 0
    worst = LLM_ROUNDS * (settings.LLM_MAX_RETRIES + 1) * settings.LLM_TIMEOUT
    if timeout and worst + RENDER_ALLOWANCE_S >= timeout:
        return [
            Error(
                f"LLM_TIMEOUT × (LLM_MAX_RETRIES + 1) × {LLM_ROUNDS} = {worst:g} s, plus "
                f"{RENDER_ALLOWANCE_S} s for rendering, does not fit in Q_CLUSTER['timeout'] = {timeout} s.",
                hint="Lower LLM_TIMEOUT or LLM_MAX_RETRIES, or raise Q_TIMEOUT.",
                id="reports.E001",
            )
        ]
    return []


@register()
def clinic_logo_readable(app_configs, **kwargs):
    """A logo that cannot be read is left off the reports; say so before the first one prints."""
    try:
        clinic_logo_png()
    except LogoError as exc:
        return [
            Warning(
                f"CLINIC_LOGO {settings.CLINIC_LOGO!r} {exc}: reports are printed without a logo.",
                hint="Point CLINIC_LOGO at a PNG or JPEG file (an absolute path, or a name in "
                "the media storage), or unset it.",
                id="reports.W001",
            )
        ]
    return []
