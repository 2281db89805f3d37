"""Output serializers of screening shared by several API views (inputs live with their view)."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from core.api import ChoiceLabelField
from patients.serializers import PatientBriefSerializer
from screening.models import (
    DoctorReview,
    FundusImage,
    Recommendation,
    RecordStatus,
    ScreeningRecord,
)


class RecordOutputSerializer(serializers.ModelSerializer):
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


class ReviewOutputSerializer(serializers.ModelSerializer):
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
