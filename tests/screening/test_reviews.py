import calendar
import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from clinic.models import AuditEvent
from screening.models import DoctorReview, RecordStatus, ScreeningRecord
from screening.selectors import record_current_review
from screening.services import review_save_draft, review_sign
from tests.screening import task_probe


@pytest.fixture
def uploaded_record(record):
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    record.refresh_from_db()
    return record


def draft(doctor, record, **overrides):
    fields = {"conclusion_codes": ["dr_moderate"], "recommendation": "refer", "follow_up_months": 3}
    return review_save_draft(doctor=doctor, record=record, **{**fields, **overrides})


def test_a_doctor_signs_a_review_and_the_record_becomes_reviewed(doctor, uploaded_record):
    review = draft(doctor, uploaded_record, conclusion_text="黄斑区可见硬性渗出")
    signed = review_sign(doctor=doctor, review=review)
    assert signed.signed_at is not None
    assert signed.follow_up_date == _months_later(timezone.localdate(signed.signed_at), 3)
    assert ScreeningRecord.objects.get(pk=uploaded_record.pk).status == RecordStatus.REVIEWED
    assert record_current_review(record=uploaded_record) == signed
    assert list(
        AuditEvent.objects.filter(object_type="screening.doctorreview").values_list(
            "action", flat=True
        )
    ) == ["sign", "create"]


def _months_later(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def test_signing_queues_the_configured_report_task(
    doctor, uploaded_record, settings, django_capture_on_commit_callbacks
):
    settings.REVIEW_SIGNED_TASK = "tests.screening.task_probe.record_call"
    task_probe.CALLS.clear()
    with django_capture_on_commit_callbacks(execute=True):
        review_sign(doctor=doctor, review=draft(doctor, uploaded_record))
    assert task_probe.CALLS == [("called", (uploaded_record.pk,))]


def test_a_draft_can_be_edited_until_it_is_signed(doctor, uploaded_record):
    review = draft(doctor, uploaded_record)
    again = draft(
        doctor, uploaded_record, conclusion_codes=["glaucoma_suspect"], recommendation="follow_up"
    )
    assert again.pk == review.pk
    assert (again.version, again.conclusion_codes) == (1, ["glaucoma_suspect"])
    assert DoctorReview.objects.count() == 1


def test_a_signed_review_is_never_overwritten_an_amendment_is_a_new_version(
    doctor, uploaded_record
):
    first = review_sign(doctor=doctor, review=draft(doctor, uploaded_record))
    with pytest.raises(ValidationError) as excinfo:
        draft(doctor, uploaded_record, conclusion_codes=["normal"], recommendation="routine")
    assert "give the reason for the amendment" in excinfo.value.message_dict["amendment_reason"][0]

    amendment = draft(
        doctor,
        uploaded_record,
        conclusion_codes=["dr_severe"],
        recommendation="urgent",
        amendment_reason="复核后分级上调",
    )
    assert (amendment.version, amendment.supersedes_id, amendment.signed_at) == (2, first.pk, None)
    first.refresh_from_db()
    assert (first.conclusion_codes, first.recommendation) == (["dr_moderate"], "refer")
    # The signed version stays the record's conclusion until the amendment is signed.
    assert record_current_review(record=uploaded_record) == first
    review_sign(doctor=doctor, review=amendment)
    assert record_current_review(record=uploaded_record) == amendment


def test_signing_twice_is_refused(doctor, uploaded_record):
    review = review_sign(doctor=doctor, review=draft(doctor, uploaded_record))
    with pytest.raises(ValidationError) as excinfo:
        review_sign(doctor=doctor, review=review)
    assert excinfo.value.code == "already_signed"


def test_a_technician_can_neither_write_nor_sign_a_review(technician, doctor, uploaded_record):
    with pytest.raises(PermissionDenied):
        draft(technician, uploaded_record)
    review = draft(doctor, uploaded_record)
    with pytest.raises(PermissionDenied):
        review_sign(doctor=technician, review=review)
    review.refresh_from_db()
    assert review.signed_at is None
    assert ScreeningRecord.objects.get(pk=uploaded_record.pk).status == RecordStatus.ANALYSED


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"conclusion_codes": []}, "conclusion_codes", "Choose at least one conclusion."),
        ({"conclusion_codes": ["normal", "cataract"]}, "conclusion_codes", "cannot be combined"),
        ({"conclusion_codes": ["flu"]}, "conclusion_codes", "Unknown conclusion code(s): flu."),
        ({"recommendation": "pray"}, "recommendation", "Choose a recommendation."),
        ({"follow_up_months": 99}, "follow_up_months", "between 1 and 36 months"),
        ({"follow_up_date": dt.date(2000, 1, 1)}, "follow_up_date", "cannot be in the past"),
    ],
)
def test_invalid_reviews_are_refused_per_field(doctor, uploaded_record, overrides, field, message):
    with pytest.raises(ValidationError) as excinfo:
        draft(doctor, uploaded_record, **overrides)
    assert message in excinfo.value.message_dict[field][0]
    assert DoctorReview.objects.count() == 0


def test_no_review_before_any_photo(doctor, record):
    with pytest.raises(ValidationError) as excinfo:
        draft(doctor, record)
    assert excinfo.value.code == "no_photos"


def test_an_explicit_follow_up_date_is_kept(doctor, uploaded_record):
    day = timezone.localdate() + dt.timedelta(days=10)
    signed = review_sign(
        doctor=doctor,
        review=draft(doctor, uploaded_record, follow_up_months=None, follow_up_date=day),
    )
    assert signed.follow_up_date == day
