from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


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
