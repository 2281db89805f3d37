"""Small helpers shared by the staff web UI's views (patients, screening, ai_engine, clinic)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse

from core.roles import Role, user_may, user_roles

STATISTICS_ROLES = {Role.ADMINISTRATOR.value, Role.DOCTOR.value}


def staff_view(*permissions: str) -> Callable:
    """Log in first (anonymous users are redirected), then require every permission (403).

    Services check again; this keeps the refusal before any work and any audit entry.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not all(user_may(request.user, permission) for permission in permissions):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorator


def can_see_statistics(user) -> bool:
    return bool(user_roles(user) & STATISTICS_ROLES)


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: per field where the field exists."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            target = field if field in form.fields else None
            for message in ValidationError(errors).messages:
                form.add_error(target, message)
    else:
        for message in error.messages:
            form.add_error(None, message)
