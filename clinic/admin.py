from __future__ import annotations

from django.contrib import admin

from clinic.models import AuditEvent


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
