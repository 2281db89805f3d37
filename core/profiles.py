"""A staff user's own settings (StaffProfile): reads and the audited write."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from core.audit import audit_log
from core.models import AuditEvent, StaffProfile, VaNotation
from core.roles import STAFF_ROLES, user_roles


def clinic_va_notation() -> str:
    """The clinic's acuity notation (VA_NOTATION): reports, the mini-program, new users."""
    return settings.VA_NOTATION


def va_notation_for(user) -> str:
    """The notation this user reads acuity in: their own choice, else the clinic's."""
    if user is None or not user.is_authenticated:
        return clinic_va_notation()
    cached = getattr(user, "_va_notation", None)
    if cached is None:
        chosen = (
            StaffProfile.objects.filter(user=user).values_list("va_notation", flat=True).first()
        )
        cached = chosen or clinic_va_notation()
        user._va_notation = cached  # once per request: the user object lives as long
    return cached


def is_staff_member(user) -> bool:
    """Holds an administrator, doctor or technician role (patients have no staff settings)."""
    return bool(user_roles(user) & {str(role) for role in STAFF_ROLES})


def staff_profile_set_va_notation(*, actor, va_notation: str) -> StaffProfile:
    """The actor's own acuity notation ('' : the clinic's). Staff only; audited."""
    if not is_staff_member(actor):
        raise PermissionDenied
    if va_notation not in ("", *VaNotation.values):
        raise ValidationError(
            {"va_notation": [_("Choose 5-point or decimal notation.")]}, code="invalid"
        )
    with transaction.atomic():
        profile, _created = StaffProfile.objects.select_for_update().get_or_create(user=actor)
        before = profile.va_notation
        if before != va_notation:
            profile.va_notation = va_notation
            profile.save(update_fields=["va_notation", "updated_at"])
            audit_log(
                actor=actor,
                action=AuditEvent.Action.UPDATE,
                obj=profile,
                changes={"va_notation": [before, va_notation]},
            )
    actor._va_notation = va_notation or clinic_va_notation()
    return profile
