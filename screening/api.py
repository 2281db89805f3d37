"""REST API of screening (staff): visits with vision and IOP, photo files, doctors' reviews.

Photo uploads are in ai_engine.api: their response carries the AI analysis status, and
screening never imports the AI engine (DESIGN §1). Every detail read is audited.
"""

from __future__ import annotations

import datetime as dt

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from core.api import (
    AuditedListMixin,
    HasRequiredPermissions,
    StrictCharField,
    error_responses,
    revision_etag,
    seen_revision,
    service_errors,
)
from core.audit import audit_log
from core.models import AuditEvent
from patients.models import Patient
from screening.media import ImageSize, fundus_image_response
from screening.models import (
    ConclusionCode,
    Correction,
    DoctorReview,
    FundusImage,
    Recommendation,
    RecordStatus,
    ScreeningRecord,
)
from screening.selectors import record_current_review, record_list
from screening.serializers import (
    DrGradeField,
    PassThroughField,
    RecordDetailOutputSerializer,
    RecordOutputSerializer,
    ReviewOutputSerializer,
)
from screening.services import (
    record_assign,
    record_create,
    record_update,
    review_save_draft,
    review_sign,
)

RECORD_READ = ["screening.view_screeningrecord", "patients.view_patient"]
IMAGE_READ = [*RECORD_READ, "screening.view_fundusimage"]
REVIEW_WRITE = [*RECORD_READ, "screening.add_doctorreview", "screening.change_doctorreview"]


def audit_read(*, actor, obj, patient_ref: str) -> None:
    audit_log(actor=actor, action=AuditEvent.Action.VIEW, obj=obj, patient_ref=patient_ref)


def record_detail_queryset():
    return record_list().prefetch_related(
        Prefetch(
            "images",
            queryset=FundusImage.objects.select_related("uploaded_by").order_by("eye", "id"),
        ),
        Prefetch(
            "reviews", queryset=DoctorReview.objects.select_related("doctor").order_by("-version")
        ),
    )


def _local_day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())


class RecordFilter(django_filters.FilterSet):
    patient = django_filters.CharFilter(field_name="patient__patient_id", label="Patient ID")
    status = django_filters.ChoiceFilter(choices=RecordStatus.choices)
    screened_from = django_filters.DateFilter(
        method="from_day", label="Screened on or after this day (clinic time)"
    )
    screened_to = django_filters.DateFilter(
        method="to_day", label="Screened on or before this day (clinic time)"
    )

    class Meta:
        model = ScreeningRecord
        fields = ("patient", "status", "screened_from", "screened_to")

    def from_day(self, queryset, name, value: dt.date):
        return queryset.filter(screened_at__gte=_local_day_start(value))

    def to_day(self, queryset, name, value: dt.date):
        return queryset.filter(screened_at__lt=_local_day_start(value + dt.timedelta(days=1)))


class AcuityInputField(StrictCharField):
    """Acuity as text in either notation: "4.9", "0.8", "CF/30cm", "手动".

    A JSON number is taken as its text too (the field was a decimal before 5-point entry):
    it can only be an acuity or an error from the service, never stored as typed.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("max_length", 20)
        kwargs.setdefault(
            "help_text",
            "5-point (3.0–5.3, e.g. 4.9) or decimal (0.01–2.0, e.g. 0.8), or CF (CF/30cm), "
            "HM, LP, NLP (指数, 手动, 光感, 无光感); null or '' clears it",
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, int | float) and not isinstance(data, bool):
            data = str(data)
        return super().to_internal_value(data)


class CorrectionInputField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("help_text", "How the corrected acuity was measured ('' not recorded)")
        super().__init__(choices=Correction.choices, **kwargs)


class RecordCreateInputSerializer(serializers.Serializer):
    patient = StrictCharField(max_length=32, help_text="The patient ID, e.g. P20260001")
    screened_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    va_od = AcuityInputField(default=None)
    va_os = AcuityInputField(default=None)
    cva_od = AcuityInputField(default=None)
    cva_os = AcuityInputField(default=None)
    cva_correction_od = CorrectionInputField(default="")
    cva_correction_os = CorrectionInputField(default="")
    phva_od = AcuityInputField(default=None)
    phva_os = AcuityInputField(default=None)
    iop_od = serializers.DecimalField(
        max_digits=5, decimal_places=2, required=False, allow_null=True, default=None
    )
    iop_os = serializers.DecimalField(
        max_digits=5, decimal_places=2, required=False, allow_null=True, default=None
    )
    notes = StrictCharField(max_length=4000, required=False, allow_blank=True, default="")


class RecordListCreateApi(AuditedListMixin, generics.ListAPIView):
    """GET: screenings by patient, day and status (newest first); POST: start a screening."""

    permission_classes = [HasRequiredPermissions]
    required_permissions = {
        "GET": RECORD_READ,
        "POST": [*RECORD_READ, "screening.add_screeningrecord"],
    }
    serializer_class = RecordOutputSerializer
    filterset_class = RecordFilter
    audit_object_type = "screening.screeningrecord"

    def get_queryset(self):
        return record_list()

    def audit_patient_ref(self, obj: ScreeningRecord) -> str:
        return obj.patient.patient_id

    @extend_schema(
        operation_id="records_list",
        responses={200: RecordOutputSerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="records_create",
        request=RecordCreateInputSerializer,
        responses={201: RecordDetailOutputSerializer, **error_responses(400, 401, 403)},
        examples=[
            OpenApiExample(
                "Vision and IOP",
                value={
                    "patient": "P20260001",
                    "va_od": "4.9",
                    "va_os": "0.8",
                    "cva_od": "5.0",
                    "cva_correction_od": "glasses",
                    "iop_od": "15",
                    "iop_os": "23.5",
                    "notes": "",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request, *args, **kwargs):
        data = RecordCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        patient = Patient.objects.filter(patient_id=fields.pop("patient")).first()
        if patient is None:
            raise ValidationError({"patient": [_("No patient has this patient ID.")]})
        with service_errors():
            record = record_create(actor=request.user, patient=patient, **fields)
        record = record_detail_queryset().get(pk=record.pk)
        return Response(
            RecordDetailOutputSerializer(record, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class RecordUpdateInputSerializer(serializers.Serializer):
    """Only the fields sent are changed; null clears a measurement."""

    screened_at = serializers.DateTimeField(required=False)
    va_od = AcuityInputField()
    va_os = AcuityInputField()
    cva_od = AcuityInputField()
    cva_os = AcuityInputField()
    cva_correction_od = CorrectionInputField()
    cva_correction_os = CorrectionInputField()
    phva_od = AcuityInputField()
    phva_os = AcuityInputField()
    iop_od = serializers.DecimalField(
        max_digits=5, decimal_places=2, required=False, allow_null=True
    )
    iop_os = serializers.DecimalField(
        max_digits=5, decimal_places=2, required=False, allow_null=True
    )
    notes = StrictCharField(max_length=4000, required=False, allow_blank=True)


class RecordDetailApi(generics.GenericAPIView):
    """GET: one screening with its photos and reviews (audited); PATCH: correct its
    measurements or notes, until a doctor signs."""

    permission_classes = [HasRequiredPermissions]
    required_permissions = {
        "GET": RECORD_READ,
        "PATCH": [*RECORD_READ, "screening.change_screeningrecord"],
    }
    serializer_class = RecordDetailOutputSerializer

    @extend_schema(
        operation_id="records_read",
        responses={200: RecordDetailOutputSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request, record_id: int):
        record = get_object_or_404(record_detail_queryset(), pk=record_id)
        audit_read(actor=request.user, obj=record, patient_ref=record.patient.patient_id)
        return Response(RecordDetailOutputSerializer(record, context={"request": request}).data)

    @extend_schema(
        operation_id="records_update",
        request=RecordUpdateInputSerializer,
        responses={200: RecordDetailOutputSerializer, **error_responses(400, 401, 403, 404)},
        description=(
            "Correct a screening's measurements or notes: only the fields sent change, null "
            "clears a measurement, and each change is audited. A screening with a signed "
            'review is locked: the answer is 400 with the error code "locked".'
        ),
        examples=[
            OpenApiExample(
                "Correct the right eye's IOP",
                value={"iop_od": "17", "notes": "复测眼压"},
                request_only=True,
            )
        ],
    )
    def patch(self, request, record_id: int):
        record = get_object_or_404(record_list(), pk=record_id)
        data = RecordUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with service_errors():
            record_update(actor=request.user, record=record, **data.validated_data)
        record = record_detail_queryset().get(pk=record.pk)
        return Response(RecordDetailOutputSerializer(record, context={"request": request}).data)


# --- photo files ----------------------------------------------------------------------------
class ImageFileQuerySerializer(serializers.Serializer):
    size = serializers.ChoiceField(choices=ImageSize.choices, default=ImageSize.FULL)
    original = serializers.BooleanField(
        default=False,
        help_text="Administrators only: the file exactly as uploaded, as an attachment "
        "(audited as view_original). Others get 403.",
    )


PHOTO = OpenApiResponse(
    OpenApiTypes.BINARY,
    description="The photo (re-encoded from its pixels, no metadata), its JPEG preview, or "
    "for administrators the original file",
)


class ImageFileApi(generics.GenericAPIView):
    """GET: a fundus photo re-encoded from its pixels (no EXIF, comments or trailing data),
    ``?size=thumb`` its JPEG preview, or ``?original=1`` the file as uploaded (administrators
    only). Staff; every download, preview or not, is audited."""

    queryset = FundusImage.objects.none()  # names the path's model in the schema
    permission_classes = [HasRequiredPermissions]
    required_permissions = {"GET": IMAGE_READ}

    @extend_schema(
        operation_id="images_file",
        parameters=[ImageFileQuerySerializer],
        responses={
            (200, "image/jpeg"): PHOTO,
            (200, "image/png"): PHOTO,
            (200, "image/tiff"): PHOTO,
            **error_responses(400, 401, 403, 404, 503),
        },
    )
    def get(self, request, image_id: int):
        query = ImageFileQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        image = get_object_or_404(
            FundusImage.objects.select_related("record__patient"), pk=image_id
        )
        return fundus_image_response(
            actor=request.user,
            image=image,
            size=query.validated_data["size"],
            audit_preview=True,
            original=query.validated_data["original"],
        )


# --- doctor reviews -------------------------------------------------------------------------
class ReviewInputSerializer(serializers.Serializer):
    conclusion_codes = serializers.ListField(
        child=serializers.ChoiceField(choices=ConclusionCode.choices),
        max_length=12,
        required=False,
        default=list,
        help_text="The visit's conclusion codes; empty: the eyes' conclusions together.",
    )
    conclusion_text = StrictCharField(max_length=4000, required=False, allow_blank=True, default="")
    recommendation = serializers.ChoiceField(
        choices=Recommendation.choices,
        required=False,
        allow_blank=True,
        default="",
        help_text="The visit's recommendation; empty: the most pressing of the eyes'.",
    )
    recommendation_text = StrictCharField(
        max_length=4000, required=False, allow_blank=True, default=""
    )
    follow_up_months = serializers.IntegerField(
        min_value=1, max_value=36, required=False, allow_null=True, default=None
    )
    follow_up_date = serializers.DateField(required=False, allow_null=True, default=None)
    dr_grade_od = DrGradeField(
        required=False,
        default=None,
        help_text='The right eye\'s ICDR grade: 0–4 (or "R0"–"R4"), "ungradable", or null.',
    )
    dr_grade_os = DrGradeField(
        required=False,
        default=None,
        help_text='The left eye\'s ICDR grade: 0–4 (or "R0"–"R4"), "ungradable", or null.',
    )
    dme_od = PassThroughField(
        required=False,
        default=None,
        help_text="Macular oedema in the right eye: true, false or null.",
    )
    dme_os = PassThroughField(
        required=False,
        default=None,
        help_text="Macular oedema in the left eye: true, false or null.",
    )
    conclusion_codes_od = serializers.ListField(
        child=serializers.ChoiceField(choices=ConclusionCode.choices),
        max_length=12,
        required=False,
        help_text="The right eye's conclusion codes. Left out: kept from the latest review.",
    )
    conclusion_codes_os = serializers.ListField(
        child=serializers.ChoiceField(choices=ConclusionCode.choices),
        max_length=12,
        required=False,
        help_text="The left eye's conclusion codes. Left out: kept from the latest review.",
    )
    diagnosis_codes_od = serializers.ListField(
        child=StrictCharField(max_length=10),
        max_length=10,
        required=False,
        help_text=(
            "The right eye's ICD-10 codes from the clinic's catalogue (e.g. E11.3, H36.0); "
            "empty: the conclusions' default codes. Left out: kept from the latest review."
        ),
    )
    diagnosis_codes_os = serializers.ListField(
        child=StrictCharField(max_length=10),
        max_length=10,
        required=False,
        help_text=(
            "The left eye's ICD-10 codes from the clinic's catalogue (e.g. E11.3, H36.0); "
            "empty: the conclusions' default codes. Left out: kept from the latest review."
        ),
    )
    conclusion_text_od = StrictCharField(max_length=4000, required=False, allow_blank=True)
    conclusion_text_os = StrictCharField(max_length=4000, required=False, allow_blank=True)
    recommendation_od = serializers.ChoiceField(
        choices=Recommendation.choices, required=False, allow_blank=True
    )
    recommendation_os = serializers.ChoiceField(
        choices=Recommendation.choices, required=False, allow_blank=True
    )
    amendment_reason = StrictCharField(
        max_length=4000, required=False, allow_blank=True, default=""
    )
    revision = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        default=None,
        help_text=(
            "The revision of the screening's latest review as you saw it (its ETag; or send "
            "If-Match). Leave it out only when the screening had no review: if the reviews "
            "changed since, nothing is saved and the answer is 409 with the current review."
        ),
    )


class AmendInputSerializer(ReviewInputSerializer):
    amendment_reason = StrictCharField(max_length=4000)
    revision = serializers.IntegerField(
        min_value=1,
        required=False,
        help_text="The revision of the signed review (or of the open amendment) you saw; or "
        "send If-Match. Required.",
    )


class SignInputSerializer(serializers.Serializer):
    revision = serializers.IntegerField(
        min_value=1,
        required=False,
        help_text="The revision of the draft you saw (its ETag; or send If-Match). Required.",
    )


def _review_response(review: DoctorReview, *, created: bool = False) -> Response:
    response = Response(
        ReviewOutputSerializer(review).data,
        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
    )
    response["ETag"] = revision_etag(review.revision)
    return response


def _review_data(review: DoctorReview) -> dict:
    return ReviewOutputSerializer(review).data


def _save_draft(request, record: ScreeningRecord, data: dict, revision: int | None) -> Response:
    fields = {name: value for name, value in data.items() if name != "revision"}
    with service_errors(current=_review_data):
        review = review_save_draft(doctor=request.user, record=record, revision=revision, **fields)
    # The service wrote on top of what the caller saw: a new version when that was nothing or
    # a signed review, the same draft otherwise.
    created = revision is None or (
        review.supersedes is not None and review.supersedes.revision == revision
    )
    return _review_response(review, created=created)


REVIEW_EXAMPLE = {
    "conclusion_codes": ["dr_moderate"],
    "conclusion_text": "右眼黄斑区可见硬性渗出",
    "recommendation": "refer",
    "recommendation_text": "",
    "follow_up_months": 3,
    "conclusion_codes_od": ["dr_moderate"],
    "diagnosis_codes_od": ["E11.3", "H36.0"],
    "conclusion_text_od": "黄斑区硬性渗出",
    "recommendation_od": "refer",
    "conclusion_codes_os": ["normal"],
    "diagnosis_codes_os": [],
    "recommendation_os": "routine",
}


class ReviewListDraftApi(generics.GenericAPIView):
    """GET: every version of a screening's review; POST: write or update the open draft."""

    queryset = ScreeningRecord.objects.none()  # names the path's model in the schema
    pagination_class = None  # one screening's short list: no cursor, a plain array
    permission_classes = [HasRequiredPermissions]
    required_permissions = {
        "GET": [*RECORD_READ, "screening.view_doctorreview"],
        "POST": REVIEW_WRITE,
    }
    serializer_class = ReviewOutputSerializer

    @extend_schema(
        operation_id="reviews_list",
        responses={200: ReviewOutputSerializer(many=True), **error_responses(401, 403, 404)},
    )
    def get(self, request, record_id: int):
        record = get_object_or_404(record_list(), pk=record_id)
        reviews = record.reviews.select_related("doctor").order_by("-version")
        audit_read(actor=request.user, obj=record, patient_ref=record.patient.patient_id)
        return Response(ReviewOutputSerializer(reviews, many=True).data)

    @extend_schema(
        operation_id="reviews_save_draft",
        request=ReviewInputSerializer,
        responses={
            200: ReviewOutputSerializer,
            201: ReviewOutputSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
        examples=[OpenApiExample("Draft", value=REVIEW_EXAMPLE, request_only=True)],
        description=(
            "Start the review (201) or change the open draft (200). Send the revision of the "
            "latest review you saw (`revision` or If-Match); a screening whose reviews changed "
            "since is answered 409 with the current review in `error.current`."
        ),
    )
    def post(self, request, record_id: int):
        record = get_object_or_404(record_list(), pk=record_id)
        data = ReviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _save_draft(
            request, record, data.validated_data, seen_revision(request, required=False)
        )


class ReviewAmendApi(generics.GenericAPIView):
    """POST: start (or update) an amendment of the signed review; a reason is required."""

    permission_classes = [HasRequiredPermissions]
    required_permissions = {"POST": REVIEW_WRITE}
    serializer_class = ReviewOutputSerializer

    @extend_schema(
        operation_id="reviews_amend",
        request=AmendInputSerializer,
        responses={
            200: ReviewOutputSerializer,
            201: ReviewOutputSerializer,
            **error_responses(400, 401, 403, 404, 409, 428),
        },
        examples=[
            OpenApiExample(
                "Amendment",
                value={**REVIEW_EXAMPLE, "amendment_reason": "OCT 复查后修正分级"},
                request_only=True,
            )
        ],
    )
    def post(self, request, record_id: int):
        record = get_object_or_404(record_list(), pk=record_id)
        data = AmendInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if record_current_review(record=record) is None:
            raise ValidationError(
                _("This screening has no signed review yet: save and sign a draft instead."),
                code="nothing_to_amend",
            )
        return _save_draft(
            request, record, data.validated_data, seen_revision(request, required=True)
        )


class ReviewSignApi(generics.GenericAPIView):
    """POST: sign a draft review; the screening becomes reviewed and its report is queued."""

    permission_classes = [HasRequiredPermissions]
    required_permissions = {"POST": [*RECORD_READ, "screening.sign_doctorreview"]}
    serializer_class = ReviewOutputSerializer

    @extend_schema(
        operation_id="reviews_sign",
        request=SignInputSerializer,
        responses={
            200: ReviewOutputSerializer,
            **error_responses(400, 401, 403, 404, 409, 428),
        },
        description=(
            "Sign the draft as you saw it: send its revision (`revision` or If-Match; 428 "
            "without). A draft changed since is not signed: 409 with the current review in "
            "`error.current`. Signing the same revision again answers 200 with the one "
            "signature."
        ),
    )
    def post(self, request, review_id: int):
        review = get_object_or_404(DoctorReview.objects.select_related("record"), pk=review_id)
        SignInputSerializer(data=request.data).is_valid(raise_exception=True)
        revision = seen_revision(request, required=True)
        with service_errors(current=_review_data):
            signed = review_sign(doctor=request.user, review=review, revision=revision)
        return _review_response(signed)


# --- assignment -----------------------------------------------------------------------------
class AssignInputSerializer(serializers.Serializer):
    doctor = serializers.IntegerField(
        allow_null=True, help_text="The doctor's user id; null puts it back on every worklist."
    )


class AssignOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    assigned_doctor = serializers.IntegerField(source="assigned_doctor_id", allow_null=True)


class RecordAssignApi(generics.GenericAPIView):
    """POST: put the screening on one doctor's worklist (doctors and administrators; audited)."""

    permission_classes = [HasRequiredPermissions]
    required_permissions = {"POST": RECORD_READ}
    serializer_class = AssignOutputSerializer

    @extend_schema(
        operation_id="records_assign",
        request=AssignInputSerializer,
        responses={200: AssignOutputSerializer, **error_responses(400, 401, 403, 404)},
        description="Reassigning is allowed until a doctor signs; a signed screening answers 400.",
    )
    def post(self, request, record_id: int):
        record = get_object_or_404(record_list(), pk=record_id)
        data = AssignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        doctor_id = data.validated_data["doctor"]
        doctor = None
        if doctor_id is not None:
            doctor = get_user_model().objects.filter(pk=doctor_id).first()
            if doctor is None:
                raise ValidationError({"doctor": [_("No such user.")]})
        with service_errors():
            record = record_assign(actor=request.user, record=record, doctor=doctor)
        return Response(AssignOutputSerializer(record).data)
