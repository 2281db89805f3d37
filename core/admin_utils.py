"""Admin helpers shared by the apps' ModelAdmins."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms import Form


def add_service_errors(form: Form, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: per field where it names one."""
    if hasattr(error, "error_dict"):
        for field, messages in error.message_dict.items():
            form.add_error(field if field in form.fields else None, messages)
    else:
        form.add_error(None, error.messages)


class AuditedViewMixin(admin.ModelAdmin):
    """Log each opening of an object's page: patient data viewed is patient data audited."""

    def audit_view(self, request, obj) -> None:
        raise NotImplementedError

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET":
            obj = self.get_object(request, object_id)
            if obj is not None and self.has_view_or_change_permission(request, obj):
                self.audit_view(request, obj)
        return super().change_view(request, object_id, form_url, extra_context)


class ReadOnlyAdminMixin:
    """Rows that only services write: the admin lists and shows them (every field read-only,
    plus `extra_readonly_fields`), and never adds, changes or deletes one."""

    extra_readonly_fields: tuple[str, ...] = ()

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields] + list(self.extra_readonly_fields)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
