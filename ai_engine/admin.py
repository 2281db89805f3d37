from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import FileResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from ai_engine.models import (
    Analysis,
    Finding,
    ModelPackage,
    PackageState,
    PromotionRecord,
    RecordTriage,
    TrainingScreening,
)
from ai_engine.services import analysis_rerun, package_set_state
from ai_engine.training_export import training_set_export
from ai_engine.triage import triage_reason_text
from core.admin_utils import ReadOnlyAdminMixin
from screening.models import RecordStatus


class PromotionRecordInline(admin.TabularInline):
    """Who promoted or rolled back this package, why, and the comparison the gate printed."""

    model = PromotionRecord
    extra = 0
    can_delete = False
    fields = (
        "created_at",
        "kind",
        "actor_name",
        "reason",
        "override",
        "rolled_back",
        "previous_active",
        "new_active",
        "comparison_table",
    )
    readonly_fields = fields

    @admin.display(description=_("comparison"))
    def comparison_table(self, obj: PromotionRecord) -> str:
        from ai_engine.learning import comparison_lines

        return format_html(
            "<pre style='white-space:pre-wrap'>{}</pre>",
            "\n".join(comparison_lines(obj.comparison)),
        )

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ModelPackage)
class ModelPackageAdmin(admin.ModelAdmin):
    """Registered packages with their model cards; registration itself is `manage.py register_model`."""

    list_display = (
        "name",
        "version",
        "task",
        "architecture",
        "state",
        "demonstration_flag",
        "registered_at",
    )
    list_filter = ("state", "demonstration", "task")
    search_fields = ("name", "version", "architecture")
    readonly_fields = (
        "name",
        "version",
        "task",
        "architecture",
        "path",
        "weights_sha256",
        "demonstration",
        "registered_by",
        "registered_at",
        "card_summary",
        "card_json",
    )
    # The state changes through the actions below (or promote_model), which apply the gate's rules.
    fields = ("state", *readonly_fields)
    inlines = [PromotionRecordInline]
    actions = ["activate", "shadow", "deactivate"]

    def get_readonly_fields(self, request, obj=None):
        return ("state", *self.readonly_fields)

    @admin.display(description=_("demonstration model"), boolean=True)
    def demonstration_flag(self, obj: ModelPackage) -> bool:
        return obj.demonstration

    @admin.display(description=_("model card"))
    def card_summary(self, obj: ModelPackage) -> str:
        card = obj.card
        labels = format_html_join(
            "",
            "<li>{} · {} / {} · threshold {}</li>",
            (
                (label.get("code"), label.get("zh"), label.get("en"), label.get("threshold"))
                for label in card.get("labels", [])
            ),
        )
        warning = (
            format_html(
                '<p style="color:#b00020;font-weight:600">{}</p>',
                _("Demonstration model — not for diagnosis"),
            )
            if obj.demonstration
            else ""
        )
        return format_html(
            "{}<p><strong>{}</strong> {}</p><p><strong>{}</strong> {}</p><p><strong>{}</strong> {}</p><ul>{}</ul>",
            warning,
            _("Evidence:"),
            card.get("evidence", ""),
            _("Intended use:"),
            card.get("intended_use", ""),
            _("Training data:"),
            card.get("training_data", ""),
            labels,
        )

    @admin.display(description=_("model.json"))
    def card_json(self, obj: ModelPackage) -> str:
        return format_html(
            "<pre style='white-space:pre-wrap'>{}</pre>",
            json.dumps(obj.card, ensure_ascii=False, indent=2),
        )

    def has_add_permission(self, request) -> bool:
        return False  # packages are validated and registered by `manage.py register_model`

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def _set_state(self, request, queryset, state: str) -> None:
        for package in queryset:
            try:
                package_set_state(package=package, state=state, actor=request.user)
            except ValidationError as exc:
                self.message_user(
                    request, f"{package}: {' '.join(exc.messages)}", level=messages.ERROR
                )

    @admin.action(description=_("Activate the selected packages"), permissions=["change"])
    def activate(self, request, queryset) -> None:
        self._set_state(request, queryset, PackageState.ACTIVE)

    @admin.action(description=_("Run the selected packages in shadow mode"), permissions=["change"])
    def shadow(self, request, queryset) -> None:
        self._set_state(request, queryset, PackageState.SHADOW)

    @admin.action(description=_("Deactivate the selected packages"), permissions=["change"])
    def deactivate(self, request, queryset) -> None:
        self._set_state(request, queryset, PackageState.INACTIVE)


class FindingInline(admin.TabularInline):
    model = Finding
    extra = 0
    can_delete = False
    fields = (
        "label_code",
        "label_zh",
        "label_en",
        "probability",
        "threshold",
        "positive",
        "referable",
        "abnormal_areas",
        "cam_method",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Analysis)
class AnalysisAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Analyses are written by the engine only; staff may ask for a re-run."""

    inlines = [FindingInline]
    list_display = (
        "image",
        "model_name",
        "model_version",
        "run",
        "status",
        "quality_score",
        "attempts",
        "device",
        "finished_at",
    )
    list_filter = ("status", "shadow", "model_name", "device", "demonstration")
    search_fields = ("image__record__patient__patient_id", "image__record__patient__name")
    list_select_related = ("image__record__patient",)
    actions = ["rerun"]

    @admin.action(description=_("Re-run the selected analyses"), permissions=["rerun"])
    def rerun(self, request, queryset) -> None:
        for analysis in queryset.select_related("image__record__patient", "package"):
            try:
                analysis_rerun(analysis=analysis, actor=request.user)
            except ValidationError as exc:
                self.message_user(
                    request, f"{analysis}: {' '.join(exc.messages)}", level=messages.WARNING
                )

    def has_rerun_permission(self, request) -> bool:
        return request.user.has_perm("ai_engine.rerun_analysis")


@admin.register(RecordTriage)
class RecordTriageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    extra_readonly_fields = ("reasons_text",)
    list_display = ("record", "level", "priority", "reasons_text", "updated_at")
    list_filter = ("level",)
    list_select_related = ("record__patient",)
    search_fields = ("record__patient__patient_id", "record__patient__name")

    @admin.display(description=_("reasons"))
    def reasons_text(self, obj: RecordTriage) -> str:
        return format_html_join(
            "", "<div>{}</div>", ((triage_reason_text(reason),) for reason in obj.reasons)
        )


@admin.register(TrainingScreening)
class TrainingScreeningAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Signed screenings, to export as a training set (manage.py export_training_set does
    the same for every review signed since a date)."""

    list_display = ("__str__", "status", "screened_at")
    list_filter = ("status", "screened_at")
    date_hierarchy = "screened_at"
    list_select_related = ("patient",)
    search_fields = ("patient__patient_id",)
    actions = ["export_training_set"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(status__in=(RecordStatus.REVIEWED, RecordStatus.REPORTED))
        )

    def has_export_permission(self, request) -> bool:
        return request.user.has_perm("ai_engine.export_training_set")

    @admin.action(description=_("Export as a training set (ZIP)"), permissions=["export"])
    def export_training_set(self, request, queryset):
        archive = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes (and so removes) it
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch) / "training-set"
            try:
                training_set_export(
                    out=folder,
                    actor=request.user,
                    record_ids=list(queryset.values_list("pk", flat=True)),
                )
            except ValidationError as exc:
                archive.close()
                self.message_user(request, " ".join(exc.messages), level=messages.ERROR)
                return None
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as bundle:
                for path in sorted(folder.rglob("*")):
                    if path.is_file():
                        bundle.write(path, str(path.relative_to(folder.parent)))
        archive.seek(0)
        name = f"training-set-{timezone.localdate():%Y%m%d}.zip"
        return FileResponse(archive, as_attachment=True, filename=name)
