from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from reports.services import SUMMARY_EDIT_MAX_CHARS


class SummaryForm(forms.Form):
    """The doctor's edited summary; approving it renders a new report version."""

    text = forms.CharField(
        label=_("Summary for the patient"),
        widget=forms.Textarea(attrs={"rows": 10, "cols": 90}),
        max_length=SUMMARY_EDIT_MAX_CHARS,
    )


class BatchPrintForm(forms.Form):
    """The day whose final reports are printed together."""

    day = forms.DateField(
        label=_("Day"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    part = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)
