"""Roles: one auth Group per role, with exactly the permissions that role needs.

The groups are created by a data migration (clinic 0002) and re-synced by later apps'
migrations and by `manage.py sync_roles`, which all call `sync_role_groups`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


class Role(models.TextChoices):
    ADMINISTRATOR = "administrator", _("Administrator")
    DOCTOR = "doctor", _("Doctor")
    TECHNICIAN = "technician", _("Technician")
    PATIENT = "patient", _("Patient")


STAFF_ROLES = (Role.ADMINISTRATOR, Role.DOCTOR, Role.TECHNICIAN)

# "app_label.codename"; an "app_label.*" entry grants every permission of that app, and a
# "-app_label.codename" entry takes one back.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.ADMINISTRATOR: [
        "patients.*",
        "screening.*",
        "ai_engine.*",
        "reports.*",
        # Clinical conclusions are the doctors': an administrator who is also a doctor holds both roles.
        "-screening.add_doctorreview",
        "-screening.change_doctorreview",
        "-screening.sign_doctorreview",
        "-reports.approve_summary",
        "core.view_auditevent",
        "clinic.view_webhookdelivery",
        "clinic.view_workerheartbeat",
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "auth.view_group",
        "django_q.view_task",
        "django_q.view_success",
        "django_q.view_failure",
        "django_q.view_schedule",
        "django_q.view_ormq",
    ],
    Role.DOCTOR: [
        "patients.view_patient",
        "screening.view_screeningrecord",
        "screening.view_fundusimage",
        "screening.view_doctorreview",
        "screening.add_doctorreview",
        "screening.change_doctorreview",
        "screening.sign_doctorreview",
        "screening.view_followupcontact",
        "screening.add_followupcontact",
        "ai_engine.view_analysis",
        "ai_engine.view_finding",
        "ai_engine.view_modelpackage",
        "ai_engine.rerun_analysis",
        "reports.view_report",
        "reports.add_report",
        "reports.change_report",
        "reports.approve_summary",
    ],
    Role.TECHNICIAN: [
        "patients.view_patient",
        "patients.add_patient",
        "patients.change_patient",
        "screening.view_screeningrecord",
        "screening.add_screeningrecord",
        "screening.change_screeningrecord",
        "screening.view_fundusimage",
        "screening.add_fundusimage",
        "screening.delete_fundusimage",
        "screening.view_doctorreview",
        "screening.view_followupcontact",
        "screening.add_followupcontact",
        "ai_engine.view_analysis",
        "ai_engine.view_finding",
        "ai_engine.view_modelpackage",
        "ai_engine.rerun_analysis",
        "reports.view_report",
    ],
    # Patients reach only their own data through the API; they hold no model permission.
    Role.PATIENT: [],
}


def sync_role_groups(apps, schema_editor=None) -> None:
    """Create the role groups and set their permissions; usable from data migrations.

    Permissions of apps not installed yet are skipped: their own migrations sync again.
    """
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        # Historical app configs (migrations) have no models_module, which create_permissions
        # requires; the real registry's must be left as it was.
        original = getattr(app_config, "models_module", None)
        app_config.models_module = original or True
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = original

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, entries in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=str(role))
        permission_ids: set[int] = set()
        for entry in entries:
            revoke = entry.startswith("-")
            app_label, codename = entry.lstrip("-").split(".", 1)
            matching = Permission.objects.filter(content_type__app_label=app_label)
            if codename != "*":
                matching = matching.filter(codename=codename)
            ids = set(matching.values_list("id", flat=True))
            permission_ids = permission_ids - ids if revoke else permission_ids | ids
        group.permissions.set(permission_ids)


def user_roles(user: AbstractBaseUser | AnonymousUser | None) -> set[str]:
    if user is None or not user.is_authenticated:
        return set()
    names = {group.name for group in user.groups.all()}
    if user.is_superuser:
        names.add(Role.ADMINISTRATOR.value)
    return names & set(Role.values)


def user_role_labels(user: AbstractBaseUser | AnonymousUser | None) -> list[str]:
    roles = user_roles(user)
    return [str(label) for value, label in Role.choices if value in roles]


# Clinical acts: holding the permission is not enough (a superuser holds every permission);
# the user must hold the doctor role itself.
CLINICAL_PERMISSIONS = frozenset(
    {
        "screening.add_doctorreview",
        "screening.change_doctorreview",
        "screening.sign_doctorreview",
        "reports.approve_summary",
    }
)


def is_doctor(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    """Membership of the doctor group; `is_superuser` never stands in for it."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.groups.filter(name=Role.DOCTOR.value).exists()


def user_may(user: AbstractBaseUser | AnonymousUser | None, permission: str) -> bool:
    """`has_perm`, and for a clinical act also the doctor role: every check of a permission
    (services, API, web, admin, templates) goes through here."""
    if user is None or not user.is_authenticated or not user.has_perm(permission):
        return False
    return permission not in CLINICAL_PERMISSIONS or is_doctor(user)


def require_permission(user: AbstractBaseUser | AnonymousUser | None, permission: str) -> None:
    """Raise PermissionDenied unless `user` may do `permission`; services call this first."""
    if not user_may(user, permission):
        if permission in CLINICAL_PERMISSIONS and user is not None and user.is_authenticated:
            raise PermissionDenied(
                _("Only a doctor may write, sign or amend a review or approve a summary.")
            )
        raise PermissionDenied(_("You do not have permission to do this."))


def role_assign(*, user, role: Role | str) -> None:
    """Put `user` in the group of `role` (staff roles also get admin access); audited. For the
    system's own assignments (first accounts, a patient's binding); people use user_set_roles."""
    from django.contrib.auth.models import Group

    group = Group.objects.get(name=str(role))
    before = _role_names(user)
    user.groups.add(group)
    if role in STAFF_ROLES and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    _audit_role_change(actor=None, user=user, before=before, after=before | {str(role)})


# --- who may change whose roles ------------------------------------------------------------
def grantable_roles(actor) -> set[str]:
    """Superusers grant and remove every role; anyone else only the roles they hold."""
    if actor.is_superuser:
        return set(Role.values)
    return _role_names(actor)


def user_roles_check(*, actor, user, roles: set[str], is_superuser: bool | None = None) -> None:
    """PermissionDenied unless `actor` may give `user` exactly `roles` (and `is_superuser`).

    No one changes their own roles or superuser status; only superusers change anyone's
    superuser status, or the account of a superuser; an administrator grants and removes only
    roles they hold themselves (so never the doctor's, unless they are a doctor)."""
    require_permission(actor, "auth.change_user")
    unknown = roles - set(Role.values)
    if unknown:
        raise PermissionDenied(
            _("Unknown role: %(roles)s.") % {"roles": ", ".join(sorted(unknown))}
        )
    changed = _role_names(user) ^ roles
    superuser_changed = is_superuser is not None and is_superuser != user.is_superuser
    if not (changed or superuser_changed):
        return
    if user.pk == actor.pk:
        raise PermissionDenied(_("No one can change their own roles; ask another administrator."))
    if (superuser_changed or user.is_superuser) and not actor.is_superuser:
        raise PermissionDenied(_("Only a superuser can change superuser status or a superuser."))
    refused = changed - grantable_roles(actor)
    if refused:
        labels = [str(label) for value, label in Role.choices if value in refused]
        raise PermissionDenied(
            _("You can grant or remove only roles you hold yourself, not: %(roles)s.")
            % {"roles": ", ".join(labels)}
        )


def user_set_roles(*, actor, user, roles: set[str], is_superuser: bool | None = None) -> None:
    """Give `user` exactly `roles` (role groups) and, if given, superuser status; audited."""
    from django.contrib.auth.models import Group

    user_roles_check(actor=actor, user=user, roles=roles, is_superuser=is_superuser)
    before, was_superuser = _role_names(user), user.is_superuser
    others = user.groups.exclude(name__in=Role.values)
    user.groups.set([*others, *Group.objects.filter(name__in=roles)])
    if is_superuser is not None and is_superuser != was_superuser:
        user.is_superuser = is_superuser
        user.save(update_fields=["is_superuser"])
    if roles & {str(role) for role in STAFF_ROLES} and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    _audit_role_change(
        actor=actor,
        user=user,
        before=before,
        after=set(roles),
        superuser=(was_superuser, user.is_superuser),
    )


def _role_names(user) -> set[str]:
    return set(user.groups.filter(name__in=Role.values).values_list("name", flat=True))


def _audit_role_change(
    *, actor, user, before: set[str], after: set[str], superuser: tuple[bool, bool] = (False, False)
) -> None:
    from core.audit import audit_log
    from core.models import AuditEvent

    changes: dict[str, list] = {}
    if before != after:
        changes["roles"] = [sorted(before), sorted(after)]
    if superuser[0] != superuser[1]:
        changes["is_superuser"] = list(superuser)
    if changes:
        audit_log(actor=actor, action=AuditEvent.Action.UPDATE, obj=user, changes=changes)
