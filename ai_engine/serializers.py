"""Output serializers of AI results (analyses, findings, triage, the per-record summary)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ai_engine.inference.results import Finding as ResultFinding
from ai_engine.models import Analysis, AnalysisStatus, Finding, RecordTriage, TriageLevel
from ai_engine.selectors import analysis_findings
from ai_engine.triage import triage_reason_text
from core.api import ChoiceLabelField
from patients.serializers import PatientBriefSerializer
from screening.models import RecordStatus, ScreeningRecord


def _decided(finding: Finding) -> ResultFinding:
    """The finding as its model's decision rule reads it (one rule for every surface)."""
    analysis = finding.analysis
    decided = getattr(analysis, "decided_by_code", None)
    if decided is None:
        decided = analysis.decided_by_code = {f.code: f for f in analysis_findings(analysis)}
    return decided[finding.label_code]


class FindingOutputSerializer(serializers.ModelSerializer):
    threshold = serializers.SerializerMethodField(
        help_text="The threshold that decided the finding; null when the model's result is its "
        "most probable label (decision 'argmax')."
    )
    positive = serializers.SerializerMethodField()
    decision = serializers.SerializerMethodField(help_text="'argmax' or 'threshold'.")
    outcome = serializers.SerializerMethodField(
        help_text="'abnormal', 'normal' (the normal label is the result) or 'negative'."
    )
    has_heatmap = serializers.SerializerMethodField()
    heatmap_url = serializers.SerializerMethodField(
        help_text="The heatmap overlay (PNG, staff); null when the finding has none."
    )

    class Meta:
        model = Finding
        fields = (
            "id",
            "label_code",
            "label_zh",
            "label_en",
            "probability",
            "threshold",
            "decision",
            "positive",
            "outcome",
            "referable",
            "abnormal_areas",
            "cam_method",
            "has_heatmap",
            "heatmap_url",
        )

    def get_threshold(self, finding: Finding) -> float | None:
        return _decided(finding).shown_threshold

    def get_positive(self, finding: Finding) -> bool:
        return _decided(finding).positive

    def get_decision(self, finding: Finding) -> str:
        return _decided(finding).decision

    def get_outcome(self, finding: Finding) -> str:
        return _decided(finding).outcome

    def get_has_heatmap(self, finding: Finding) -> bool:
        return bool(finding.heatmap)

    def get_heatmap_url(self, finding: Finding) -> str | None:
        if not finding.heatmap:
            return None
        return reverse("api-v1:finding-heatmap", args=[finding.pk])


class AnalysisOutputSerializer(serializers.ModelSerializer):
    """One model's analysis of one photo: model identity, quality gate, findings."""

    eye = serializers.CharField(source="image.eye", read_only=True)
    status_label = ChoiceLabelField(AnalysisStatus.choices, source="status")
    evidence = serializers.SerializerMethodField(help_text="The model card's one-line evidence.")
    findings = FindingOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Analysis
        fields = (
            "id",
            "image",
            "eye",
            "run",
            "model_name",
            "model_version",
            "weights_sha256",
            "demonstration",
            "evidence",
            "status",
            "status_label",
            "attempts",
            "quality_score",
            "quality_gradable",
            "quality_reasons",
            "error",
            "requested_at",
            "started_at",
            "finished_at",
            "findings",
        )

    def get_evidence(self, analysis: Analysis) -> str:
        return analysis.package.evidence


class TriageReasonSerializer(serializers.Serializer):
    code = serializers.CharField()
    eye = serializers.CharField(allow_blank=True)
    text = serializers.CharField()


class TriageOutputSerializer(serializers.ModelSerializer):
    level_label = ChoiceLabelField(TriageLevel.choices, source="level")
    reasons = serializers.SerializerMethodField()

    class Meta:
        model = RecordTriage
        fields = ("level", "level_label", "priority", "reasons", "updated_at")

    @extend_schema_field(TriageReasonSerializer(many=True))
    def get_reasons(self, triage: RecordTriage) -> list[dict]:
        return [
            {
                "code": str(r.get("code", "")),
                "eye": r.get("eye") or "",
                "text": triage_reason_text(r),
            }
            for r in triage.reasons
        ]


class WorklistItemSerializer(serializers.ModelSerializer):
    """A screening waiting for review, with the AI's priority and its reasons."""

    patient = PatientBriefSerializer(read_only=True)
    status_label = ChoiceLabelField(RecordStatus.choices, source="status")
    # A declared nested field is built once per list, not once per row; a record without a
    # triage row reads as null.
    triage = TriageOutputSerializer(read_only=True, allow_null=True)
    assigned_doctor = serializers.PrimaryKeyRelatedField(
        read_only=True, help_text="The doctor whose worklist holds it; null: every doctor's."
    )

    class Meta:
        model = ScreeningRecord
        fields = (
            "id",
            "patient",
            "screened_at",
            "status",
            "status_label",
            "va_od",
            "va_os",
            "iop_od",
            "iop_os",
            "assigned_doctor",
            "triage",
        )


# --- the per-record summary (ai_engine.selectors.record_ai_result), for the schema -----------
class ModelRefSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    demonstration = serializers.BooleanField()
    evidence = serializers.CharField(allow_blank=True)


class EyeSummarySerializer(serializers.Serializer):
    conclusion = serializers.CharField()
    confidence = serializers.FloatField(allow_null=True)
    abnormal_areas = serializers.ListField(child=serializers.CharField())
    abnormal_codes = serializers.ListField(child=serializers.CharField(), required=False)
    referable = serializers.BooleanField(
        help_text="Refer: a referable finding, referable DR at the DR model's rule, or oedema."
    )
    photos = serializers.IntegerField()
    gradable = serializers.BooleanField()
    review_required = serializers.BooleanField(
        help_text="Gradable with limits only (monochrome photos): no AI reading, the doctor reviews."
    )
    quality_reasons = serializers.ListField(child=serializers.CharField())
    models = ModelRefSerializer(many=True)
    demonstration = serializers.BooleanField()
    findings = serializers.ListField(child=serializers.DictField())
    # The DR grade and macular oedema (ai_engine.inference.diabetic), null where no DR / DME
    # model read the eye's photo (none installed, ungradable or monochrome photo).
    dr_grade = serializers.IntegerField(
        allow_null=True, required=False, help_text="ICDR grade 0-4: the most probable grade."
    )
    dr_grade_text = serializers.CharField(
        allow_null=True,
        required=False,
        help_text='The grade in words, e.g. "中度非增殖期糖尿病视网膜病变 (R2)".',
    )
    dr_grade_probability = serializers.FloatField(allow_null=True, required=False)
    dr_decision = serializers.ChoiceField(
        choices=["referable_threshold", "grade"],
        allow_null=True,
        required=False,
        help_text="How `referable` was decided: P(grade ≥ 2) against the model card's screening "
        "threshold, or the most probable grade (the card names no threshold).",
    )
    p_referable = serializers.FloatField(
        allow_null=True, required=False, help_text="P(grade ≥ 2) from the DR model."
    )
    dme = serializers.BooleanField(
        allow_null=True,
        required=False,
        help_text="Diabetic macular oedema, by the card's threshold.",
    )
    p_dme = serializers.FloatField(allow_null=True, required=False)
    vision_threatening = serializers.BooleanField(
        required=False,
        help_text="Most probable DR grade ≥ 3 (severe NPDR or proliferative) or macular oedema.",
    )


class CombinedSummarySerializer(EyeSummarySerializer):
    ungradable_eyes = serializers.ListField(child=serializers.CharField())
    review_eyes = serializers.ListField(child=serializers.CharField())


class AiResultSerializer(serializers.Serializer):
    language = serializers.CharField(help_text="zh or en, from Accept-Language")
    eyes = serializers.DictField(child=EyeSummarySerializer(), help_text="Keyed by OD / OS.")
    combined = CombinedSummarySerializer()
    pending = serializers.BooleanField(help_text="Some analyses are still queued or running.")
