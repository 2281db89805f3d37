"""Forms of the staff web UI for screenings; the services validate ranges and the workflow."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from screening.models import (
    ConclusionCode,
    Correction,
    DrGrade,
    RecallStatus,
    Recommendation,
    ScreeningRecord,
)
from screening.services import ACUITY_INPUTS, DME_ERRORS, DR_GRADE_ERRORS


def _decimal(label, *, step: str, help_text="") -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=False,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"step": step, "inputmode": "decimal"}),
    )


ACUITY_HELP = _("5-point (4.9) or decimal (0.8); CF, HM, LP, NLP or 指数/30cm, 手动, 光感, 无光感")


def _acuity(label) -> forms.CharField:
    # Text, not a number input: the 5-point, decimal and low-vision entries all fit.
    return forms.CharField(
        label=label,
        required=False,
        max_length=20,
        help_text=ACUITY_HELP,
        widget=forms.TextInput(attrs={"autocomplete": "off", "size": 8}),
    )


def _correction(label) -> forms.ChoiceField:
    return forms.ChoiceField(
        label=label,
        choices=[("", _("Not recorded")), *Correction.choices],
        required=False,
    )


class RecordForm(forms.Form):
    va_od = _acuity(_("Uncorrected visual acuity, right eye (OD)"))
    va_os = _acuity(_("Uncorrected visual acuity, left eye (OS)"))
    cva_od = _acuity(_("Corrected visual acuity, right eye (OD)"))
    cva_os = _acuity(_("Corrected visual acuity, left eye (OS)"))
    cva_correction_od = _correction(_("Correction, right eye (OD)"))
    cva_correction_os = _correction(_("Correction, left eye (OS)"))
    phva_od = _acuity(_("Pinhole visual acuity, right eye (OD)"))
    phva_os = _acuity(_("Pinhole visual acuity, left eye (OS)"))
    iop_od = _decimal(_("IOP, right eye (OD), mmHg"), step="0.1", help_text=_("Normal 10–21 mmHg"))
    iop_os = _decimal(_("IOP, left eye (OS), mmHg"), step="0.1", help_text=_("Normal 10–21 mmHg"))
    notes = forms.CharField(
        label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    @staticmethod
    def initial_for(record: ScreeningRecord, notation: str) -> dict[str, object]:
        """A stored record as the form's initial values, acuity written in `notation`."""
        initial: dict[str, object] = {
            name: getattr(record, name)
            for name in ("cva_correction_od", "cva_correction_os", "iop_od", "iop_os", "notes")
        }
        for name in ACUITY_INPUTS:
            kind, eye = name.rsplit("_", 1)
            initial[name] = record.acuity_text(kind, eye, notation)
        return initial


def _dr_grade(label, eye: str) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=label,
        choices=[("", _("Not graded")), *DrGrade.choices],
        required=False,
        empty_value="",
        error_messages={"invalid_choice": DR_GRADE_ERRORS[eye]},
    )


def _dme(label, eye: str) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=label,
        choices=[("", _("Not assessed")), ("yes", _("Present")), ("no", _("Absent"))],
        coerce=lambda value: value == "yes",
        required=False,
        empty_value=None,
        error_messages={"invalid_choice": DME_ERRORS[eye]},
    )


def dme_choice(value: bool | None) -> str:
    """A stored macular-oedema answer as the form's choice."""
    return "" if value is None else ("yes" if value else "no")


def _eye_conclusion(label) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label=label,
        choices=ConclusionCode.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )


def _eye_diagnoses(label) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=200,
        help_text=_(
            "ICD-10, separated by commas, e.g. E11.3, H36.0. Left empty, the picked "
            "conclusions' codes are filled in."
        ),
        widget=forms.TextInput(
            attrs={"list": "icd10-codes", "autocomplete": "off", "data-icd10": "true"}
        ),
    )


def _eye_recommendation(label) -> forms.ChoiceField:
    return forms.ChoiceField(
        label=label,
        choices=[("", _("Not given")), *Recommendation.choices],
        required=False,
    )


def icd10_codes_text(codes: list[str]) -> str:
    """Stored ICD-10 codes as the form shows them."""
    return ", ".join(codes)


class ReviewForm(forms.Form):
    conclusion_codes = forms.MultipleChoiceField(
        label=_("Conclusion"),
        choices=ConclusionCode.choices,
        required=False,
        help_text=_("For the visit. Left empty, it is the eyes' conclusions together."),
        widget=forms.CheckboxSelectMultiple,
    )
    conclusion_text = forms.CharField(
        label=_("Conclusion (free text)"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    recommendation = forms.ChoiceField(
        label=_("Recommendation"),
        choices=Recommendation.choices,
        required=False,
        help_text=_("For the visit. Left empty, it is the most pressing of the eyes'."),
        widget=forms.RadioSelect,
    )
    recommendation_text = forms.CharField(
        label=_("Recommendation (free text)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    follow_up_months = forms.IntegerField(
        label=_("Follow-up in (months)"), required=False, min_value=1, max_value=36
    )
    follow_up_date = forms.DateField(
        label=_("or on a date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
    )
    dr_grade_od = _dr_grade(_("DR grade, right eye (OD)"), "od")
    dme_od = _dme(_("Macular oedema, right eye (OD)"), "od")
    dr_grade_os = _dr_grade(_("DR grade, left eye (OS)"), "os")
    dme_os = _dme(_("Macular oedema, left eye (OS)"), "os")
    conclusion_codes_od = _eye_conclusion(_("Conclusion, right eye (OD)"))
    diagnosis_codes_od = _eye_diagnoses(_("ICD-10 codes, right eye (OD)"))
    conclusion_text_od = forms.CharField(
        label=_("Conclusion text, right eye (OD)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    recommendation_od = _eye_recommendation(_("Recommendation, right eye (OD)"))
    conclusion_codes_os = _eye_conclusion(_("Conclusion, left eye (OS)"))
    diagnosis_codes_os = _eye_diagnoses(_("ICD-10 codes, left eye (OS)"))
    conclusion_text_os = forms.CharField(
        label=_("Conclusion text, left eye (OS)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    recommendation_os = _eye_recommendation(_("Recommendation, left eye (OS)"))
    amendment_reason = forms.CharField(
        label=_("Reason for the amendment"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    # The revision of the latest review when the page was shown: only what was seen is signed.
    revision = forms.IntegerField(
        label=_("Revision"), required=False, min_value=1, widget=forms.HiddenInput
    )

    def __init__(self, *args, is_amendment: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not is_amendment:
            del self.fields["amendment_reason"]
        else:
            self.fields["amendment_reason"].widget.attrs["required"] = True


# --- follow-up recall -----------------------------------------------------------------------
class RecallFilterForm(forms.Form):
    """The recall list's filters; every field may be left empty."""

    due_by = forms.DateField(
        label=_("Due by"),
        required=False,
        help_text=_("Empty: today."),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    due_from = forms.DateField(
        label=_("Due from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    status = forms.ChoiceField(
        label=_("Recall status"),
        required=False,
        choices=[("", _("Open (due, contacted, rescheduled)")), *RecallStatus.choices],
    )
    conclusion = forms.ChoiceField(
        label=_("Conclusion"), required=False, choices=[("", _("Any")), *ConclusionCode.choices]
    )
    icd10 = forms.RegexField(
        label=_("ICD-10 code"),
        required=False,
        max_length=10,
        regex=r"^[A-Za-z]\d{0,2}(\.\d{0,2})?$",
        help_text=_("A code or its start, e.g. E11 or H40.1"),
        error_messages={"invalid": _("Enter an ICD-10 code such as E11.3.")},
    )
    dr_grade = forms.ChoiceField(
        label=_("DR grade (either eye)"), required=False, choices=[("", _("Any")), *DrGrade.choices]
    )


class RecallMarkForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Mark as"),
        choices=[(value, label) for value, label in RecallStatus.choices if value != "due"],
        widget=forms.RadioSelect,
    )
    new_date = forms.DateField(
        label=_("New follow-up date"),
        required=False,
        help_text=_("Only when rescheduled."),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
