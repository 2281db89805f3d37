"""The mini-program's "me" endpoints: a signed-in patient's own records, final reports and
follow-up date.

Every queryset starts from the caller's own patient, so another patient's record or report,
a draft report, or an unknown ID is simply not found (404). Every read is audited.
"""

from __future__ import annotations

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.functional import cached_property
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import generics, serializers
from rest_framework.response import Response

from ai_engine.api import request_language
from ai_engine.selectors import record_ai_result
from ai_engine.serializers import AiResultSerializer
from core.api import ChoiceLabelField, IsPatientAccount, audit_list_read, error_responses
from core.audit import audit_log
from core.media import private_file_response
from core.models import AuditEvent
from patients.models import Patient
from patients.services import patient_record_view
from reports.models import Report, ReportStatus
from reports.services import report_record_download
from screening.models import (
    DoctorReview,
    RecallStatus,
    Recommendation,
    RecordStatus,
    ScreeningRecord,
)
from screening.selectors import recall_state
from screening.serializers import (
    DIABETIC_REVIEW_FIELDS,
    AcuityMixin,
    DiabeticReviewFieldsMixin,
    EyeConclusionsFieldMixin,
)

SIGNED_STATUSES = (RecordStatus.REVIEWED, RecordStatus.REPORTED)


def my_patient(request) -> Patient:
    return request.user.patient_account.patient


def my_records(request):
    return ScreeningRecord.objects.filter(patient=my_patient(request)).prefetch_related(
        Prefetch(
            "reviews",
            queryset=DoctorReview.objects.filter(signed_at__isnull=False).order_by("-version"),
            to_attr="signed_reviews",
        ),
        Prefetch(
            "reports",
            queryset=Report.objects.filter(status=ReportStatus.FINAL).order_by("-version"),
            to_attr="final_reports",
        ),
    )


def my_final_reports(request):
    return Report.objects.filter(
        record__patient=my_patient(request), status=ReportStatus.FINAL
    ).select_related("record")


def latest_follow_up(patient: Patient) -> DoctorReview | None:
    """The most recently signed review of any of the patient's screenings."""
    return (
        DoctorReview.objects.filter(record__patient=patient, signed_at__isnull=False)
        .order_by("-signed_at", "-id")
        .first()
    )


def _audit_me(request, obj, patient: Patient) -> None:
    audit_log(
        actor=request.user, action=AuditEvent.Action.VIEW, obj=obj, patient_ref=patient.patient_id
    )


class PatientForceJsonMixin:
    """Errors stay JSON even when the client asked only for a PDF."""

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


# --- serializers ----------------------------------------------------------------------------
class FollowUpSerializer(serializers.Serializer):
    follow_up_date = serializers.DateField(
        allow_null=True, help_text="The date the doctor set (see rescheduled_date)."
    )
    recommendation = serializers.ChoiceField(choices=Recommendation.choices, allow_null=True)
    recommendation_label = serializers.CharField(allow_null=True)
    record_id = serializers.IntegerField(allow_null=True)
    signed_at = serializers.DateTimeField(allow_null=True)
    status = serializers.ChoiceField(
        choices=RecallStatus.choices,
        allow_null=True,
        help_text="The clinic's recall of this follow-up; null when no follow-up date was set.",
    )
    status_label = serializers.CharField(allow_null=True)
    rescheduled_date = serializers.DateField(
        allow_null=True, help_text="The new date agreed with the clinic, when rescheduled."
    )
    next_visit_date = serializers.DateField(
        allow_null=True,
        help_text="When to come: the rescheduled date, else the doctor's; null once back.",
    )


def follow_up_data(review: DoctorReview | None) -> dict:
    empty = {
        "follow_up_date": None,
        "recommendation": None,
        "recommendation_label": None,
        "record_id": None,
        "signed_at": None,
        "status": None,
        "status_label": None,
        "rescheduled_date": None,
        "next_visit_date": None,
    }
    if review is None:
        return empty
    state = recall_state(review=review)
    recall = {}
    if state is not None:
        recall = {
            "status": state.status,
            "status_label": state.status_label,
            "rescheduled_date": state.rescheduled_date,
            "next_visit_date": None
            if state.status in (RecallStatus.CAME_BACK, RecallStatus.DECLINED)
            else state.rescheduled_date or state.due_date,
        }
    return {
        **empty,
        "follow_up_date": review.follow_up_date,
        "recommendation": review.recommendation,
        "recommendation_label": str(
            dict(Recommendation.choices).get(review.recommendation, review.recommendation)
        ),
        "record_id": review.record_id,
        "signed_at": review.signed_at,
        **recall,
    }


class MeOutputSerializer(serializers.ModelSerializer):
    age = serializers.IntegerField(read_only=True)
    phone_masked = serializers.CharField(source="masked_phone", read_only=True)
    follow_up = serializers.SerializerMethodField()

    class Meta:
        model = Patient
        fields = ("patient_id", "name", "sex", "date_of_birth", "age", "phone_masked", "follow_up")

    @extend_schema_field(FollowUpSerializer)
    def get_follow_up(self, patient: Patient) -> dict:
        return FollowUpSerializer(follow_up_data(self.context["follow_up"])).data


class MyConclusionSerializer(
    EyeConclusionsFieldMixin, DiabeticReviewFieldsMixin, serializers.ModelSerializer
):
    """The doctor's signed conclusion as the patient sees it (``eyes``: per eye, with the
    ICD-10 codes and their names). Only signed reviews reach it: a draft is never shown."""

    conclusion_labels = serializers.ListField(child=serializers.CharField(), read_only=True)
    recommendation_label = serializers.SerializerMethodField()

    class Meta:
        model = DoctorReview
        fields = (
            "version",
            "conclusion_codes",
            "conclusion_labels",
            "conclusion_text",
            "recommendation",
            "recommendation_label",
            "recommendation_text",
            "follow_up_date",
            *DIABETIC_REVIEW_FIELDS,
            "eyes",
            "signed_at",
        )

    def get_recommendation_label(self, review: DoctorReview) -> str:
        return str(dict(Recommendation.choices).get(review.recommendation, review.recommendation))


class MyRecordSerializer(AcuityMixin, serializers.ModelSerializer):
    clinic_notation = True  # the mini-program shows the clinic's notation
    status_label = ChoiceLabelField(RecordStatus.choices, source="status")
    iop_od_flag = serializers.CharField(read_only=True)
    iop_os_flag = serializers.CharField(read_only=True)
    conclusion = serializers.SerializerMethodField()
    final_report_ids = serializers.SerializerMethodField()

    class Meta:
        model = ScreeningRecord
        fields = (
            "id",
            "screened_at",
            "status",
            "status_label",
            "va_od",
            "va_os",
            "acuity",
            "iop_od",
            "iop_os",
            "iop_od_flag",
            "iop_os_flag",
            "conclusion",
            "final_report_ids",
        )

    @extend_schema_field(MyConclusionSerializer(allow_null=True))
    def get_conclusion(self, record: ScreeningRecord) -> dict | None:
        reviews = record.signed_reviews
        return self._conclusion.to_representation(reviews[0]) if reviews else None

    @cached_property
    def _conclusion(self) -> MyConclusionSerializer:
        # One serializer for the whole page: building one per row dominates a list's time.
        return MyConclusionSerializer()

    def get_final_report_ids(self, record: ScreeningRecord) -> list[int]:
        return [report.pk for report in record.final_reports]


class MyRecordDetailSerializer(MyRecordSerializer):
    ai_result = serializers.SerializerMethodField(
        help_text="The AI result, shown once a doctor has signed the screening; null before."
    )

    class Meta(MyRecordSerializer.Meta):
        fields = (*MyRecordSerializer.Meta.fields, "ai_result")

    @extend_schema_field(AiResultSerializer(allow_null=True))
    def get_ai_result(self, record: ScreeningRecord) -> dict | None:
        if record.status not in SIGNED_STATUSES:
            return None
        return record_ai_result(record=record, language=request_language())


class MyReportSerializer(serializers.ModelSerializer):
    number = serializers.CharField(read_only=True)
    screened_at = serializers.DateTimeField(source="record.screened_at", read_only=True)
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = (
            "id",
            "number",
            "record",
            "screened_at",
            "version",
            "status",
            "language",
            "summary_final",
            "summary_source",
            "generated_at",
            "verification_code",
            "pdf_sha256",
            "pdf_size",
            "pdf_url",
        )

    def get_pdf_url(self, report: Report) -> str:
        return reverse("api-v1:me-report-pdf", args=[report.pk])


# --- views ----------------------------------------------------------------------------------
class MeApi(generics.GenericAPIView):
    """GET: who I am (masked) and my next follow-up."""

    permission_classes = [IsPatientAccount]
    serializer_class = MeOutputSerializer

    @extend_schema(
        operation_id="me_read", responses={200: MeOutputSerializer, **error_responses(401, 403)}
    )
    def get(self, request):
        patient = my_patient(request)
        patient_record_view(actor=request.user, patient=patient)
        context = {"follow_up": latest_follow_up(patient)}
        return Response(MeOutputSerializer(patient, context=context).data)


class MeFollowUpApi(generics.GenericAPIView):
    """GET: my follow-up date, the doctor's recommendation and where the clinic's recall of it
    stands (rescheduled date, came back); nulls when none yet."""

    permission_classes = [IsPatientAccount]
    serializer_class = FollowUpSerializer

    @extend_schema(
        operation_id="me_follow_up",
        responses={200: FollowUpSerializer, **error_responses(401, 403)},
        examples=[
            OpenApiExample(
                "Refer in 3 months",
                value={
                    "follow_up_date": "2027-02-22",
                    "recommendation": "refer",
                    "recommendation_label": "Refer to an ophthalmologist",
                    "record_id": 42,
                    "signed_at": "2026-11-22T10:05:00+08:00",
                    "status": "rescheduled",
                    "status_label": "Rescheduled",
                    "rescheduled_date": "2027-03-01",
                    "next_visit_date": "2027-03-01",
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        patient = my_patient(request)
        review = latest_follow_up(patient)
        _audit_me(request, review or patient, patient)
        return Response(FollowUpSerializer(follow_up_data(review)).data)


class MeRecordListApi(generics.ListAPIView):
    """GET: my screenings, newest first, with the doctor's signed conclusion when there is one."""

    permission_classes = [IsPatientAccount]
    serializer_class = MyRecordSerializer
    filter_backends: list = []

    def get_queryset(self):
        return my_records(self.request)

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        patient = my_patient(self.request)
        audit_list_read(
            actor=self.request.user,
            object_type="screening.screeningrecord",
            patient_refs=[patient.patient_id],
            filters=[],
        )
        return page

    @extend_schema(
        operation_id="me_records",
        responses={200: MyRecordSerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class MeRecordDetailApi(generics.GenericAPIView):
    """GET: one of my screenings; the AI result is included once a doctor has signed."""

    permission_classes = [IsPatientAccount]
    serializer_class = MyRecordDetailSerializer

    @extend_schema(
        operation_id="me_records_read",
        responses={200: MyRecordDetailSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request, record_id: int):
        record = get_object_or_404(my_records(request), pk=record_id)
        _audit_me(request, record, record.patient)
        return Response(MyRecordDetailSerializer(record).data)


class MeReportListApi(generics.ListAPIView):
    """GET: my final reports (drafts are never shown to patients), newest first."""

    permission_classes = [IsPatientAccount]
    serializer_class = MyReportSerializer
    filter_backends: list = []

    def get_queryset(self):
        return my_final_reports(self.request)

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        audit_list_read(
            actor=self.request.user,
            object_type="reports.report",
            patient_refs=[my_patient(self.request).patient_id],
            filters=[],
        )
        return page

    @extend_schema(
        operation_id="me_reports",
        responses={200: MyReportSerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class MeReportPdfApi(PatientForceJsonMixin, generics.GenericAPIView):
    """GET: the PDF of one of my final reports (every download is audited)."""

    permission_classes = [IsPatientAccount]
    serializer_class = MyReportSerializer

    @extend_schema(
        operation_id="me_reports_pdf",
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF"),
            **error_responses(401, 403, 404),
        },
    )
    def get(self, request, report_id: int):
        report = get_object_or_404(
            my_final_reports(request).select_related("record__patient"), pk=report_id
        )
        response = private_file_response(report.pdf.name, download_name=report.download_name)
        report_record_download(report=report, actor=request.user)
        return response
