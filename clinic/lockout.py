"""Brute-force protection (django-axes): what a locked-out person sees, and sign-in auditing."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

LOCKED_STATUS = 429


def lockout_minutes() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)


def lockout_response(
    request: HttpRequest, original_response=None, credentials: dict | None = None
) -> HttpResponse:
    """429 with a plain explanation: JSON for the API, a page for the web UI and the admin."""
    message = _(
        "Too many failed sign-ins for this account from your address. Try again in %(minutes)d minutes, "
        "or ask an administrator to unlock it."
    ) % {"minutes": lockout_minutes()}
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": {"code": "locked_out", "message": message, "fields": {}}},
            status=LOCKED_STATUS,
        )
    return render(
        request, "registration/locked_out.html", {"message": message}, status=LOCKED_STATUS
    )


def audit_sign_in(sender, request, user, **kwargs) -> None:
    from core.audit import audit_log
    from core.models import AuditEvent

    audit_log(actor=user, action=AuditEvent.Action.LOGIN, obj=user)


def audit_sign_in_failure(sender, credentials, request=None, **kwargs) -> None:
    from core.audit import audit_log
    from core.models import AuditEvent

    username = str((credentials or {}).get("username", ""))[:150]
    audit_log(
        actor=None,
        action=AuditEvent.Action.LOGIN_FAILED,
        object_type="auth.user",
        object_repr=username,
    )
