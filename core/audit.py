"""The audit log's one writer, and the request context it records (IP, source, request ID).

The context travels in a contextvar set by `AuditContextMiddleware` for web requests and by
`audit_source()` for tasks and commands, so services need no request parameter.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.http import HttpRequest, HttpResponse

from core.context import (
    AuditContext,
    _context,
    audit_source,
    client_ip,
    current_audit_context,
)
from core.models import AuditEvent

__all__ = ["AuditContext", "audit_log", "audit_source", "current_audit_context", "field_changes"]


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        source = (
            "admin" if path.startswith("/admin/") else "api" if path.startswith("/api/") else "web"
        )
        request_id = request.META.get("HTTP_X_REQUEST_ID", "")[:64] or uuid.uuid4().hex
        request.request_id = request_id
        token = _context.set(
            AuditContext(
                source=source,
                ip_address=client_ip(request),
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
                request_id=request_id,
            )
        )
        try:
            response = self.get_response(request)
        finally:
            _context.reset(token)
        response["X-Request-ID"] = request_id
        return response


def audit_log(
    *,
    actor,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    patient_ref: str = "",
    changes: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event. `obj` fills type, id and repr unless they are given."""
    context = _context.get()
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:200]
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEvent.objects.create(
        actor=actor if authenticated else None,
        actor_username=actor.get_username() if authenticated else "",
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:200],
        patient_ref=patient_ref,
        changes=changes or {},
        source=context.source,
        ip_address=context.ip_address,
        user_agent=context.user_agent,
        request_id=context.request_id,
    )


def field_changes(instance: models.Model, new_values: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: [old, new]} for the values that differ, as JSON-friendly strings."""
    changes: dict[str, list[Any]] = {}
    for name, new in new_values.items():
        old = getattr(instance, name)
        if old != new:
            changes[name] = [_jsonable(old), _jsonable(new)]
    return changes


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)
