"""Forms of the staff web UI for patients; validation proper is the service's (patient_clean_fields)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from core.text import normalize_name
from patients.models import Sex


class PatientSearchForm(forms.Form):
    q = forms.CharField(
        label=_("Patient ID, name, pinyin, phone or ID number"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )


class PatientForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    # Sex and date of birth may be left empty when a resident ID number is given: the
    # service fills them from it (and static/clinic/patient_form.js already in the browser).
    sex = forms.ChoiceField(
        label=_("Sex"), choices=Sex.choices, widget=forms.RadioSelect, required=False
    )
    date_of_birth = forms.DateField(
        label=_("Date of birth"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
    )
    phone = forms.CharField(
        label=_("Phone"),
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
        help_text=_("Mobile (11 digits) or landline with area code."),
    )
    national_id = forms.CharField(
        label=_("Resident ID number"),
        required=False,
        max_length=18,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        help_text=_(
            "Optional; 18 characters. Must match the date of birth and sex, which are "
            "filled from it when left empty."
        ),
    )
    notes = forms.CharField(
        label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def clean_name(self) -> str:
        return normalize_name(self.cleaned_data["name"])

    def clean(self) -> dict:
        cleaned = super().clean()
        if not cleaned.get("national_id") and "national_id" not in self.errors:
            if not cleaned.get("sex") and "sex" not in self.errors:
                self.add_error("sex", _("Choose male, female or unknown."))
            if not cleaned.get("date_of_birth") and "date_of_birth" not in self.errors:
                self.add_error("date_of_birth", _("Enter the date of birth."))
        return cleaned
