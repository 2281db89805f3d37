from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditEvent(models.Model):
    """One append-only line of the audit log: who did what to which object, when, from where."""

    class Action(models.TextChoices):
        CREATE = "create", _("Created")
        UPDATE = "update", _("Changed")
        DELETE = "delete", _("Deleted")
        VIEW = "view", _("Viewed")
        DOWNLOAD = "download", _("Downloaded")
        VIEW_ORIGINAL = "view_original", _("Original file opened")
        SIGN = "sign", _("Signed")
        LOGIN = "login", _("Logged in")
        LOGIN_FAILED = "login_failed", _("Login failed")

    at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    # No database constraint: deleting a user must never touch the log.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_username = models.CharField(_("actor username"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    object_type = models.CharField(_("object type"), max_length=100)
    object_id = models.CharField(_("object ID"), max_length=64, blank=True)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    patient_ref = models.CharField(_("patient ID"), max_length=32, blank=True, db_index=True)
    changes = models.JSONField(_("changes"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    source = models.CharField(_("source"), max_length=20, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    request_id = models.CharField(_("request ID"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit log")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]
        # The table kept its name when the model moved from clinic to core (clinic 0009): its
        # rows and PostgreSQL's append-only trigger (clinic 0003) stay where they are.
        db_table = "clinic_auditevent"

    def __str__(self) -> str:
        try:
            kind = apps.get_model(self.object_type)._meta.verbose_name
        except (LookupError, ValueError):  # a type no model has (any more)
            kind = self.object_type
        at = timezone.localtime(self.at)
        return f"{at:%Y-%m-%d %H:%M:%S} {self.actor_username or '-'} {self.get_action_display()} {kind} #{self.object_id}"

    def save(self, *args, **kwargs) -> None:
        # Append-only: the database refuses it too (trigger on PostgreSQL, see clinic migration 0003).
        if not self._state.adding:
            raise PermissionError("Audit events are append-only and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only and cannot be deleted.")


class VaNotation(models.TextChoices):
    """How visual acuity is shown: the 5-point record (GB/T 11533) or decimal."""

    FIVE_POINT = "five_point", _("5-point (4.0–5.3)")
    DECIMAL = "decimal", _("Decimal (0.1–1.5)")


class StaffProfile(models.Model):
    """A staff user's own settings: acuity notation and, for doctors, the signature image."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="staff_profile",
    )
    # Empty: the clinic's VA_NOTATION setting.
    va_notation = models.CharField(
        _("visual acuity notation"), max_length=20, choices=VaNotation.choices, blank=True
    )
    signature = models.FileField(_("signature image"), max_length=255, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("staff profile")
        verbose_name_plural = _("staff profiles")

    def __str__(self) -> str:
        return str(self.user)
