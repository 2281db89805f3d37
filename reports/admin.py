"""Reports in the admin: versions, downloads, (re)generation and the doctor's summary editor.

Report rows are never edited in place: the change page shows a report read-only, with a
summary form whose approval renders a new version (report_approve_summary).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from core.admin_utils import AuditedViewMixin
from core.roles import user_may
from core.tasks import enqueue_on_commit
from patients.services import patient_record_view
from reports.api import ON_DEMAND_TASK
from reports.forms import SummaryForm
from reports.llm import fallback_reason_text, summary_source_text
from reports.models import TEMPLATE_SOURCE, Report, ReportLanguage
from reports.services import NothingToPrint, report_approve_summary, report_batch_print
from reports.views import batch_pdf_response, batch_print_messages
from screening.models import ScreeningRecord


class GenerateForm(forms.Form):
    record = forms.ModelChoiceField(
        label=_("screening record ID"),
        queryset=ScreeningRecord.objects.all(),
        widget=forms.NumberInput(attrs={"style": "width:8em"}),
    )
    language = forms.ChoiceField(
        label=_("language"), choices=ReportLanguage.choices, initial=ReportLanguage.ZH_HANS
    )


class DraftedByFilter(admin.SimpleListFilter):
    """Template or language model, in the reader's language (not the stored source codes)."""

    title = _("summary source")
    parameter_name = "drafted_by"

    def lookups(self, request, model_admin):
        return [("template", _("the template")), ("llm", _("a language model"))]

    def queryset(self, request, queryset):
        if self.value() == "template":
            return queryset.filter(summary_source=TEMPLATE_SOURCE)
        if self.value() == "llm":
            return queryset.exclude(summary_source=TEMPLATE_SOURCE)
        return queryset


@admin.register(Report)
class ReportAdmin(AuditedViewMixin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "patient_id",
        "version",
        "status",
        "language",
        "drafted_by",
        "approved",
        "generated_at",
        "download",
    )
    list_filter = ("status", "language", "generated_at", DraftedByFilter)
    search_fields = ("record__patient__patient_id", "record__patient__name", "verification_code")
    date_hierarchy = "generated_at"
    list_select_related = ("record__patient", "summary_approved_by")
    list_per_page = 50
    actions = ["regenerate_selected", "print_selected"]
    fieldsets = [
        (
            None,
            {"fields": ("record", "version", "status", "language", "review_version", "download")},
        ),
        (
            _("Summary"),
            {
                "fields": (
                    "summary_final",
                    "summary_ai",
                    "drafted_by",
                    "fallback_reason",
                    "summary_approved_by",
                    "summary_approved_at",
                    "based_on",
                )
            },
        ),
        (
            _("File and codes"),
            {
                "fields": (
                    "pdf_sha256",
                    "pdf_size",
                    "verification_code",
                    "access_code",
                    "generated_at",
                    "generated_by",
                    "other_versions",
                )
            },
        ),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]

    def has_add_permission(self, request) -> bool:
        return False  # reports are generated, from a record (action) or the record's page

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # read-only; the summary editor makes a new version

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # earlier versions and their PDFs stay

    @admin.display(description=_("patient ID"), ordering="record__patient__patient_id")
    def patient_id(self, obj: Report) -> str:
        return obj.record.patient.patient_id

    @admin.display(description=_("summary source"), ordering="summary_source")
    def drafted_by(self, obj: Report) -> str:
        return summary_source_text(obj.summary_source)

    @admin.display(description=_("why the template was used"))
    def fallback_reason(self, obj: Report) -> str:
        return fallback_reason_text(obj.summary_fallback_reason) or "-"

    @admin.display(description=_("summary approved"), boolean=True)
    def approved(self, obj: Report) -> bool:
        return obj.summary_approved_by_id is not None

    @admin.display(description=_("PDF"))
    def download(self, obj: Report) -> str:
        if not obj.pdf:
            return "-"
        return format_html(
            '<a href="{}">{}</a>', reverse("reports:report-pdf", args=[obj.pk]), _("Download")
        )

    @admin.display(description=_("versions of this screening"))
    def other_versions(self, obj: Report) -> str:
        rows = obj.record.reports.order_by("-version")
        items = format_html_join(
            "",
            '<li><a href="{}">v{} · {} · {} · {}</a> (<a href="{}">PDF</a>)</li>',
            (
                (
                    reverse("admin:reports_report_change", args=[row.pk]),
                    row.version,
                    row.get_status_display(),
                    row.get_language_display(),
                    timezone.localtime(row.generated_at).strftime("%Y-%m-%d %H:%M"),
                    reverse("reports:report-pdf", args=[row.pk]),
                )
                for row in rows
            ),
        )
        return format_html("<ul>{}</ul>", items)

    def audit_view(self, request, obj: Report) -> None:
        patient_record_view(actor=request.user, patient=obj.record.patient)

    # --- the summary editor and generation ---------------------------------------------------
    def get_urls(self):
        urls = super().get_urls()
        return [
            path(
                "<int:report_id>/summary/",
                self.admin_site.admin_view(self.summary_view),
                name="reports_report_summary",
            ),
            path(
                "generate/",
                self.admin_site.admin_view(self.generate_view),
                name="reports_report_generate",
            ),
            *urls,
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        if user_may(request.user, "reports.approve_summary"):
            extra_context["summary_url"] = reverse("admin:reports_report_summary", args=[object_id])
        if request.user.has_perm("reports.add_report"):
            report = self.get_object(request, object_id)
            if report is not None:
                extra_context["generate_url"] = reverse("admin:reports_report_generate")
                extra_context["generate_form"] = GenerateForm(
                    initial={"record": report.record_id, "language": report.language}
                )
        return super().change_view(request, object_id, form_url, extra_context)

    change_form_template = "admin/reports/report/change_form.html"

    def summary_view(self, request, report_id: int):
        if not user_may(request.user, "reports.approve_summary"):
            raise PermissionDenied
        report = get_object_or_404(Report.objects.select_related("record__patient"), pk=report_id)
        form = SummaryForm(request.POST or None, initial={"text": report.summary_final})
        if request.method == "POST" and form.is_valid():
            try:
                new = report_approve_summary(
                    report=report, doctor=request.user, text=form.cleaned_data["text"]
                )
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                self.message_user(
                    request,
                    _("Summary approved: version %(version)d was rendered.")
                    % {"version": new.version},
                )
                return HttpResponseRedirect(reverse("admin:reports_report_change", args=[new.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Edit and approve the summary of %(report)s") % {"report": report},
            "report": report,
            "drafted_by": summary_source_text(report.summary_source),
            "fallback_reason": fallback_reason_text(report.summary_fallback_reason),
            "form": form,
        }
        return TemplateResponse(request, "admin/reports/report/summary.html", context)

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        if request.user.has_perm("reports.add_report"):
            extra_context["generate_url"] = reverse("admin:reports_report_generate")
            extra_context["generate_form"] = GenerateForm()
        return super().changelist_view(request, extra_context)

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        # The versions of one screening: ?record__id__exact=<id> (no dropdown of all records).
        return lookup == "record__id__exact" or super().lookup_allowed(lookup, value, request)

    def generate_view(self, request):
        """Queue a new version (a worker renders it; the same task the API uses)."""
        if not request.user.has_perm("reports.add_report"):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:reports_report_changelist"))
        form = GenerateForm(request.POST)
        if not form.is_valid():
            for errors in form.errors.values():
                self.message_user(request, " ".join(errors), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:reports_report_changelist"))
        record = form.cleaned_data["record"]
        enqueue_on_commit(ON_DEMAND_TASK, record.pk, request.user.pk, form.cleaned_data["language"])
        self.message_user(request, _("The report is being generated; it appears here shortly."))
        return HttpResponseRedirect(
            reverse("admin:reports_report_changelist") + f"?record__id__exact={record.pk}"
        )

    @admin.action(
        description=_("Generate a new version of the selected reports"), permissions=["generate"]
    )
    def regenerate_selected(self, request, queryset) -> None:
        queued = 0
        for report in queryset:
            enqueue_on_commit(ON_DEMAND_TASK, report.record_id, request.user.pk, report.language)
            queued += 1
        self.message_user(
            request,
            _("%(count)d report(s) queued for generation.") % {"count": queued},
            messages.INFO,
        )

    @admin.action(
        description=_("Print the selected final reports as one PDF"), permissions=["print"]
    )
    def print_selected(self, request, queryset):
        reports = queryset.select_related("record__patient", "record__operator").order_by(
            "record__screened_at", "record_id", "language", "version"
        )
        try:
            batch = report_batch_print(reports=reports, actor=request.user, label="admin")
        except NothingToPrint as exc:
            self.message_user(request, " ".join(exc.messages), messages.WARNING)
            return None
        batch_print_messages(request, batch)
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        return batch_pdf_response(batch, filename=f"reports-{stamp}.pdf")

    def has_print_permission(self, request) -> bool:
        return user_may(request.user, "reports.view_report")

    def has_generate_permission(self, request) -> bool:
        return request.user.has_perm("reports.add_report")
