from __future__ import annotations

import base64

from django import forms
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.audit import audit_log
from core.models import AuditEvent, StaffProfile
from core.roles import user_may, user_roles_check, user_set_roles
from core.signatures import (
    SIGNATURE_MAX_BYTES,
    signature_clean,
    signature_png,
    staff_signature_clear,
    staff_signature_set,
)

User = get_user_model()


class SignatureForm(forms.ModelForm):
    """A new signature image (checked here, stored by core.signatures) or its removal."""

    upload = forms.FileField(
        label=_("New signature image"),
        required=False,
        help_text=_(
            "PNG or JPEG, at most %(size)d KB, dark ink on white or transparent. It is printed "
            "next to the doctor's name on the reports the doctor signs from now on; reports "
            "already signed keep the image they were signed with."
        )
        % {"size": SIGNATURE_MAX_BYTES // 1024},
    )
    remove = forms.BooleanField(label=_("Remove the signature image"), required=False)

    class Meta:
        model = StaffProfile
        fields: tuple[str, ...] = ()

    def clean_upload(self):
        upload = self.cleaned_data.get("upload")
        if upload:
            signature_clean(upload)  # the refusal shows on the field
        return upload

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("upload") and cleaned.get("remove"):
            raise ValidationError(_("Upload a new image or remove the signature, not both."))
        return cleaned


class SignatureInline(admin.StackedInline):
    """The doctor's signature image, on the user's page (saved by ClinicUserAdmin)."""

    model = StaffProfile
    form = SignatureForm
    fields = ("current_signature", "upload", "remove")
    readonly_fields = ("current_signature",)
    can_delete = False
    max_num = 1
    extra = 1
    verbose_name = verbose_name_plural = _("signature image")

    @admin.display(description=_("Current signature"))
    def current_signature(self, profile: StaffProfile | None) -> str:
        data = signature_png(profile)
        if not data:
            return _("none")
        return format_html(
            '<img src="data:image/png;base64,{}" alt="" style="max-height:60px;background:#fff">',
            base64.b64encode(data).decode("ascii"),
        )

    def has_view_permission(self, request, obj=None) -> bool:
        return user_may(request.user, "auth.change_user")

    def has_add_permission(self, request, obj=None) -> bool:
        return user_may(request.user, "auth.change_user")

    def has_change_permission(self, request, obj=None) -> bool:
        return user_may(request.user, "auth.change_user")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ClinicUserAdmin(UserAdmin):
    """Users: an administrator manages accounts, but roles only within core.roles' rules (no
    one changes their own; administrators grant only roles they hold; superuser status and
    superusers' accounts are the superusers'). Every role change goes through user_set_roles,
    which audits it."""

    def get_inlines(self, request, obj=None):
        return [SignatureInline] if obj is not None else []

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.add_fieldsets
        access = ["is_active", "is_staff", "groups"]
        if request.user.is_superuser:
            access += ["is_superuser", "user_permissions"]
        return (
            (None, {"fields": ("username", "password")}),
            (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
            (_("Roles and access"), {"fields": access}),
            (_("Important dates"), {"fields": ("last_login", "date_joined")}),
        )

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.pk == request.user.pk:
            fields += ["groups", "is_superuser", "user_permissions"]
        return fields

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is None:
            return form
        actor = request.user

        class RoleCheckedForm(form):
            def clean(self):
                cleaned = super().clean()
                try:
                    user_roles_check(actor=actor, user=self.instance, **_wanted(self, cleaned))
                except PermissionDenied as exc:
                    self.add_error("groups" if "groups" in self.fields else None, str(exc))
                return cleaned

        return RoleCheckedForm

    def save_model(self, request, obj, form, change: bool) -> None:
        if change and "is_superuser" in form.fields:
            # Set by user_set_roles (checked and audited), not by the form's save.
            obj.is_superuser = form.initial["is_superuser"]
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change: bool) -> None:
        wanted = _wanted(form, form.cleaned_data) if change else None
        form.cleaned_data.pop("groups", None)
        super().save_related(request, form, formsets, change)
        if wanted is not None:
            user_set_roles(actor=request.user, user=form.instance, **wanted)

    def save_formset(self, request, form, formset, change: bool) -> None:
        if formset.model is not StaffProfile:
            return super().save_formset(request, form, formset, change)
        # Through the service, which re-encodes, stores under a fresh name and audits.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.forms:
            upload = inline_form.cleaned_data.get("upload")
            if upload:
                staff_signature_set(user=formset.instance, actor=request.user, upload=upload)
            elif inline_form.cleaned_data.get("remove"):
                staff_signature_clear(user=formset.instance, actor=request.user)


def _wanted(form, cleaned: dict) -> dict:
    """The roles and superuser status the form asks for (what it does not show, unchanged)."""
    groups = cleaned.get("groups") if "groups" in form.fields else None
    roles = (
        {group.name for group in groups}
        if groups is not None
        else set(form.instance.groups.values_list("name", flat=True))
    )
    superuser = cleaned.get("is_superuser") if "is_superuser" in form.fields else None
    return {"roles": roles, "is_superuser": superuser}


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, ClinicUserAdmin)

# Where an audit line came from (core.audit, core.context), named for the reader.
AUDIT_SOURCES = {
    "web": _("staff web pages"),
    "admin": _("administration"),
    "api": _("API"),
    "task": _("background task"),
    "command": _("management command"),
    "system": _("system"),
}


def object_type_text(object_type: str) -> str:
    """'patients.patient' as the model's name in the reader's language (unknown: as stored)."""
    try:
        return str(apps.get_model(object_type)._meta.verbose_name)
    except (LookupError, ValueError):
        return object_type


def audit_object_text(event: AuditEvent) -> str:
    """What the line is about; a list read (API) names how many patients it showed."""
    listed = (event.changes or {}).get("listed_patients")
    if isinstance(listed, list):
        count = len(listed)
        return ngettext("list of %(count)d patient", "list of %(count)d patients", count) % {
            "count": count
        }
    return event.object_repr


class AuditSourceFilter(admin.SimpleListFilter):
    title = _("source")
    parameter_name = "source"

    def lookups(self, request, model_admin):
        return list(AUDIT_SOURCES.items())

    def queryset(self, request, queryset):
        return queryset.filter(source=self.value()) if self.value() else queryset


class AuditObjectTypeFilter(admin.SimpleListFilter):
    title = _("object type")
    parameter_name = "object_type"

    def lookups(self, request, model_admin):
        types = AuditEvent.objects.order_by().values_list("object_type", flat=True).distinct()
        return sorted(((t, object_type_text(t)) for t in types), key=lambda item: item[1])

    def queryset(self, request, queryset):
        return queryset.filter(object_type=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log, read-only for everyone, administrators included."""

    list_display = (
        "at",
        "actor_username",
        "action",
        "object_type_name",
        "object_id",
        "object_text",
        "patient_ref",
        "source_name",
        "ip_address",
    )
    list_filter = ("action", AuditSourceFilter, AuditObjectTypeFilter, "at")
    search_fields = ("=patient_ref", "actor_username", "=object_id", "object_repr", "=request_id")
    date_hierarchy = "at"
    list_per_page = 100
    # The detail page shows the same readable columns as the list, in the model's field order.
    fields = readonly_fields = [
        {
            "object_type": "object_type_name",
            "object_repr": "object_text",
            "source": "source_name",
        }.get(field.name, field.name)
        for field in AuditEvent._meta.fields
    ]

    @admin.display(description=_("object type"), ordering="object_type")
    def object_type_name(self, event: AuditEvent) -> str:
        return object_type_text(event.object_type)

    @admin.display(description=_("object"), ordering="object_repr")
    def object_text(self, event: AuditEvent) -> str:
        return audit_object_text(event)

    @admin.display(description=_("source"), ordering="source")
    def source_name(self, event: AuditEvent) -> str:
        return str(AUDIT_SOURCES.get(event.source, event.source))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    """Staff users' own settings; administrators may set them for others (audited)."""

    list_display = ("user", "va_notation", "updated_at")
    list_filter = ("va_notation",)
    search_fields = ("user__username", "user__first_name", "user__last_name")
    autocomplete_fields = ("user",)
    # The signature image has its own upload checks; it is not edited here.
    fields = ("user", "va_notation")

    def save_model(self, request, obj: StaffProfile, form, change: bool) -> None:
        changes = {
            name: [form.initial.get(name), form.cleaned_data.get(name)]
            for name in form.changed_data
        }
        super().save_model(request, obj, form, change)
        if changes or not change:
            audit_log(
                actor=request.user,
                action=AuditEvent.Action.UPDATE if change else AuditEvent.Action.CREATE,
                obj=obj,
                changes={key: [str(a or ""), str(b or "")] for key, (a, b) in changes.items()},
            )
