from __future__ import annotations

from django.contrib import admin

from clinic.models import WebhookDelivery
from core.admin_utils import ReadOnlyAdminMixin


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Outbound webhook attempts, read-only: what was sent, what came back, when it retries."""

    list_display = (
        "attempted_at",
        "event",
        "object_id",
        "attempt",
        "status_code",
        "delivered",
        "next_retry_at",
    )
    list_filter = ("event", "delivered", "attempted_at")
    search_fields = ("=event_id", "=object_id")
    date_hierarchy = "attempted_at"
