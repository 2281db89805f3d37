from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from core.admin_utils import AuditedViewMixin, add_service_errors
from patients.models import Patient
from patients.services import (
    EDITABLE_FIELDS,
    patient_clean_fields,
    patient_create,
    patient_delete,
    patient_record_view,
    patient_update,
)


class PatientAdminForm(forms.ModelForm):
    class Meta:
        model = Patient
        fields = list(EDITABLE_FIELDS)
        widgets = {"date_of_birth": forms.DateInput(attrs={"type": "date"})}

    def clean(self):
        cleaned = super().clean()
        values = {name: cleaned.get(name) for name in EDITABLE_FIELDS if name not in self.errors}
        try:
            normalized = patient_clean_fields(
                values, instance=self.instance if self.instance.pk else None
            )
        except ValidationError as exc:
            add_service_errors(self, exc)
        else:
            cleaned.update(normalized)
        return cleaned

    def validate_unique(self):
        # The service checks uniqueness with a message naming the existing patient.
        pass


@admin.register(Patient)
class PatientAdmin(AuditedViewMixin, admin.ModelAdmin):
    form = PatientAdminForm
    list_display = ("patient_id", "name", "sex", "age", "phone_masked", "id_masked", "created_at")
    list_filter = ("sex", "created_at")
    search_fields = ("patient_id", "name", "phone", "=national_id")
    readonly_fields = ("patient_id", "created_by", "created_at", "updated_at")
    date_hierarchy = "created_at"
    list_per_page = 50

    @admin.display(description=_("age"))
    def age(self, obj: Patient) -> int:
        return obj.age

    @admin.display(description=_("phone"))
    def phone_masked(self, obj: Patient) -> str:
        return obj.masked_phone

    @admin.display(description=_("resident ID number"))
    def id_masked(self, obj: Patient) -> str:
        return obj.masked_national_id

    def audit_view(self, request, obj: Patient) -> None:
        patient_record_view(actor=request.user, patient=obj)

    def save_model(self, request, obj: Patient, form, change: bool) -> None:
        values = {name: form.cleaned_data[name] for name in EDITABLE_FIELDS}
        if change:
            # The form has already copied its values onto `obj`; compare against the stored row.
            patient_update(actor=request.user, patient=Patient.objects.get(pk=obj.pk), **values)
        else:
            created = patient_create(actor=request.user, **values)
            obj.pk, obj.patient_id = created.pk, created.patient_id

    def delete_model(self, request, obj: Patient) -> None:
        patient_delete(actor=request.user, patient=obj)

    def delete_queryset(self, request, queryset) -> None:
        for patient in queryset:
            patient_delete(actor=request.user, patient=patient)
