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

    def __str__(self) -> str:
        try:
            kind = apps.get_model(self.object_type)._meta.verbose_name
        except (LookupError, ValueError):  # a type no model has (any more)
            kind = self.object_type
        at = timezone.localtime(self.at)
        return f"{at:%Y-%m-%d %H:%M:%S} {self.actor_username or '-'} {self.get_action_display()} {kind} #{self.object_id}"

    def save(self, *args, **kwargs) -> None:
        # Append-only: the database refuses it too (trigger on PostgreSQL, see migration 0003).
        if not self._state.adding:
            raise PermissionError("Audit events are append-only and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only and cannot be deleted.")


class WebhookDelivery(models.Model):
    """One attempt to deliver an outbound webhook event; attempts of one event share event_id."""

    event_id = models.UUIDField(_("event ID"), db_index=True)
    event = models.CharField(_("event"), max_length=50)
    # The report's ID without a foreign key: clinic's tables must not depend on later apps.
    object_id = models.CharField(_("object ID"), max_length=64)
    url = models.URLField(_("URL"), max_length=500)
    payload = models.JSONField(_("payload"), encoder=DjangoJSONEncoder)
    attempt = models.PositiveSmallIntegerField(_("attempt"))
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    delivered = models.BooleanField(_("delivered"), default=False)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    next_retry_at = models.DateTimeField(_("next retry"), null=True, blank=True)
    attempted_at = models.DateTimeField(_("attempted at"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-attempted_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["event_id", "attempt"], name="unique_webhook_attempt")
        ]

    def __str__(self) -> str:
        return (
            f"{self.event} {self.object_id} #{self.attempt} {self.status_code or self.error[:40]}"
        )


class WorkerHeartbeat(models.Model):
    """When a task cluster last proved it is alive (a scheduled task on each cluster writes it)."""

    cluster = models.CharField(_("cluster"), max_length=50, primary_key=True)
    host = models.CharField(_("host"), max_length=200, blank=True)
    seen_at = models.DateTimeField(_("last seen"))

    class Meta:
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")

    def __str__(self) -> str:
        return f"{self.cluster} {self.seen_at:%Y-%m-%d %H:%M:%S}"
