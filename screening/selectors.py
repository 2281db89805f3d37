"""Reads of screening records, photos and reviews."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import (
    Case,
    CharField,
    DateField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import timezone

from core.roles import Role
from screening.models import (
    RECALL_OPEN_STATUSES,
    DoctorReview,
    FollowUpContact,
    RecallStatus,
    ScreeningRecord,
)


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


def current_reviews(*, records=None) -> dict[int, DoctorReview]:
    """Per screening (of `records`: a queryset or ids; None: all), its current review, the
    latest signed version, keyed by record id, with the record and patient loaded."""
    reviews = DoctorReview.objects.filter(signed_at__isnull=False).select_related("record__patient")
    if records is not None:
        reviews = reviews.filter(record__in=records)
    latest: dict[int, DoctorReview] = {}
    for review in reviews.order_by("record_id", "-version"):
        latest.setdefault(review.record_id, review)
    return latest


def record_open_draft(*, record: ScreeningRecord) -> DoctorReview | None:
    return record.reviews.filter(signed_at__isnull=True).first()


# --- follow-up recall -----------------------------------------------------------------------
def _recall_reviews() -> QuerySet[DoctorReview]:
    """Each visit's current conclusion (its latest signed version) that set a follow-up date,
    annotated with the recall's state:

    - ``came_back_at``: the patient's next visit after this one (any later screening);
    - ``last_status``, ``last_new_date``, ``last_contact_at``, ``last_note``: staff's newest
      mark on this review (a mark on an amended version does not carry over);
    - ``recall_status``: came back when a later visit exists, else the newest mark, else due;
    - ``recall_date``: the rescheduled date when the newest mark is a reschedule, else the
      doctor's follow-up date.
    """
    newer_signed = DoctorReview.objects.filter(
        record=OuterRef("record"), signed_at__isnull=False, version__gt=OuterRef("version")
    )
    later_visit = ScreeningRecord.objects.filter(
        patient=OuterRef("record__patient"), screened_at__gt=OuterRef("record__screened_at")
    ).order_by("screened_at", "id")
    newest_mark = FollowUpContact.objects.filter(review=OuterRef("pk")).order_by(
        "-created_at", "-id"
    )
    return (
        DoctorReview.objects.filter(signed_at__isnull=False, follow_up_date__isnull=False)
        .exclude(Exists(newer_signed))
        .annotate(
            came_back_at=Subquery(later_visit.values("screened_at")[:1]),
            last_status=Subquery(newest_mark.values("status")[:1]),
            last_new_date=Subquery(newest_mark.values("new_date")[:1]),
            last_contact_at=Subquery(newest_mark.values("created_at")[:1]),
            last_note=Subquery(newest_mark.values("note")[:1]),
        )
        .annotate(
            recall_status=Case(
                When(came_back_at__isnull=False, then=Value(RecallStatus.CAME_BACK.value)),
                When(last_status__isnull=False, then=F("last_status")),
                default=Value(RecallStatus.DUE.value),
                output_field=CharField(),
            ),
            recall_date=Case(
                When(
                    came_back_at__isnull=True,
                    last_status=RecallStatus.RESCHEDULED.value,
                    then=F("last_new_date"),
                ),
                default=F("follow_up_date"),
                output_field=DateField(),
            ),
        )
        .select_related("record__patient", "doctor")
    )


def _json_list_has(field: str, code: str) -> Q:
    # The list's JSON text holds each code in double quotes; matching the quoted code (or its
    # quoted start, for an ICD-10 category such as E11) is the same SQL on SQLite and PostgreSQL.
    return Q(**{f"{field}__icontains": f'"{code}'})


def recall_list(
    *,
    due_by: dt.date | None = None,
    due_from: dt.date | None = None,
    status: str = "",
    conclusion: str = "",
    icd10: str = "",
    dr_grade: str = "",
) -> QuerySet[DoctorReview]:
    """Follow-ups due or overdue on `due_by` (default today), soonest first: the doctor's date,
    or the date staff rescheduled to. Without `status` only open recalls (due, contacted,
    rescheduled) are listed. `conclusion` is a ConclusionCode on either eye or the visit,
    `icd10` a code or its start ("E11" matches "E11.3") on either eye, `dr_grade` a DrGrade."""
    reviews = _recall_reviews().filter(recall_date__lte=due_by or timezone.localdate())
    if due_from is not None:
        reviews = reviews.filter(recall_date__gte=due_from)
    if status:
        reviews = reviews.filter(recall_status=status)
    else:
        reviews = reviews.filter(recall_status__in=[str(value) for value in RECALL_OPEN_STATUSES])
    if conclusion:
        reviews = reviews.filter(
            _json_list_has("conclusion_codes", f'{conclusion}"')
            | _json_list_has("conclusion_codes_od", f'{conclusion}"')
            | _json_list_has("conclusion_codes_os", f'{conclusion}"')
        )
    if icd10:
        code = icd10.strip().upper()
        reviews = reviews.filter(
            _json_list_has("diagnosis_codes_od", code) | _json_list_has("diagnosis_codes_os", code)
        )
    if dr_grade:
        reviews = reviews.filter(Q(dr_grade_od=dr_grade) | Q(dr_grade_os=dr_grade))
    return reviews.order_by("recall_date", "record__patient__patient_id", "pk")


def recall_get(*, record_id: int) -> DoctorReview:
    """The recall of one visit (DoesNotExist when its conclusion set no follow-up date)."""
    return _recall_reviews().get(record_id=record_id)


@dataclass(frozen=True)
class RecallState:
    """What the patient is told about a follow-up: the doctor's date, a new one, the state."""

    status: str
    due_date: dt.date
    rescheduled_date: dt.date | None

    @property
    def status_label(self) -> str:
        return str(RecallStatus(self.status).label)


def recall_state(*, review: DoctorReview) -> RecallState | None:
    """The recall state of a signed review with a follow-up date; None for any other review."""
    recall = _recall_reviews().filter(pk=review.pk).first()
    if recall is None:
        return None
    rescheduled = recall.last_new_date if recall.recall_status == RecallStatus.RESCHEDULED else None
    return RecallState(
        status=recall.recall_status, due_date=recall.follow_up_date, rescheduled_date=rescheduled
    )


def recall_contacts(*, review: DoctorReview) -> QuerySet[FollowUpContact]:
    """The marks on this visit's recall, every version of its conclusion, newest first."""
    return FollowUpContact.objects.filter(record_id=review.record_id).select_related(
        "created_by", "review"
    )


def staff_with_role(*, role: Role | str) -> QuerySet:
    """Active members of a role's group, by name: the doctors to assign, the technicians to filter."""
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name=str(role))
        .distinct()
        .order_by("first_name", "last_name", "username")
    )
