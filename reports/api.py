"""REST API of reports: one view per operation, each with its own serializers.

Staff (session authentication for now) list a record's reports, trigger generation, approve a
summary and download PDFs; anyone may check a printed verification code, which reveals no
patient data.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ScopedThrottle, StrictCharField, error_responses, service_errors
from core.branding import clinic_name
from core.media import private_file_response
from core.roles import user_may
from core.tasks import enqueue_on_commit
from reports.models import Report, ReportLanguage
from reports.selectors import report_by_verification_code, report_list
from reports.services import report_approve_summary, report_record_download
from screening.models import ScreeningRecord

ON_DEMAND_TASK = "reports.tasks.generate_report_on_demand"


class HasPermission(BasePermission):
    """The user holds `required_permission` of the view, for the list and for each object.

    Every staff member with the permission sees every record of the clinic, so the object
    check is the same test; patient accounts hold no report permission and get 403.
    """

    message = _("You do not have permission to do this.")

    def has_permission(self, request, view) -> bool:
        return user_may(request.user, view.required_permission)

    def has_object_permission(self, request, view, obj) -> bool:
        return self.has_permission(request, view)


class ReportListApi(APIView):
    """GET /api/v1/records/<record_id>/reports/ — every version of a record's report."""

    permission_classes = [IsAuthenticated, HasPermission]
    required_permission = "reports.view_report"

    @extend_schema_serializer(component_name="Report")
    class OutputSerializer(serializers.ModelSerializer):
        number = serializers.CharField(read_only=True)
        summary_approved_by = serializers.SerializerMethodField()
        pdf_url = serializers.SerializerMethodField()

        class Meta:
            model = Report
            fields = (
                "id",
                "number",
                "record",
                "version",
                "status",
                "language",
                "review_version",
                "summary_final",
                "summary_source",
                "summary_fallback_reason",
                "summary_approved_by",
                "summary_approved_at",
                "generated_at",
                "pdf_sha256",
                "pdf_size",
                "access_code",
                "verification_code",
                "pdf_url",
            )

        def get_summary_approved_by(self, report: Report) -> str | None:
            user = report.summary_approved_by
            return user.get_username() if user else None

        def get_pdf_url(self, report: Report) -> str:
            return reverse("api-v1:report-pdf", args=[report.pk])

    @extend_schema(
        operation_id="reports_list",
        responses={200: OutputSerializer(many=True), **error_responses(401, 403, 404)},
    )
    def get(self, request, record_id: int) -> Response:
        record = get_object_or_404(ScreeningRecord, pk=record_id)
        self.check_object_permissions(request, record)
        reports = report_list(record=record)
        return Response(self.OutputSerializer(reports, many=True).data)


class ReportGenerateApi(APIView):
    """POST /api/v1/records/<record_id>/reports/generate/ — queue a new version (doctors)."""

    permission_classes = [IsAuthenticated, HasPermission]
    required_permission = "reports.add_report"

    @extend_schema_serializer(component_name="ReportGenerateInput")
    class InputSerializer(serializers.Serializer):
        language = serializers.ChoiceField(
            choices=ReportLanguage.choices, default=ReportLanguage.ZH_HANS
        )

    @extend_schema(
        operation_id="reports_generate",
        request=InputSerializer,
        responses={
            202: inline_serializer(
                "ReportGenerateQueued",
                fields={
                    "record": serializers.IntegerField(),
                    "language": serializers.CharField(),
                    "queued": serializers.BooleanField(),
                },
            ),
            **error_responses(400, 401, 403, 404),
        },
    )
    def post(self, request, record_id: int) -> Response:
        record = get_object_or_404(ScreeningRecord, pk=record_id)
        self.check_object_permissions(request, record)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not record.images.exists():
            raise ValidationError(
                {"detail": [_("Upload at least one photo before generating a report.")]}
            )
        language = data.validated_data["language"]
        # Rendering and the LLM call take seconds: a worker does it; the task re-checks permission.
        enqueue_on_commit(ON_DEMAND_TASK, record.pk, request.user.pk, language)
        return Response(
            {"record": record.pk, "language": language, "queued": True},
            status=status.HTTP_202_ACCEPTED,
        )


class ReportApproveSummaryApi(APIView):
    """POST /api/v1/reports/<report_id>/approve-summary/ — the doctor's text, as a new version."""

    permission_classes = [IsAuthenticated, HasPermission]
    required_permission = "reports.approve_summary"

    @extend_schema_serializer(component_name="ReportApproveSummaryInput")
    class InputSerializer(serializers.Serializer):
        text = StrictCharField(max_length=4000, trim_whitespace=True)

    @extend_schema(
        operation_id="reports_approve_summary",
        request=InputSerializer,
        responses={
            201: ReportListApi.OutputSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
    )
    def post(self, request, report_id: int) -> Response:
        report = get_object_or_404(Report.objects.select_related("record"), pk=report_id)
        self.check_object_permissions(request, report)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # A newer version of this report (another approval, a new signature) is a 409 with it.
        with service_errors(current=lambda newer: ReportListApi.OutputSerializer(newer).data):
            new = report_approve_summary(
                report=report, doctor=request.user, text=data.validated_data["text"]
            )
        new = report_list().get(pk=new.pk)
        return Response(ReportListApi.OutputSerializer(new).data, status=status.HTTP_201_CREATED)


class ReportPdfApi(APIView):
    """GET /api/v1/reports/<report_id>/pdf/ — the PDF file (staff; every download is logged)."""

    permission_classes = [IsAuthenticated, HasPermission]
    required_permission = "reports.view_report"

    @extend_schema(
        operation_id="reports_pdf",
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF"),
            **error_responses(401, 403, 404),
        },
    )
    def get(self, request, report_id: int):
        report = get_object_or_404(Report.objects.select_related("record__patient"), pk=report_id)
        self.check_object_permissions(request, report)
        response = private_file_response(report.pdf.name, download_name=report.download_name)
        report_record_download(report=report, actor=request.user)
        return response


class ReportVerifyApi(APIView):
    """GET /api/v1/reports/verify/<code>/ — public authenticity check; no patient data."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    # Per client address (TRUSTED_PROXY_COUNT): codes cannot be guessed from one address.
    throttle_classes = [ScopedThrottle]
    throttle_scope = "verify"

    @extend_schema_serializer(component_name="ReportVerification")
    class OutputSerializer(serializers.ModelSerializer):
        report_id = serializers.CharField(source="number")
        clinic = serializers.SerializerMethodField()

        class Meta:
            model = Report
            fields = ("report_id", "version", "status", "generated_at", "clinic", "pdf_sha256")

        def get_clinic(self, report: Report) -> str:
            return clinic_name()

    @extend_schema(
        operation_id="reports_verify",
        responses={200: OutputSerializer, **error_responses(404, 429)},
    )
    def get(self, request, code: str) -> Response:
        report = report_by_verification_code(code=code)
        if report is None:
            raise NotFound(_("No report has this verification code."))
        return Response(self.OutputSerializer(report).data)
