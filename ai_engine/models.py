from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from ai_engine.inference.card import ROLE_DIAGNOSIS, ROLE_QUALITY, localised_text
from screening.models import FundusImage, ScreeningRecord


class PackageState(models.TextChoices):
    ACTIVE = "active", _("Active")
    # Runs on every new photo beside the active packages; its findings reach no staff page,
    # PDF or API, only the statistics page's agreement with signed reviews.
    SHADOW = "shadow", _("Shadow")
    INACTIVE = "inactive", _("Inactive")


class ModelPackage(models.Model):
    """A registered model package: a folder with its card (model.json) and weights."""

    name = models.CharField(pgettext_lazy("model package", "name"), max_length=100)
    version = models.CharField(_("version"), max_length=50)
    task = models.CharField(_("task"), max_length=20)
    architecture = models.CharField(_("architecture"), max_length=100)
    path = models.CharField(_("folder"), max_length=500)
    weights_sha256 = models.CharField(_("weights SHA-256"), max_length=64)
    card = models.JSONField(_("model card"))
    demonstration = models.BooleanField(_("demonstration model"), default=True)
    state = models.CharField(
        _("state"),
        max_length=10,
        choices=PackageState.choices,
        default=PackageState.INACTIVE,
        db_index=True,
    )
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("registered by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    registered_at = models.DateTimeField(_("registered at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("model package")
        verbose_name_plural = _("model packages")
        ordering = ["name", "-registered_at"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="unique_package_version")
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"

    @property
    def is_active(self) -> bool:
        return self.state == PackageState.ACTIVE

    @is_active.setter
    def is_active(self, value: bool) -> None:
        # Kept so that ModelPackage(is_active=True) still builds a row (tests, fixtures).
        self.state = PackageState.ACTIVE if value else PackageState.INACTIVE

    @property
    def is_shadow(self) -> bool:
        return self.state == PackageState.SHADOW

    @property
    def evidence(self) -> str:
        return str(self.card.get("evidence", ""))

    def evidence_in(self, language: str) -> str:
        """The card's evidence line in `language` (old cards: their one line)."""
        return localised_text(self.card or {}, "evidence", language)

    def intended_use_in(self, language: str) -> str:
        return localised_text(self.card or {}, "intended_use", language)

    @property
    def role(self) -> str:
        """The card's role: "diagnosis" (older cards have none) or "quality"."""
        return str((self.card or {}).get("role") or ROLE_DIAGNOSIS)

    @property
    def is_quality_model(self) -> bool:
        return self.role == ROLE_QUALITY


class AnalysisStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    UNGRADABLE = "ungradable", _("Ungradable — retake")


TERMINAL_STATUSES = (AnalysisStatus.DONE, AnalysisStatus.FAILED, AnalysisStatus.UNGRADABLE)


class AnalysisQuerySet(models.QuerySet):
    def visible(self) -> AnalysisQuerySet:
        """Analyses staff, reports and the API may see: shadow runs excluded."""
        return self.filter(shadow=False)


class Analysis(models.Model):
    """One model package's analysis of one photo; a re-run is a new row with the next run number."""

    image = models.ForeignKey(
        FundusImage, verbose_name=_("photo"), on_delete=models.CASCADE, related_name="analyses"
    )
    package = models.ForeignKey(
        ModelPackage,
        verbose_name=_("model package"),
        on_delete=models.PROTECT,
        related_name="analyses",
    )
    run = models.PositiveIntegerField(_("run"), default=1)
    # A snapshot of what produced the result, kept even if the package is later retired.
    model_name = models.CharField(_("model"), max_length=100)
    model_version = models.CharField(_("model version"), max_length=50)
    weights_sha256 = models.CharField(_("weights SHA-256"), max_length=64)
    demonstration = models.BooleanField(_("demonstration model"), default=True)
    # Made by a shadow package: stored and measured, never shown (staff pages, PDF, API, triage).
    # Fixed at creation, so a later promotion does not reveal results nobody reviewed.
    shadow = models.BooleanField(_("shadow run"), default=False, db_index=True)
    status = models.CharField(
        _("status"), max_length=20, choices=AnalysisStatus.choices, default=AnalysisStatus.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    quality_score = models.FloatField(_("quality score"), null=True, blank=True)
    quality_gradable = models.BooleanField(_("gradable"), null=True, blank=True)
    quality_reasons = models.JSONField(_("quality reasons"), default=list, blank=True)
    quality_metrics = models.JSONField(_("quality metrics"), default=dict, blank=True)
    result = models.JSONField(_("result"), default=dict, blank=True)
    timings = models.JSONField(_("timings (s)"), default=dict, blank=True)
    device = models.CharField(_("device"), max_length=20, blank=True)
    error = models.TextField(_("error"), blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    # When a task for this analysis was last put on the queue (the reconciler re-queues lost ones).
    queued_at = models.DateTimeField(_("queued at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    objects = AnalysisQuerySet.as_manager()

    class Meta:
        verbose_name = _("analysis")
        verbose_name_plural = _("analyses")
        ordering = ["image", "package", "-run"]
        permissions = [("rerun_analysis", _("Can re-run AI analyses"))]
        constraints = [
            models.UniqueConstraint(fields=["image", "package", "run"], name="unique_analysis_run")
        ]
        indexes = [models.Index(fields=["status", "started_at"])]

    def __str__(self) -> str:
        return f"{self.image} · {self.model_name} {self.model_version} #{self.run}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class Finding(models.Model):
    """One label's output of an analysis, with its heatmap and the areas it points at."""

    analysis = models.ForeignKey(
        Analysis, verbose_name=_("analysis"), on_delete=models.CASCADE, related_name="findings"
    )
    label_code = models.CharField(_("label"), max_length=50)
    label_zh = models.CharField(_("label (Chinese)"), max_length=100)
    label_en = models.CharField(_("label (English)"), max_length=100)
    probability = models.FloatField(_("probability"))
    threshold = models.FloatField(_("threshold"))
    positive = models.BooleanField(_("positive"))
    referable = models.BooleanField(_("referable"), default=False)
    heatmap = models.FileField(_("heatmap"), max_length=255, blank=True)
    cam_method = models.CharField(_("heatmap method"), max_length=20, blank=True)
    abnormal_areas = models.JSONField(_("abnormal areas"), default=list, blank=True)

    class Meta:
        verbose_name = _("finding")
        verbose_name_plural = _("findings")
        ordering = ["analysis", "-positive", "-probability"]
        constraints = [
            models.UniqueConstraint(fields=["analysis", "label_code"], name="unique_finding_label")
        ]

    def __str__(self) -> str:
        return f"{self.label_code} {self.probability:.2f}"


class TriageLevel(models.TextChoices):
    URGENT = "urgent", _("Urgent")
    HIGH = "high", _("High")
    ROUTINE = "routine", _("Routine")
    NONE = "none", _("No AI concern")


TRIAGE_PRIORITY = {
    TriageLevel.URGENT: 3,
    TriageLevel.HIGH: 2,
    TriageLevel.ROUTINE: 1,
    TriageLevel.NONE: 0,
}


class RecordTriage(models.Model):
    """The AI engine's priority for a screening in the doctor's worklist, with its reasons."""

    record = models.OneToOneField(
        ScreeningRecord,
        verbose_name=_("screening record"),
        on_delete=models.CASCADE,
        related_name="triage",
    )
    level = models.CharField(_("triage level"), max_length=10, choices=TriageLevel.choices)
    priority = models.PositiveSmallIntegerField(_("priority"), db_index=True)
    # [{"code": "glaucoma_with_high_iop", "eye": "OD", "params": {...}}]; texts are rendered per language.
    reasons = models.JSONField(_("reasons"), default=list, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("triage")
        verbose_name_plural = _("triage")

    def __str__(self) -> str:
        return f"{self.record} {self.level}"


class PromotionRecord(models.Model):
    """A change of the active package set by `promote_model` or `rollback_model`, with its
    comparison table on the held-out signed cases and the set it replaced."""

    class Kind(models.TextChoices):
        PROMOTION = "promotion", _("Promotion")
        ROLLBACK = "rollback", _("Rollback")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    package = models.ForeignKey(
        ModelPackage,
        verbose_name=_("model package"),
        on_delete=models.PROTECT,
        related_name="promotions",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    actor_name = models.CharField(_("by (name)"), max_length=150, blank=True)
    reason = models.TextField(_("reason"))
    override = models.BooleanField(_("gate overridden"), default=False)
    comparison = models.JSONField(_("comparison"), default=dict, blank=True)
    # Primary keys of the active packages before and after the change.
    previous_active = models.JSONField(_("previous active set"), default=list)
    new_active = models.JSONField(_("new active set"), default=list)
    rolled_back = models.BooleanField(_("rolled back"), default=False)
    created_at = models.DateTimeField(_("at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("promotion record")
        verbose_name_plural = _("promotion records")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.package} {self.created_at:%Y-%m-%d %H:%M}"


class TrainingScreening(ScreeningRecord):
    """A screening seen as training data: the admin's list for the labelled-data export."""

    class Meta:
        proxy = True
        verbose_name = _("screening for training")
        verbose_name_plural = _("screenings for training")
        default_permissions = ("view",)
        permissions = [("export_training_set", _("Can export signed reviews as a training set"))]
