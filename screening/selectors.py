"""Reads of screening records, photos and reviews."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from core.roles import Role
from screening.models import DoctorReview, ScreeningRecord


def record_list(*, patient=None, status: str | None = None) -> QuerySet[ScreeningRecord]:
    records = ScreeningRecord.objects.select_related("patient", "operator")
    if patient is not None:
        records = records.filter(patient=patient)
    if status:
        records = records.filter(status=status)
    return records


def record_current_review(*, record: ScreeningRecord) -> DoctorReview | None:
    """The latest signed review: the doctor's authoritative conclusion for this visit."""
    return record.reviews.filter(signed_at__isnull=False).order_by("-version").first()


def record_open_draft(*, record: ScreeningRecord) -> DoctorReview | None:
    return record.reviews.filter(signed_at__isnull=True).first()


def staff_with_role(*, role: Role | str) -> QuerySet:
    """Active members of a role's group, by name: the doctors to assign, the technicians to filter."""
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name=str(role))
        .distinct()
        .order_by("first_name", "last_name", "username")
    )
