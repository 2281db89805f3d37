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
