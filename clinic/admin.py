from __future__ import annotations

from django.contrib import admin

from clinic.models import AuditEvent, WebhookDelivery


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log, read-only for everyone, administrators included."""

    list_display = (
        "at",
        "actor_username",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "patient_ref",
        "source",
        "ip_address",
    )
    list_filter = ("action", "source", "object_type", "at")
    search_fields = ("=patient_ref", "actor_username", "=object_id", "object_repr", "=request_id")
    date_hierarchy = "at"
    list_per_page = 100
    readonly_fields = [field.name for field in AuditEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
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
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
