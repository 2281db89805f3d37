"""Follow-up recall (issue #15): which follow-ups are due, and staff's marks on them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from core.models import AuditEvent
from screening.models import DoctorReview, FollowUpContact, RecallStatus
from screening.selectors import recall_list, recall_state
from screening.services import follow_up_mark
from tests.factories import PatientFactory, ScreeningRecordFactory

TODAY = dt.date(2027, 3, 10)


def day(offset: int) -> dt.date:
    return TODAY + dt.timedelta(days=offset)


def at(date: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(date, dt.time(9, 30)))


def signed(record, doctor, *, follow_up_date, version=1, supersedes=None, **fields):
    return DoctorReview.objects.create(
        record=record,
        version=version,
        doctor=doctor,
        conclusion_codes=fields.pop("conclusion_codes", ["dr_moderate"]),
        recommendation=fields.pop("recommendation", "follow_up"),
        follow_up_date=follow_up_date,
        signed_at=at(record.screened_at.date()),
        supersedes=supersedes,
        **fields,
    )


def visit(patient, technician, screened_on: dt.date):
    return ScreeningRecordFactory(patient=patient, operator=technician, screened_at=at(screened_on))


@pytest.fixture(autouse=True)
def frozen_today(monkeypatch):
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: TODAY)


@pytest.fixture
def clinic(db, doctor, technician):
    """Four patients seen last autumn: overdue, due today, due next month, seen again since."""
    overdue = visit(PatientFactory(name="张晓宇"), technician, day(-120))
    today = visit(PatientFactory(name="王芳"), technician, day(-90))
    later = visit(PatientFactory(name="李雷"), technician, day(-60))
    returned_patient = PatientFactory(name="赵敏")
    returned = visit(returned_patient, technician, day(-100))
    visit(returned_patient, technician, day(-5))
    return {
        "overdue": signed(
            overdue,
            doctor,
            follow_up_date=day(-10),
            conclusion_codes_od=["dr_moderate"],
            diagnosis_codes_od=["E11.3"],
            dr_grade_od="2",
        ),
        "today": signed(
            today,
            doctor,
            follow_up_date=TODAY,
            conclusion_codes=["glaucoma_suspect"],
            conclusion_codes_os=["glaucoma_suspect"],
            diagnosis_codes_os=["H40.0"],
        ),
        "later": signed(later, doctor, follow_up_date=day(30)),
        "returned": signed(returned, doctor, follow_up_date=day(-20)),
    }


def names(reviews) -> list[str]:
    return [review.record.patient.name for review in reviews]


def test_the_list_holds_the_due_and_overdue_follow_ups_soonest_first(clinic):
    reviews = list(recall_list())
    assert names(reviews) == ["张晓宇", "王芳"]
    assert [review.recall_status for review in reviews] == ["due", "due"]
    assert [review.recall_date for review in reviews] == [day(-10), TODAY]


def test_a_follow_up_appears_on_the_list_when_it_falls_due(clinic):
    assert names(recall_list(due_by=day(29))) == ["张晓宇", "王芳"]
    assert names(recall_list(due_by=day(30))) == ["张晓宇", "王芳", "李雷"]


def test_a_later_visit_counts_as_came_back(clinic):
    came_back = list(recall_list(status=RecallStatus.CAME_BACK))
    assert names(came_back) == ["赵敏"]
    assert came_back[0].came_back_at == at(day(-5))


def test_an_amended_conclusion_replaces_the_follow_up_of_its_visit(clinic, doctor):
    first = clinic["today"]
    signed(
        first.record,
        doctor,
        follow_up_date=day(60),
        version=2,
        supersedes=first,
        amendment_reason="IOP normal on re-measurement",
    )
    assert names(recall_list()) == ["张晓宇"]
    assert names(recall_list(due_by=day(60))) == ["张晓宇", "李雷", "王芳"]


def test_an_unsigned_amendment_changes_nothing_yet(clinic, doctor):
    first = clinic["today"]
    DoctorReview.objects.create(
        record=first.record,
        version=2,
        doctor=doctor,
        recommendation="routine",
        supersedes=first,
        follow_up_date=day(300),
    )
    assert names(recall_list()) == ["张晓宇", "王芳"]


def test_filters_by_condition_icd10_grade_and_date_range(clinic):
    assert names(recall_list(conclusion="glaucoma_suspect")) == ["王芳"]
    assert names(recall_list(conclusion="dr_moderate")) == ["张晓宇"]
    assert names(recall_list(conclusion="dr_mild")) == []
    assert names(recall_list(icd10="e11")) == ["张晓宇"]
    assert names(recall_list(icd10="H40.0")) == ["王芳"]
    assert names(recall_list(icd10="H40.1")) == []
    assert names(recall_list(dr_grade="2")) == ["张晓宇"]
    assert names(recall_list(due_from=day(-5))) == ["王芳"]


def test_staff_marks_are_the_recall_state_and_history_is_kept(clinic, technician):
    review = clinic["overdue"]
    follow_up_mark(actor=technician, review=review, status="contacted", note="无人接听")
    assert names(recall_list(status="contacted")) == ["张晓宇"]
    follow_up_mark(actor=technician, review=review, status="rescheduled", new_date=day(14))
    assert names(recall_list()) == ["王芳"]
    rescheduled = recall_list(due_by=day(14), status="rescheduled").get()
    assert rescheduled.recall_date == day(14)
    assert recall_state(review=review) == recall_state(review=rescheduled)
    state = recall_state(review=review)
    assert (state.status, state.due_date, state.rescheduled_date) == (
        "rescheduled",
        day(-10),
        day(14),
    )
    follow_up_mark(actor=technician, review=review, status="declined")
    assert names(recall_list(status="declined")) == ["张晓宇"]
    assert list(FollowUpContact.objects.filter(review=review).values_list("status", flat=True)) == [
        "declined",
        "rescheduled",
        "contacted",
    ]


def test_a_mark_is_audited(clinic, technician):
    review = clinic["overdue"]
    contact = follow_up_mark(
        actor=technician, review=review, status="rescheduled", new_date=day(7), note=" 下周二 "
    )
    event = AuditEvent.objects.get(object_type="screening.followupcontact")
    assert (event.action, event.actor, event.object_id) == ("create", technician, str(contact.pk))
    assert event.patient_ref == review.record.patient.patient_id
    assert event.changes == {
        "status": [None, "rescheduled"],
        "new_date": [None, "2027-03-17"],
        "note": [None, "下周二"],
    }


def test_a_mark_on_an_amended_conclusion_starts_afresh(clinic, technician, doctor):
    first = clinic["overdue"]
    follow_up_mark(actor=technician, review=first, status="declined")
    signed(first.record, doctor, follow_up_date=day(-1), version=2, supersedes=first)
    assert [(r.record_id, r.recall_status) for r in recall_list()] == [
        (first.record_id, "due"),
        (clinic["today"].record_id, "due"),
    ]
    with pytest.raises(ValidationError):
        follow_up_mark(actor=technician, review=first, status="contacted")
    assert FollowUpContact.objects.count() == 1


@pytest.mark.parametrize(
    ("status", "new_date", "field"),
    [
        ("due", None, "status"),
        ("lost", None, "status"),
        ("rescheduled", None, "new_date"),
        ("rescheduled", day(-1), "new_date"),
        ("contacted", day(3), "new_date"),
    ],
)
def test_a_bad_mark_is_refused_and_nothing_changes(clinic, technician, status, new_date, field):
    with pytest.raises(ValidationError) as caught:
        follow_up_mark(actor=technician, review=clinic["overdue"], status=status, new_date=new_date)
    assert list(caught.value.error_dict) == [field]
    assert FollowUpContact.objects.count() == 0
    assert AuditEvent.objects.filter(object_type="screening.followupcontact").count() == 0


def test_a_follow_up_without_a_date_cannot_be_marked(db, doctor, technician):
    review = signed(visit(PatientFactory(), technician, day(-3)), doctor, follow_up_date=None)
    with pytest.raises(ValidationError):
        follow_up_mark(actor=technician, review=review, status="contacted")
    assert FollowUpContact.objects.count() == 0


def test_a_patient_account_may_not_mark(clinic, patient_user):
    with pytest.raises(PermissionDenied):
        follow_up_mark(actor=patient_user, review=clinic["overdue"], status="came_back")
    assert FollowUpContact.objects.count() == 0
    assert AuditEvent.objects.filter(object_type="screening.followupcontact").count() == 0


def test_doctors_technicians_and_administrators_may_mark(clinic, doctor, technician, admin_user):
    for actor in (doctor, technician, admin_user):
        follow_up_mark(actor=actor, review=clinic["overdue"], status="contacted")
    assert FollowUpContact.objects.count() == 3
