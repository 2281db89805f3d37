import calendar
import datetime as dt
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from core.conflicts import StaleVersion
from core.models import AuditEvent
from screening.models import DoctorReview, RecordStatus, ScreeningRecord
from screening.selectors import record_current_review
from screening.services import review_save_and_sign, review_save_draft, review_sign
from tests.conftest import REQUIRE_SERVICES
from tests.factories import ScreeningRecordFactory, UserFactory
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


def test_the_same_signature_asked_twice_is_one_signature(doctor, uploaded_record):
    review = draft(doctor, uploaded_record)
    first = review_sign(doctor=doctor, review=review)
    again = review_sign(doctor=doctor, review=review, revision=review.revision)
    assert (again.pk, again.signed_at, again.revision) == (first.pk, first.signed_at, 2)
    assert AuditEvent.objects.filter(action="sign").count() == 1


def test_a_signed_review_is_not_signed_again_by_another_doctor(doctor, uploaded_record):
    review = draft(doctor, uploaded_record)
    signed = review_sign(doctor=doctor, review=review)
    colleague = UserFactory(role="doctor")
    with pytest.raises(StaleVersion) as excinfo:
        review_sign(doctor=colleague, review=review, revision=review.revision)
    assert excinfo.value.current == signed
    assert DoctorReview.objects.get().doctor == doctor
    assert AuditEvent.objects.filter(action="sign").count() == 1


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


# --- clinical authority: the doctor role itself ----------------------------------------------
@pytest.mark.parametrize("persona", ["superuser", "administrator"])
def test_no_one_but_a_doctor_writes_or_signs(persona, doctor, uploaded_record):
    """A superuser holds every permission; that never stands in for the doctor role."""
    actor = (
        UserFactory(username="root", is_superuser=True, is_staff=True)
        if persona == "superuser"
        else UserFactory(role="administrator")
    )
    before = AuditEvent.objects.count()
    with pytest.raises(PermissionDenied) as excinfo:
        draft(actor, uploaded_record, conclusion_codes=["normal"], recommendation="routine")
    assert str(excinfo.value) == (
        "Only a doctor may write, sign or amend a review or approve a summary."
    )
    with pytest.raises(PermissionDenied):
        review_save_and_sign(
            doctor=actor,
            record=uploaded_record,
            revision=None,
            conclusion_codes=["normal"],
            recommendation="routine",
        )
    review = draft(doctor, uploaded_record)
    with pytest.raises(PermissionDenied):
        review_sign(doctor=actor, review=review)
    review.refresh_from_db()
    assert (review.signed_at, review.doctor) == (None, doctor)
    assert AuditEvent.objects.count() == before + 1  # the doctor's draft only


def test_an_administrator_who_is_also_a_doctor_may_sign(uploaded_record):
    both = UserFactory(username="admin-doctor", is_superuser=True, role="doctor")
    signed = review_sign(doctor=both, review=draft(both, uploaded_record))
    assert signed.doctor == both


# --- binding to what the doctor saw --------------------------------------------------------
def test_a_doctor_signs_only_the_draft_they_saw(doctor, uploaded_record):
    """A saved "cataract / refer"; B saved "normal / routine" over it; A's sign is refused."""
    colleague = UserFactory(username="doctor-b", role="doctor")
    seen = draft(doctor, uploaded_record, conclusion_codes=["cataract"], recommendation="refer")
    overwritten = review_save_draft(
        doctor=colleague,
        record=uploaded_record,
        revision=seen.revision,
        conclusion_codes=["normal"],
        recommendation="routine",
    )
    assert (seen.revision, overwritten.revision) == (1, 2)
    with pytest.raises(StaleVersion) as excinfo:
        review_sign(doctor=doctor, review=seen, revision=seen.revision)
    assert excinfo.value.code == "conflict"
    assert excinfo.value.current.conclusion_codes == ["normal"]
    assert "now version 1, revision 2, draft by doctor-b" in excinfo.value.messages[0]
    review = DoctorReview.objects.get()
    assert (review.signed_at, review.doctor, review.conclusion_codes) == (
        None,
        colleague,
        ["normal"],
    )
    assert ScreeningRecord.objects.get(pk=uploaded_record.pk).status == RecordStatus.ANALYSED
    assert not AuditEvent.objects.filter(action="sign").exists()


def test_a_draft_save_on_top_of_a_review_the_doctor_did_not_see_is_refused(doctor, uploaded_record):
    colleague = UserFactory(username="doctor-b", role="doctor")
    first = review_save_draft(
        doctor=colleague,
        record=uploaded_record,
        revision=None,
        conclusion_codes=["normal"],
        recommendation="routine",
    )
    for seen in (None, first.revision + 1):
        with pytest.raises(StaleVersion) as excinfo:
            review_save_draft(
                doctor=doctor,
                record=uploaded_record,
                revision=seen,
                conclusion_codes=["cataract"],
                recommendation="refer",
            )
        assert excinfo.value.current == first
    assert list(DoctorReview.objects.values_list("conclusion_codes", "revision")) == [
        (["normal"], 1)
    ]


def test_an_amendment_binds_to_the_signed_review_and_its_draft_to_what_was_seen(
    doctor, uploaded_record
):
    colleague = UserFactory(username="doctor-b", role="doctor")
    signed = review_sign(doctor=doctor, review=draft(doctor, uploaded_record))
    amendment = {"conclusion_codes": ["dr_severe"], "recommendation": "urgent"}
    mine = review_save_draft(
        doctor=doctor,
        record=uploaded_record,
        revision=signed.revision,
        amendment_reason="复核",
        **amendment,
    )
    assert (mine.version, mine.revision, mine.supersedes) == (2, 3, signed)
    # B, who saw only the signed version, cannot start another amendment over A's.
    with pytest.raises(StaleVersion):
        review_save_draft(
            doctor=colleague,
            record=uploaded_record,
            revision=signed.revision,
            amendment_reason="另一理由",
            conclusion_codes=["normal"],
            recommendation="routine",
        )
    review_save_draft(
        doctor=colleague,
        record=uploaded_record,
        revision=mine.revision,
        amendment_reason="另一理由",
        conclusion_codes=["normal"],
        recommendation="routine",
    )
    with pytest.raises(StaleVersion):
        review_sign(doctor=doctor, review=mine, revision=mine.revision)
    assert record_current_review(record=uploaded_record) == signed


def test_saving_what_is_already_there_changes_nothing(doctor, uploaded_record):
    review = draft(doctor, uploaded_record)
    again = draft(doctor, uploaded_record)
    assert (again.pk, again.revision) == (review.pk, 1)
    assert AuditEvent.objects.filter(object_type="screening.doctorreview").count() == 1


def test_save_and_sign_posted_twice_is_one_signature_and_no_amendment(doctor, uploaded_record):
    """The web form's double click: the second post is the same signature, answered as such."""
    fields = {"conclusion_codes": ["cataract"], "recommendation": "refer", "follow_up_months": 3}
    first = review_save_and_sign(doctor=doctor, record=uploaded_record, revision=None, **fields)
    again = review_save_and_sign(doctor=doctor, record=uploaded_record, revision=None, **fields)
    assert again == first
    assert DoctorReview.objects.count() == 1
    assert AuditEvent.objects.filter(action="sign").count() == 1
    # The same post with other content is not the same signature: it is an amendment.
    with pytest.raises(ValidationError) as excinfo:
        review_save_and_sign(
            doctor=doctor,
            record=uploaded_record,
            revision=first.revision,
            **{**fields, "recommendation": "urgent"},
        )
    assert "amendment_reason" in excinfo.value.message_dict


# --- under real concurrency (PostgreSQL) ---------------------------------------------------
def _race(*calls) -> list[object]:
    """Run the calls at the same moment, each on its own connection; their results or errors."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int, call) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except BaseException as exc:  # collected and asserted by the test
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        if REQUIRE_SERVICES:
            pytest.fail("this test must run on PostgreSQL in CI")
        pytest.skip("row locking is only meaningful on PostgreSQL")


@pytest.mark.django_db(transaction=True)
def test_simultaneous_first_drafts_make_one_review_and_one_conflict(transactional_roles):
    _postgresql_only()
    first, second = (UserFactory(username=f"doctor-{n}", role="doctor") for n in "ab")
    record = ScreeningRecordFactory(status=RecordStatus.ANALYSED)

    def save(doctor, code):
        return lambda: review_save_draft(
            doctor=doctor,
            record=record,
            revision=None,
            conclusion_codes=[code],
            recommendation="refer",
        )

    results = _race(save(first, "cataract"), save(second, "glaucoma_suspect"))
    saved = [r for r in results if isinstance(r, DoctorReview)]
    refused = [r for r in results if isinstance(r, StaleVersion)]
    assert (len(saved), len(refused)) == (1, 1), results
    assert refused[0].current == saved[0]
    assert list(DoctorReview.objects.values_list("pk", "revision")) == [(saved[0].pk, 1)]


@pytest.mark.django_db(transaction=True)
def test_a_signature_racing_an_overwrite_signs_only_what_was_seen(transactional_roles):
    _postgresql_only()
    signer, other = (UserFactory(username=f"doctor-{n}", role="doctor") for n in "ab")
    record = ScreeningRecordFactory(status=RecordStatus.ANALYSED)
    seen = review_save_draft(
        doctor=signer,
        record=record,
        revision=None,
        conclusion_codes=["cataract"],
        recommendation="refer",
    )
    results = _race(
        lambda: review_sign(doctor=signer, review=seen, revision=seen.revision),
        lambda: review_save_draft(
            doctor=other,
            record=record,
            revision=seen.revision,
            conclusion_codes=["normal"],
            recommendation="routine",
        ),
    )
    assert sum(isinstance(r, StaleVersion) for r in results) == 1, results
    review = DoctorReview.objects.get()
    if review.is_signed:  # the signature came first: the overwrite was refused
        assert (review.doctor, review.conclusion_codes) == (signer, ["cataract"])
    else:  # the overwrite came first: nothing was signed
        assert (review.doctor, review.conclusion_codes) == (other, ["normal"])
        assert not AuditEvent.objects.filter(action="sign").exists()
