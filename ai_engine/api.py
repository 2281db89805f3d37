"""REST API of AI results (staff): photo upload with its analysis status, analyses and
findings with their heatmaps, re-runs, the per-record summary and the doctors' worklist.

The photo upload lives here rather than in screening.api because its answer carries the
analysis status, and screening never imports the AI engine (DESIGN §1): this view calls
screening's `image_upload` (the same validator as every other entry point) and reads back.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import BigIntegerField, ExpressionWrapper, F, Prefetch, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils.translation import get_language
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from ai_engine.models import Analysis, AnalysisStatus, Finding
from ai_engine.selectors import record_ai_result, record_latest_analyses
from ai_engine.serializers import (
    AiResultSerializer,
    AnalysisOutputSerializer,
    WorklistItemSerializer,
)
from ai_engine.services import analysis_rerun
from core.api import (
    AuditedListMixin,
    HasRequiredPermissions,
    ScopedThrottle,
    cursor_page,
    error_responses,
    service_errors,
    validation_error_from_django,
)
from core.media import private_file_response
from screening.api import RECORD_READ, audit_read
from screening.models import Eye, RecordStatus, ScreeningRecord
from screening.selectors import record_list
from screening.serializers import ImageOutputSerializer
from screening.services import DuplicatePhotoHeld, image_upload

AI_READ = [*RECORD_READ, "ai_engine.view_analysis", "ai_engine.view_finding"]
# The worklist orders by this one unique key (highest priority first, then the oldest record),
# so that cursor pagination needs no OFFSET.
WORKLIST_KEY_SCALE = 10**12


def analyses_queryset():
    return (
        Analysis.objects.visible()
        .select_related("image", "package")
        .prefetch_related(
            Prefetch("findings", queryset=Finding.objects.order_by("-positive", "-probability"))
        )
    )


def image_analysis_status(analyses: list[Analysis]) -> str:
    """One status for a photo across its models' latest runs."""
    statuses = {analysis.status for analysis in analyses}
    for candidate in (
        AnalysisStatus.RUNNING,
        AnalysisStatus.QUEUED,
        AnalysisStatus.FAILED,
        AnalysisStatus.UNGRADABLE,
    ):
        if candidate in statuses:
            return candidate
    return AnalysisStatus.DONE if statuses else AnalysisStatus.QUEUED


def request_language() -> str:
    return "zh" if (get_language() or settings.LANGUAGE_CODE).startswith("zh") else "en"


# --- upload ---------------------------------------------------------------------------------
class UploadInputSerializer(serializers.Serializer):
    eye = serializers.ChoiceField(choices=Eye.choices)
    # Every check of the file is screening.uploads.validate_fundus_upload's, with its messages.
    file = serializers.FileField(allow_empty_file=True, use_url=False, max_length=None)
    confirm_duplicate = serializers.BooleanField(
        default=False,
        help_text="Send true to store a photo already stored for another screening of the "
        "patient, after a 409 with the error code duplicate.",
    )


class UploadOutputSerializer(serializers.Serializer):
    image = ImageOutputSerializer()
    record_status = serializers.ChoiceField(choices=RecordStatus.choices)
    analysis_status = serializers.ChoiceField(
        choices=AnalysisStatus.choices,
        help_text="queued until a worker picks the photo up; poll the record's analyses.",
    )
    analyses = AnalysisOutputSerializer(many=True)


class ImageUploadApi(generics.GenericAPIView):
    """POST (multipart): one fundus photo of one eye; its AI analysis is queued."""

    permission_classes = [HasRequiredPermissions]
    required_permissions = {"POST": [*RECORD_READ, "screening.add_fundusimage"]}
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "upload"
    serializer_class = UploadOutputSerializer

    @extend_schema(
        operation_id="images_upload",
        request={"multipart/form-data": UploadInputSerializer},
        responses={201: UploadOutputSerializer, **error_responses(400, 401, 403, 404, 409, 429)},
        description=(
            "A photo already stored for another screening of the same patient (either eye) "
            'is held: 409 with the error code "duplicate", naming the earlier photo. Send it '
            "again with confirm_duplicate=true to store it anyway (the confirmation is audited)."
        ),
    )
    def post(self, request, record_id: int):
        record = get_object_or_404(record_list(), pk=record_id)
        data = UploadInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            image = image_upload(
                actor=request.user,
                record=record,
                eye=data.validated_data["eye"],
                uploaded_file=data.validated_data["file"],
                confirm_duplicate=data.validated_data["confirm_duplicate"],
            )
        except DuplicatePhotoHeld as exc:
            raise DuplicateConflict(" ".join(exc.messages)) from exc
        except DjangoValidationError as exc:
            raise _upload_error(exc) from exc
        analyses = [a for a in analyses_queryset().filter(image=image).order_by("run")]
        latest = {a.package_id: a for a in analyses}  # the last run per package
        body = {
            "image": image,
            "record_status": record.status,
            "analysis_status": image_analysis_status(list(latest.values())),
            "analyses": list(latest.values()),
        }
        return Response(UploadOutputSerializer(body).data, status=status.HTTP_201_CREATED)


class DuplicateConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "duplicate"


def _upload_error(exc: DjangoValidationError) -> ValidationError:
    """The validator's message as the file field's error (the eye's stays the eye's)."""
    if hasattr(exc, "error_dict"):
        return validation_error_from_django(exc)
    detail = validation_error_from_django(exc).detail["non_field_errors"]
    return ValidationError({"file": detail})


# --- analyses -------------------------------------------------------------------------------
class RecordAnalysesApi(generics.GenericAPIView):
    """GET: the latest analysis per photo and model of a screening, with findings (audited)."""

    queryset = ScreeningRecord.objects.none()  # names the path's model in the schema
    pagination_class = None  # one screening's short list: no cursor, a plain array
    permission_classes = [HasRequiredPermissions]
    required_permissions = {"GET": AI_READ}
    serializer_class = AnalysisOutputSerializer

    @extend_schema(
        operation_id="analyses_list",
        responses={200: AnalysisOutputSerializer(many=True), **error_responses(401, 403, 404)},
    )
    def get(self, request, record_id: int):
        record = get_object_or_404(record_list(), pk=record_id)
        analyses = record_latest_analyses(record=record)
        audit_read(actor=request.user, obj=record, patient_ref=record.patient.patient_id)
        return Response(AnalysisOutputSerializer(analyses, many=True).data)


class AnalysisDetailApi(generics.GenericAPIView):
    """GET: one analysis with its model, quality gate and findings (audited)."""

    permission_classes = [HasRequiredPermissions]
    required_permissions = {"GET": AI_READ}
    serializer_class = AnalysisOutputSerializer

    @extend_schema(
        operation_id="analyses_read",
        responses={200: AnalysisOutputSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request, analysis_id: int):
        analysis = get_object_or_404(
            analyses_queryset().select_related("image__record__patient"), pk=analysis_id
        )
        audit_read(
            actor=request.user, obj=analysis, patient_ref=analysis.image.record.patient.patient_id
        )
        return Response(AnalysisOutputSerializer(analysis).data)


class AnalysisRerunApi(generics.GenericAPIView):
    """POST: queue a fresh analysis of the same photo with the same model package."""

    permission_classes = [HasRequiredPermissions]
    required_permissions = {"POST": [*AI_READ, "ai_engine.rerun_analysis"]}
    serializer_class = AnalysisOutputSerializer

    @extend_schema(
        operation_id="analyses_rerun",
        request=None,
        responses={201: AnalysisOutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request, analysis_id: int):
        analysis = get_object_or_404(
            Analysis.objects.visible().select_related("image__record__patient", "package"),
            pk=analysis_id,
        )
        with service_errors():
            rerun = analysis_rerun(analysis=analysis, actor=request.user)
        rerun = analyses_queryset().get(pk=rerun.pk)
        return Response(AnalysisOutputSerializer(rerun).data, status=status.HTTP_201_CREATED)


class FindingHeatmapApi(generics.GenericAPIView):
    """GET: a finding's heatmap overlay (PNG) over its photo (staff; every download is audited).

    404 when the finding has no heatmap (only positive findings get one).
    """

    queryset = Finding.objects.none()  # names the path's model in the schema
    permission_classes = [HasRequiredPermissions]
    required_permissions = {"GET": [*AI_READ, "screening.view_fundusimage"]}

    @extend_schema(
        operation_id="findings_heatmap",
        responses={
            (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, description="The heatmap"),
            **error_responses(401, 403, 404, 503),
        },
    )
    def get(self, request, finding_id: int):
        finding = get_object_or_404(
            Finding.objects.filter(analysis__shadow=False).select_related(
                "analysis__image__record__patient"
            ),
            pk=finding_id,
        )
        response = private_file_response(finding.heatmap.name)
        audit_read(
            actor=request.user,
            obj=finding,
            patient_ref=finding.analysis.image.record.patient.patient_id,
        )
        return response


AI_RESULT_EXAMPLE = {
    "language": "zh",
    "eyes": {
        "OD": {
            "conclusion": "糖尿病视网膜病变",
            "confidence": 0.83,
            "abnormal_areas": ["黄斑区"],
            "abnormal_codes": ["D"],
            "referable": True,
            "photos": 1,
            "gradable": True,
            "review_required": False,
            "quality_reasons": [],
            "models": [
                {
                    "name": "odir-demo",
                    "version": "1.2.0",
                    "demonstration": True,
                    "evidence": "Macro-F1 0.71 on 1,204 held-out photos (demo data)",
                }
            ],
            "demonstration": True,
            "findings": [
                {"code": "D", "probability": 0.83, "positive": True, "model": "odir-demo"}
            ],
            "dr_grade": 2,
            "dr_grade_text": "中度非增殖期糖尿病视网膜病变 (R2)",
            "dr_grade_probability": 0.52,
            "dr_decision": "referable_threshold",
            "p_referable": 0.71,
            "dme": False,
            "p_dme": 0.12,
            "vision_threatening": False,
        }
    },
    "combined": {
        "conclusion": "糖尿病视网膜病变",
        "confidence": 0.83,
        "abnormal_areas": ["黄斑区"],
        "referable": True,
        "photos": 1,
        "gradable": True,
        "review_required": False,
        "quality_reasons": [],
        "models": [],
        "demonstration": True,
        "findings": [],
        "ungradable_eyes": [],
        "review_eyes": [],
        "vision_threatening": False,
    },
    "pending": False,
}


class RecordAiResultApi(generics.GenericAPIView):
    """GET: the screening's AI result per eye and combined, in the mini-program's shape, in the
    request's language (Accept-Language: zh-hans or en). Audited."""

    permission_classes = [HasRequiredPermissions]
    required_permissions = {"GET": AI_READ}
    serializer_class = AiResultSerializer

    @extend_schema(
        operation_id="records_ai_result",
        responses={200: AiResultSerializer, **error_responses(401, 403, 404)},
        examples=[OpenApiExample("Right eye with DR", value=AI_RESULT_EXAMPLE, response_only=True)],
    )
    def get(self, request, record_id: int):
        record = get_object_or_404(record_list(), pk=record_id)
        result = record_ai_result(record=record, language=request_language())
        audit_read(actor=request.user, obj=record, patient_ref=record.patient.patient_id)
        return Response(result)


# --- worklist -------------------------------------------------------------------------------
class WorklistApi(AuditedListMixin, generics.ListAPIView):
    """GET: screenings waiting for a doctor's review, most urgent AI triage first, then oldest.

    Reasons are rendered in the request's language.
    """

    permission_classes = [HasRequiredPermissions]
    required_permissions = {"GET": AI_READ}
    serializer_class = WorklistItemSerializer
    pagination_class = cursor_page("-worklist_key")
    filter_backends: list = []
    audit_object_type = "screening.screeningrecord"

    def get_queryset(self):
        records = ScreeningRecord.objects.filter(status=RecordStatus.ANALYSED)
        assigned_to = self.request.query_params.get("assigned_to", "")
        if assigned_to == "me":
            records = records.filter(assigned_doctor=self.request.user)
        elif assigned_to == "none":
            records = records.filter(assigned_doctor__isnull=True)
        elif assigned_to:
            raise ValidationError({"assigned_to": ['Use "me" or "none".']})
        return records.select_related("patient", "triage").annotate(
            # BigInteger explicitly: inferred from the small-integer priority, PostgreSQL's
            # range check would turn "key < cursor" into "always true" (Django drops
            # comparisons with out-of-range values), and page 2 would repeat page 1.
            worklist_key=ExpressionWrapper(
                Coalesce(F("triage__priority"), Value(0)) * WORKLIST_KEY_SCALE - F("id"),
                output_field=BigIntegerField(),
            )
        )

    def audit_patient_ref(self, obj: ScreeningRecord) -> str:
        return obj.patient.patient_id

    @extend_schema(
        operation_id="worklist",
        parameters=[
            OpenApiParameter(
                "assigned_to",
                str,
                enum=["me", "none"],
                description="me: the screenings assigned to you; none: those assigned to no one.",
            )
        ],
        responses={200: WorklistItemSerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
