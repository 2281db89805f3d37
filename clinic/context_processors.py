from __future__ import annotations

from django.http import HttpRequest

from core.branding import clinic_name
from core.roles import user_role_labels


def clinic(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    return {
        "CLINIC_NAME": clinic_name(),
        "user_roles": user_role_labels(user) if user is not None and user.is_authenticated else [],
    }
