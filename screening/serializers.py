"""Output serializers of screening shared by several API views (inputs live with their view)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api import ChoiceLabelField
from core.profiles import va_notation_for
from patients.serializers import PatientBriefSerializer
from screening.acuity import DECIMAL, FIVE_POINT, format_acuity
from screening.icd10 import code_name
from screening.models import (
    AcuityKind,
    DoctorReview,
    FundusImage,
    Recommendation,
    RecordStatus,
    ScreeningRecord,
    dr_grade_number,
)


class AcuityValueSerializer(serializers.Serializer):
    logmar = serializers.CharField(
        help_text="Stored logMAR; for CF/HM/LP/NLP the conventional 1.9/2.3/2.7/3.0"
    )
    decimal = serializers.CharField(allow_null=True, help_text="e.g. 0.8; null for CF/HM/LP/NLP")
    five_point = serializers.CharField(
        allow_null=True, help_text="五分记录 (GB/T 11533), e.g. 4.9; null for CF/HM/LP/NLP"
    )
    category = serializers.CharField(help_text="'' on the chart, else CF, HM, LP or NLP")
    cf_distance_cm = serializers.IntegerField(allow_null=True)
    display = serializers.CharField(help_text="As written in `notation` (指数/30cm for CF)")


class CorrectedAcuitySerializer(AcuityValueSerializer):
    correction = serializers.CharField(help_text="glasses, contacts or '' (not recorded)")


class EyeAcuitySerializer(serializers.Serializer):
    uncorrected = AcuityValueSerializer(allow_null=True)
    corrected = CorrectedAcuitySerializer(allow_null=True)
    pinhole = AcuityValueSerializer(allow_null=True)


class AcuityOutputSerializer(serializers.Serializer):
    notation = serializers.ChoiceField(
        choices=[FIVE_POINT, DECIMAL], help_text="The notation of `display`"
    )
    od = EyeAcuitySerializer()
    os = EyeAcuitySerializer()


def acuity_data(record: ScreeningRecord, notation: str) -> dict:
    """Every acuity of a record in logMAR, decimal and 5-point, and as written in `notation`."""

    def one(kind: str, eye: str) -> dict | None:
        value = record.acuity_of(kind, eye)
        if value is None:
            return None
        on_chart = not value.category
        data = {
            "logmar": f"{value.logmar:.3f}",
            "decimal": format_acuity(value, DECIMAL) if on_chart else None,
            "five_point": format_acuity(value, FIVE_POINT) if on_chart else None,
            "category": value.category,
            "cf_distance_cm": value.cf_distance_cm,
            "display": record.acuity_text(kind, eye, notation),
        }
        if kind == AcuityKind.CORRECTED:
            data["correction"] = getattr(record, f"cva_correction_{eye}")
        return data

    return {
        "notation": notation,
        **{
            eye: {
                "uncorrected": one(AcuityKind.UNCORRECTED, eye),
                "corrected": one(AcuityKind.CORRECTED, eye),
                "pinhole": one(AcuityKind.PINHOLE, eye),
            }
            for eye in ("od", "os")
        },
    }


class AcuityMixin(serializers.Serializer):
    """`acuity`: displayed in the requesting staff user's notation (My settings), else in the
    clinic's VA_NOTATION; `clinic_notation = True` always uses the clinic's (patients)."""

    clinic_notation = False
    acuity = serializers.SerializerMethodField()

    @extend_schema_field(AcuityOutputSerializer)
    def get_acuity(self, record: ScreeningRecord) -> dict:
        request = self.context.get("request")
        user = None if self.clinic_notation else getattr(request, "user", None)
        return acuity_data(record, va_notation_for(user))


class RecordOutputSerializer(AcuityMixin, serializers.ModelSerializer):
    """A screening visit: measurements (decimal VA with logMAR, IOP with its flag) and status."""

    patient = PatientBriefSerializer(read_only=True)
    operator = serializers.CharField(source="operator.get_username", read_only=True)
    status_label = ChoiceLabelField(RecordStatus.choices, source="status")
    iop_od_flag = serializers.CharField(read_only=True)
    iop_os_flag = serializers.CharField(read_only=True)

    class Meta:
        model = ScreeningRecord
        fields = (
            "id",
            "patient",
            "screened_at",
            "operator",
            "va_od",
            "va_os",
            "logmar_od",
            "logmar_os",
            "acuity",
            "iop_od",
            "iop_os",
            "iop_od_flag",
            "iop_os_flag",
            "notes",
            "status",
            "status_label",
            "created_at",
            "updated_at",
        )


class ImageOutputSerializer(serializers.ModelSerializer):
    uploaded_by = serializers.CharField(source="uploaded_by.get_username", read_only=True)
    file_url = serializers.SerializerMethodField(
        help_text="The photo re-encoded from its pixels, without metadata (staff); with "
        "?original=1 the file as uploaded (administrators)."
    )
    thumbnail_url = serializers.SerializerMethodField(
        help_text="A JPEG preview, at most 480 px on its longer side (staff)."
    )

    class Meta:
        model = FundusImage
        fields = (
            "id",
            "record",
            "eye",
            "width",
            "height",
            "format",
            "mode",
            "size_bytes",
            "sha256",
            "original_name",
            "uploaded_by",
            "uploaded_at",
            "file_url",
            "thumbnail_url",
        )

    def get_file_url(self, image: FundusImage) -> str:
        return reverse("api-v1:image-file", args=[image.pk])

    def get_thumbnail_url(self, image: FundusImage) -> str:
        return f"{reverse('api-v1:image-file', args=[image.pk])}?size=thumb"


@extend_schema_field(
    {
        "oneOf": [{"type": "integer", "minimum": 0, "maximum": 4}, {"enum": ["ungradable"]}],
        "nullable": True,
        "description": 'ICDR grade 0–4 (R0–R4), "ungradable", or null when not graded.',
    }
)
class DrGradeField(serializers.Field):
    """The doctor's ICDR grade of one eye: 0–4 or "ungradable" out; in, also "R2" or "2".
    Input is passed to the service, which says clearly what it refuses."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        number = dr_grade_number(value)
        return number if number is not None else (value or None)


@extend_schema_field({"type": "boolean", "nullable": True})
class PassThroughField(serializers.Field):
    """A value the service validates (its message is the one the caller gets)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


DIABETIC_REVIEW_FIELDS = (
    "dr_grade_od",
    "dr_grade_od_label",
    "dme_od",
    "dr_grade_os",
    "dr_grade_os_label",
    "dme_os",
)


class DiabeticReviewFieldsMixin(serializers.Serializer):
    """The doctor's DR grade (ICDR, with its words) and macular oedema per eye."""

    dr_grade_od = DrGradeField(read_only=True)
    dr_grade_os = DrGradeField(read_only=True)
    dr_grade_od_label = serializers.CharField(source="get_dr_grade_od_display", read_only=True)
    dr_grade_os_label = serializers.CharField(source="get_dr_grade_os_display", read_only=True)


class DiagnosisSerializer(serializers.Serializer):
    """One ICD-10 code with its Chinese and English names."""

    code = serializers.CharField(read_only=True)
    name_zh = serializers.SerializerMethodField()
    name_en = serializers.SerializerMethodField()

    def to_representation(self, instance):
        return super().to_representation({"code": instance})

    def get_name_zh(self, data: dict) -> str:
        return code_name(data["code"], "zh-hans")

    def get_name_en(self, data: dict) -> str:
        return code_name(data["code"], "en")


class EyeConclusionSerializer(serializers.Serializer):
    """One eye's conclusion: pick-list codes with labels, ICD-10 diagnoses, text, recommendation."""

    eye = serializers.CharField(read_only=True)
    eye_label = serializers.CharField(source="label", read_only=True)
    conclusion_codes = serializers.ListField(child=serializers.CharField(), read_only=True)
    conclusion_labels = serializers.ListField(child=serializers.CharField(), read_only=True)
    diagnoses = DiagnosisSerializer(source="diagnosis_codes", many=True, read_only=True)
    conclusion_text = serializers.CharField(source="text", read_only=True)
    recommendation = serializers.CharField(read_only=True)
    recommendation_label = serializers.CharField(read_only=True)


class EyeConclusionsFieldMixin(serializers.Serializer):
    """``eyes``: the per-eye conclusions the doctor recorded (eyes with nothing left out)."""

    eyes = EyeConclusionSerializer(source="recorded_eye_conclusions", many=True, read_only=True)


EYE_REVIEW_OUTPUT_FIELDS = (
    "conclusion_codes_od",
    "diagnosis_codes_od",
    "conclusion_text_od",
    "recommendation_od",
    "conclusion_codes_os",
    "diagnosis_codes_os",
    "conclusion_text_os",
    "recommendation_os",
    "eyes",
)


class ReviewOutputSerializer(
    EyeConclusionsFieldMixin, DiabeticReviewFieldsMixin, serializers.ModelSerializer
):
    doctor = serializers.CharField(source="doctor.get_username", read_only=True)
    conclusion_labels = serializers.ListField(child=serializers.CharField(), read_only=True)
    recommendation_label = serializers.SerializerMethodField()
    is_signed = serializers.BooleanField(read_only=True)

    class Meta:
        model = DoctorReview
        fields = (
            "id",
            "record",
            "version",
            "revision",
            "doctor",
            "conclusion_codes",
            "conclusion_labels",
            "conclusion_text",
            "recommendation",
            "recommendation_label",
            "recommendation_text",
            "follow_up_months",
            "follow_up_date",
            *DIABETIC_REVIEW_FIELDS,
            *EYE_REVIEW_OUTPUT_FIELDS,
            "amendment_reason",
            "supersedes",
            "is_signed",
            "signed_at",
            "created_at",
            "updated_at",
        )

    def get_recommendation_label(self, review: DoctorReview) -> str:
        return str(dict(Recommendation.choices).get(review.recommendation, review.recommendation))


class RecordDetailOutputSerializer(RecordOutputSerializer):
    """A visit with its photos and its reviews (newest version first)."""

    images = ImageOutputSerializer(many=True, read_only=True)
    reviews = ReviewOutputSerializer(many=True, read_only=True)

    class Meta(RecordOutputSerializer.Meta):
        fields = (*RecordOutputSerializer.Meta.fields, "images", "reviews")
