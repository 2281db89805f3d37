from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.admin_utils import AuditedViewMixin, ReadOnlyAdminMixin, add_service_errors
from core.conflicts import StaleVersion
from core.profiles import clinic_va_notation
from core.roles import user_may
from patients.services import patient_record_view
from screening.forms import ACUITY_HELP
from screening.media import may_open_originals
from screening.models import (
    ConclusionCode,
    DoctorReview,
    FollowUpContact,
    FundusImage,
    ScreeningRecord,
)
from screening.services import (
    ACUITY_INPUTS,
    MEASUREMENT_FIELDS,
    REVIEW_FIELDS,
    image_delete,
    image_upload,
    record_clean_measurements,
    record_create,
    record_update,
    review_clean,
    review_refuse_if_stale,
    review_save_and_sign,
    review_save_draft,
)
from screening.uploads import validate_fundus_upload


def thumbnail_html(image: FundusImage) -> str:
    url = reverse("screening:fundus-image-file", args=[image.pk])
    return format_html(
        '<a href="{}" target="_blank" rel="noopener"><img src="{}?size=thumb" alt="{}" style="max-height:160px;border-radius:4px"></a>',
        url,
        url,
        image.get_eye_display(),
    )


class FundusImageInlineForm(forms.ModelForm):
    upload = forms.FileField(label=_("photo"), required=False)
    confirm_duplicate = forms.BooleanField(
        label=_("already stored for another screening: store it anyway"), required=False
    )

    class Meta:
        model = FundusImage
        fields = ("eye",)

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            return cleaned
        upload = cleaned.get("upload")
        if upload is None:
            if self.has_changed():
                self.add_error("upload", _("Choose a photo file."))
            return cleaned
        try:
            validate_fundus_upload(upload)
        except ValidationError as exc:
            self.add_error("upload", exc)
        return cleaned


class FundusImageInline(admin.TabularInline):
    model = FundusImage
    form = FundusImageInlineForm
    extra = 2
    max_num = 12
    fields = (
        "eye",
        "upload",
        "confirm_duplicate",
        "preview",
        "width",
        "height",
        "format",
        "original_name",
        "uploaded_by",
        "uploaded_at",
    )
    readonly_fields = (
        "preview",
        "width",
        "height",
        "format",
        "original_name",
        "uploaded_by",
        "uploaded_at",
    )

    @admin.display(description=_("preview"))
    def preview(self, obj: FundusImage) -> str:
        return thumbnail_html(obj) if obj.pk else "-"

    @admin.display(description=_("original file"))
    def original_file(self, obj: FundusImage) -> str:
        if not obj.pk:
            return "-"
        url = reverse("screening:fundus-image-file", args=[obj.pk]) + "?original=1"
        return format_html('<a href="{}">{}</a>', url, _("download (audited)"))

    # The original, as uploaded, is offered to administrators only (screening.media).
    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        return [*fields, "original_file"] if may_open_originals(request.user) else fields

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "original_file"] if may_open_originals(request.user) else fields

    def has_change_permission(self, request, obj=None) -> bool:
        # Stored photos are never edited; new ones are added, mistaken ones deleted.
        return False if obj is None else super().has_add_permission(request, obj)

    def has_add_permission(self, request, obj=None) -> bool:
        return (obj is None or not obj.is_locked) and super().has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return (obj is None or not obj.is_locked) and super().has_delete_permission(request, obj)


class DoctorReviewInline(admin.TabularInline):
    model = DoctorReview
    fk_name = "record"
    extra = 0
    can_delete = False
    show_change_link = True
    fields = (
        "version",
        "doctor",
        "conclusion_display",
        "recommendation",
        "follow_up_date",
        "signed_at",
    )
    readonly_fields = fields

    @admin.display(description=_("conclusion"))
    def conclusion_display(self, obj: DoctorReview) -> str:
        return "; ".join(obj.conclusion_labels())

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def _acuity_input(label) -> forms.CharField:
    return forms.CharField(label=label, required=False, max_length=20, help_text=ACUITY_HELP)


class ScreeningRecordForm(forms.ModelForm):
    va_od = _acuity_input(_("uncorrected visual acuity OD"))
    va_os = _acuity_input(_("uncorrected visual acuity OS"))
    cva_od = _acuity_input(_("corrected visual acuity OD"))
    cva_os = _acuity_input(_("corrected visual acuity OS"))
    phva_od = _acuity_input(_("pinhole visual acuity OD"))
    phva_os = _acuity_input(_("pinhole visual acuity OS"))

    class Meta:
        model = ScreeningRecord
        # The acuity inputs are the text fields above (va_od's column is their decimal).
        fields = ("patient", *(name for name in MEASUREMENT_FIELDS if name not in ACUITY_INPUTS))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            for name in ACUITY_INPUTS:
                kind, eye = name.rsplit("_", 1)
                self.initial[name] = self.instance.acuity_text(kind, eye, clinic_va_notation())

    def clean(self):
        cleaned = super().clean()
        values = {
            name: cleaned.get(name)
            for name in MEASUREMENT_FIELDS
            if name in cleaned and name not in self.errors
        }
        try:
            record_clean_measurements(values, patient=cleaned.get("patient"))
        except ValidationError as exc:
            add_service_errors(self, exc)
        return cleaned


@admin.register(ScreeningRecord)
class ScreeningRecordAdmin(AuditedViewMixin, admin.ModelAdmin):
    form = ScreeningRecordForm
    inlines = [FundusImageInline, DoctorReviewInline]
    list_display = (
        "__str__",
        "patient_name",
        "status",
        "va_od_text",
        "va_os_text",
        "iop_display",
        "operator",
        "screened_at",
    )
    list_filter = (
        "status",
        "screened_at",
        "operator",
        ("reviews__doctor", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("patient__patient_id", "patient__name", "patient__phone")
    autocomplete_fields = ("patient",)
    readonly_fields = ("status", "logmar_od", "logmar_os", "operator", "created_at", "updated_at")
    date_hierarchy = "screened_at"
    list_select_related = ("patient", "operator")
    list_per_page = 50

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": ("patient", "screened_at", "status", "operator")}),
            (
                _("Visual acuity (5-point or decimal; logMAR stored)"),
                {
                    "fields": (
                        ("va_od", "logmar_od"),
                        ("va_os", "logmar_os"),
                        ("cva_od", "cva_correction_od"),
                        ("cva_os", "cva_correction_os"),
                        ("phva_od", "phva_os"),
                    )
                },
            ),
            (_("Intraocular pressure (mmHg, normal 10–21)"), {"fields": (("iop_od", "iop_os"),)}),
            (None, {"fields": ("notes",)}),
        ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None and obj.is_locked:
            # Shown read-only (the methods below); a signed visit's acuity is not re-posted.
            for name in ACUITY_INPUTS:
                form.base_fields.pop(name, None)
        return form

    def _acuity_display(self, obj: ScreeningRecord, name: str) -> str:
        kind, eye = name.rsplit("_", 1)
        return obj.acuity_text(kind, eye, clinic_va_notation()) or "-"

    @admin.display(description=_("uncorrected visual acuity OD"))
    def va_od_text(self, obj: ScreeningRecord) -> str:
        return self._acuity_display(obj, "va_od")

    @admin.display(description=_("uncorrected visual acuity OS"))
    def va_os_text(self, obj: ScreeningRecord) -> str:
        return self._acuity_display(obj, "va_os")

    @admin.display(description=_("corrected visual acuity OD"))
    def cva_od(self, obj: ScreeningRecord) -> str:
        return self._acuity_display(obj, "cva_od")

    @admin.display(description=_("corrected visual acuity OS"))
    def cva_os(self, obj: ScreeningRecord) -> str:
        return self._acuity_display(obj, "cva_os")

    @admin.display(description=_("pinhole visual acuity OD"))
    def phva_od(self, obj: ScreeningRecord) -> str:
        return self._acuity_display(obj, "phva_od")

    @admin.display(description=_("pinhole visual acuity OS"))
    def phva_os(self, obj: ScreeningRecord) -> str:
        return self._acuity_display(obj, "phva_os")

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("patient")
            if obj.is_locked:
                fields.extend(MEASUREMENT_FIELDS)
        return fields

    @admin.display(description=_("name"), ordering="patient__name")
    def patient_name(self, obj: ScreeningRecord) -> str:
        return obj.patient.name

    @admin.display(description=_("IOP OD / OS"))
    def iop_display(self, obj: ScreeningRecord) -> str:
        def one(value, flag):
            if value is None:
                return "-"
            return (
                format_html('<strong style="color:#b00020">{} ▲▼</strong>', value)
                if flag
                else str(value)
            )

        return format_html(
            "{} / {}", one(obj.iop_od, obj.iop_od_flag), one(obj.iop_os, obj.iop_os_flag)
        )

    def audit_view(self, request, obj: ScreeningRecord) -> None:
        patient_record_view(actor=request.user, patient=obj.patient)

    def save_model(self, request, obj: ScreeningRecord, form, change: bool) -> None:
        values = {
            name: form.cleaned_data[name]
            for name in MEASUREMENT_FIELDS
            if name in form.cleaned_data
        }
        if change:
            if "patient" not in form.changed_data and form.changed_data:
                record_update(
                    actor=request.user, record=ScreeningRecord.objects.get(pk=obj.pk), **values
                )
        else:
            created = record_create(
                actor=request.user, patient=form.cleaned_data["patient"], **values
            )
            obj.pk = created.pk
            obj.refresh_from_db()

    def save_formset(self, request, form, formset, change: bool) -> None:
        if formset.model is not FundusImage:
            return super().save_formset(request, form, formset, change)
        record = form.instance
        for deleted in formset.deleted_forms:
            if deleted.instance.pk:
                image_delete(actor=request.user, image=deleted.instance)
        for image_form in formset.forms:
            upload = (
                image_form.cleaned_data.get("upload")
                if hasattr(image_form, "cleaned_data")
                else None
            )
            if image_form.instance.pk or upload is None or image_form in formset.deleted_forms:
                continue
            try:
                image_upload(
                    actor=request.user,
                    record=record,
                    eye=image_form.cleaned_data["eye"],
                    uploaded_file=upload,
                    confirm_duplicate=image_form.cleaned_data.get("confirm_duplicate", False),
                )
            except ValidationError as exc:
                self.message_user(
                    request, f"{upload.name}: {' '.join(exc.messages)}", level=messages.ERROR
                )
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        return None

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class DoctorReviewForm(forms.ModelForm):
    conclusion_codes = forms.MultipleChoiceField(
        label=_("conclusion"), choices=ConclusionCode.choices, widget=forms.CheckboxSelectMultiple
    )
    sign_now = forms.BooleanField(
        label=_("Sign now"),
        required=False,
        help_text=_(
            "A signed review is final; later changes are made as an amendment with a reason."
        ),
    )
    # The revision of the record's latest review as this form showed it (empty on "add": the
    # form showed none, so a record that already has a review is refused, not overwritten).
    seen_revision = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    class Meta:
        model = DoctorReview
        fields = (
            "record",
            "conclusion_codes",
            "conclusion_text",
            "recommendation",
            "recommendation_text",
            "follow_up_months",
            "follow_up_date",
            "dr_grade_od",
            "dme_od",
            "dr_grade_os",
            "dme_os",
            "amendment_reason",
        )
        widgets = {"follow_up_date": forms.DateInput(attrs={"type": "date"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["seen_revision"].initial = self.instance.revision

    def clean(self):
        cleaned = super().clean()
        record = self.instance.record if self.instance.pk else cleaned.get("record")
        if record is None or self.errors:
            return cleaned
        fields = {name: cleaned.get(name) for name in REVIEW_FIELDS}
        fields["conclusion_codes"] = list(fields["conclusion_codes"] or [])
        try:
            # Checked again under the record's lock when saving; here for the message in place.
            review_refuse_if_stale(record=record, revision=cleaned.get("seen_revision"))
            review_clean(record=record, fields=fields)
        except ValidationError as exc:
            add_service_errors(self, exc)
        return cleaned


@admin.register(DoctorReview)
class DoctorReviewAdmin(AuditedViewMixin, admin.ModelAdmin):
    form = DoctorReviewForm
    list_display = (
        "record",
        "version",
        "doctor",
        "conclusion_display",
        "recommendation",
        "follow_up_date",
        "signed_at",
    )
    list_filter = (
        ("signed_at", admin.EmptyFieldListFilter),
        "signed_at",
        "recommendation",
        "doctor",
    )
    search_fields = (
        "record__patient__patient_id",
        "record__patient__name",
        "record__patient__phone",
    )
    autocomplete_fields = ("record",)
    list_select_related = ("record__patient", "doctor")
    # The per-eye conclusions are written on the screening page or through the API; an admin
    # save keeps them (the service carries left-out per-eye fields over).
    readonly_fields = (
        "version",
        "doctor",
        "supersedes",
        "eye_conclusions_display",
        "signed_at",
        "created_at",
        "updated_at",
    )
    # No "sign the selected" action: a signature binds to the content the doctor saw, and a
    # list action posts only the rows' IDs. Each review is signed from its own page.

    @admin.display(description=_("conclusion"))
    def conclusion_display(self, obj: DoctorReview) -> str:
        return "; ".join(obj.conclusion_labels())

    @admin.display(description=_("per-eye conclusions"))
    def eye_conclusions_display(self, obj: DoctorReview) -> str:
        return (
            "; ".join(
                f"{eye.label}: {', '.join(eye.conclusion_labels)}"
                + (f" [{', '.join(eye.diagnosis_codes)}]" if eye.diagnosis_codes else "")
                + (f" · {eye.recommendation_label}" if eye.recommendation else "")
                for eye in obj.recorded_eye_conclusions
            )
            or "—"
        )

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("record")
        return fields

    # Writing is the doctors' (the role itself: a superuser's permissions do not stand in).
    def has_add_permission(self, request) -> bool:
        return user_may(request.user, "screening.add_doctorreview")

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_signed:
            return False
        return user_may(request.user, "screening.change_doctorreview")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if not user_may(request.user, "screening.sign_doctorreview"):
            form.base_fields.pop("sign_now", None)
        return form

    def audit_view(self, request, obj: DoctorReview) -> None:
        patient_record_view(actor=request.user, patient=obj.record.patient)

    def save_model(self, request, obj: DoctorReview, form, change: bool) -> None:
        data = form.cleaned_data
        fields = {name: data.get(name) for name in REVIEW_FIELDS}
        fields["conclusion_codes"] = list(fields["conclusion_codes"])
        write = review_save_and_sign if data.get("sign_now") else review_save_draft
        try:
            review = write(
                doctor=request.user,
                record=obj.record if change else data["record"],
                revision=data.get("seen_revision"),
                **fields,
            )
        except StaleVersion as exc:
            # Changed between the form's check and the record's lock: nothing was written; the
            # doctor is sent back to the review as it is now, with the reason.
            self.message_user(request, " ".join(exc.messages), level=messages.ERROR)
            request._review_conflict = exc.current
            return
        obj.pk = review.pk
        obj.refresh_from_db()

    def log_addition(self, request, obj, message):
        if not hasattr(request, "_review_conflict"):
            super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        if not hasattr(request, "_review_conflict"):
            super().log_change(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        return self._conflict_redirect(request) or super().response_add(
            request, obj, post_url_continue
        )

    def response_change(self, request, obj):
        return self._conflict_redirect(request) or super().response_change(request, obj)

    def _conflict_redirect(self, request):
        if not hasattr(request, "_review_conflict"):
            return None
        current = request._review_conflict
        url = (
            reverse("admin:screening_doctorreview_change", args=[current.pk])
            if current is not None and not current.is_signed
            else reverse("admin:screening_doctorreview_changelist")
        )
        return HttpResponseRedirect(url)


@admin.register(FollowUpContact)
class FollowUpContactAdmin(ReadOnlyAdminMixin, AuditedViewMixin, admin.ModelAdmin):
    """Recall marks are written on the recall page (follow_up_mark) only; here they are read."""

    list_display = ("record", "patient_id", "status", "new_date", "created_by", "created_at")
    list_filter = ("status", "new_date", "created_at")
    search_fields = ("record__patient__patient_id",)
    date_hierarchy = "created_at"
    list_select_related = ("record__patient", "created_by")
    list_per_page = 50

    @admin.display(description=_("patient ID"), ordering="record__patient__patient_id")
    def patient_id(self, obj: FollowUpContact) -> str:
        return obj.record.patient.patient_id

    def audit_view(self, request, obj: FollowUpContact) -> None:
        patient_record_view(actor=request.user, patient=obj.record.patient)
