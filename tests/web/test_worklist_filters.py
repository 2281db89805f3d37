"""The worklist's filters, pagination, counts per status, turnaround column and assignment."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ai_engine.models import RecordTriage
from clinic.turnaround import duration_text, turnaround_of
from core.models import AuditEvent
from screening.models import DoctorReview, FundusImage, RecordStatus, ScreeningRecord
from tests.factories import ScreeningRecordFactory, UserFactory
from tests.web.conftest import DR_POSITIVE, NORMAL, add_analysis

TZ = timezone.get_current_timezone()


def _at(days_ago: int = 0, hour: int = 9, minute: int = 0) -> dt.datetime:
    day = timezone.localdate() - dt.timedelta(days=days_ago)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=TZ)


def _record(operator, status=RecordStatus.ANALYSED, *, at=None, level=None, priority=0, **extra):
    record = ScreeningRecordFactory(operator=operator, screened_at=at or _at())
    ScreeningRecord.objects.filter(pk=record.pk).update(status=status, **extra)
    if level is not None:
        RecordTriage.objects.create(record=record, level=level, priority=priority, reasons=[])
    record.refresh_from_db()
    return record


def _photo(record, *, at, by, eye="OD") -> FundusImage:
    return FundusImage.objects.create(
        record=record,
        eye=eye,
        file=f"fundus/test/{record.pk}-{eye}.jpg",
        sha256=f"{record.pk:032d}{eye}".ljust(64, "0"),
        width=320,
        height=320,
        format="JPEG",
        mode="RGB",
        size_bytes=1000,
        uploaded_by=by,
        uploaded_at=at,
    )


def _signed(record, doctor, *, at, codes=("normal",), recommendation="routine", version=1, **extra):
    return DoctorReview.objects.create(
        record=record,
        doctor=doctor,
        version=version,
        conclusion_codes=list(codes),
        recommendation=recommendation,
        signed_at=at,
        **extra,
    )


def _listed(response) -> list[ScreeningRecord]:
    return [record for group in response.context["groups"] for record in group["records"]]


@pytest.fixture
def tech2(db):
    return UserFactory(username="tech2", role="technician", first_name="赵技师")


@pytest.fixture
def doctor2(db):
    return UserFactory(username="doctor2", role="doctor", first_name="钱医生")


# --- filters --------------------------------------------------------------------------------
def test_without_dates_today_and_the_review_backlog_are_listed(client, doctor, technician):
    today = _record(technician, RecordStatus.REPORTED)
    backlog = _record(technician, at=_at(days_ago=5))
    _record(technician, RecordStatus.REVIEWED, at=_at(days_ago=5))
    client.force_login(doctor)
    assert _listed(client.get("/")) == [backlog, today]


def test_the_date_range_filter(client, doctor, technician):
    _record(technician, at=_at(days_ago=10))
    inside = [_record(technician, at=_at(days_ago=4)), _record(technician, at=_at(days_ago=2))]
    _record(technician, at=_at(days_ago=1))
    client.force_login(doctor)
    start = (timezone.localdate() - dt.timedelta(days=4)).isoformat()
    end = (timezone.localdate() - dt.timedelta(days=2)).isoformat()
    assert _listed(client.get("/", {"start": start, "end": end})) == inside
    # reversed bounds are read the right way round
    assert _listed(client.get("/", {"start": end, "end": start})) == inside


def test_the_status_filter(client, doctor, technician):
    _record(technician, RecordStatus.DRAFT)
    reported = _record(technician, RecordStatus.REPORTED)
    client.force_login(doctor)
    assert _listed(client.get("/", {"status": "reported"})) == [reported]


def test_the_triage_filter(client, doctor, technician):
    urgent = _record(technician, level="urgent", priority=3)
    _record(technician, level="routine", priority=1)
    _record(technician)
    client.force_login(doctor)
    assert _listed(client.get("/", {"triage": "urgent"})) == [urgent]


def test_the_doctor_filter_and_my_worklist(client, doctor, doctor2, technician):
    mine = _record(technician, assigned_doctor=doctor)
    theirs = _record(technician, assigned_doctor=doctor2)
    nobody = _record(technician)
    client.force_login(doctor)
    assert _listed(client.get("/", {"doctor": "me"})) == [mine]
    assert _listed(client.get("/", {"doctor": str(doctor2.pk)})) == [theirs]
    assert _listed(client.get("/", {"doctor": "none"})) == [nobody]
    page = client.get("/", {"doctor": "me"}).content.decode()
    assert "<h1>My worklist</h1>" in page
    assert 'href="?doctor=me"' in client.get("/").content.decode()


def test_the_technician_filter(client, doctor, technician, tech2):
    _record(technician)
    theirs = _record(tech2)
    client.force_login(doctor)
    response = client.get("/", {"technician": str(tech2.pk)})
    assert _listed(response) == [theirs]
    assert f'<option value="{tech2.pk}" selected>赵技师</option>' in response.content.decode()


def test_the_condition_filter_reads_the_ai_and_the_doctor(
    client, doctor, technician, package, photo_file
):
    ai_dr = _record(technician)
    add_analysis(_photo(ai_dr, at=_at(), by=technician), package, findings=DR_POSITIVE)
    ai_normal = _record(technician)
    add_analysis(_photo(ai_normal, at=_at(), by=technician), package, findings=NORMAL)
    doctor_dr = _record(technician, RecordStatus.REVIEWED)
    review = _signed(doctor_dr, doctor, at=_at(), codes=[])
    DoctorReview.objects.filter(pk=review.pk).update(conclusion_codes_os=["dr_moderate"])
    doctor_glaucoma = _record(technician, RecordStatus.REVIEWED)
    _signed(doctor_glaucoma, doctor, at=_at(), codes=["glaucoma_suspect"])
    client.force_login(doctor)
    assert _listed(client.get("/", {"condition": "dr"})) == [ai_dr, doctor_dr]
    assert _listed(client.get("/", {"condition": "glaucoma"})) == [doctor_glaucoma]
    assert _listed(client.get("/", {"condition": "cataract"})) == []


def test_an_invalid_filter_value_is_shown_and_ignored(client, doctor, technician):
    record = _record(technician)
    client.force_login(doctor)
    response = client.get("/", {"start": "not-a-date", "triage": "bogus"})
    assert _listed(response) == [record]
    assert response.context["filter_form"].errors.keys() == {"start", "triage"}


# --- order, pages, counts -------------------------------------------------------------------
def test_pages_of_25_in_a_stable_order_without_overlap(client, doctor, technician):
    records = [
        _record(technician, at=_at(hour=8, minute=index), level="high", priority=index % 3)
        for index in range(27)
    ]
    expected = sorted(records, key=lambda r: (-r.triage.priority, r.screened_at, r.pk))
    client.force_login(doctor)
    first = client.get("/", {"status": "analysed"})
    second = client.get("/", {"status": "analysed", "page": "2"})
    assert _listed(first) == expected[:25]
    assert _listed(second) == expected[25:]
    assert first.context["total"] == 27
    html = first.content.decode()
    assert "Page 1 of 2" in html
    assert 'href="?status=analysed&amp;page=2"' in html


def test_counts_per_status_follow_every_filter_but_the_status(client, doctor, technician, tech2):
    _record(technician, RecordStatus.DRAFT)
    _record(technician)
    _record(technician)
    _record(technician, RecordStatus.REPORTED)
    _record(tech2)
    client.force_login(doctor)
    response = client.get("/", {"technician": str(technician.pk), "status": "analysed"})
    counts = {status: count for status, _label, count, _query in response.context["status_counts"]}
    assert counts == {
        "draft": 1,
        "images_uploaded": 0,
        "analysing": 0,
        "analysed": 2,
        "reviewed": 0,
        "reported": 1,
    }
    assert response.context["total"] == 2


def test_the_worklist_queries_do_not_grow_with_rows(client, doctor, technician, package):
    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            assert client.get("/").status_code == 200
        return len(context)

    client.force_login(doctor)
    record = _record(technician, level="high", priority=2, assigned_doctor=doctor)
    _signed(record, doctor, at=_at(hour=10))
    _photo(record, at=_at(), by=technician)
    few = queries()
    for index in range(20):
        record = _record(technician, level="high", priority=index % 3, assigned_doctor=doctor)
        _photo(record, at=_at(), by=technician)
        # Their follow-ups are due today: the recall count the worklist links is one query.
        _signed(record, doctor, at=_at(hour=10), follow_up_date=timezone.localdate())
    response = client.get("/")
    assert response.context["recalls_due"] == 20
    assert queries() == few


# --- turnaround -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("minutes", "text"),
    [(0, "0 min"), (59, "59 min"), (125, "2 h 5 min"), (60 * 24 * 3 + 60 * 4 + 59, "3 d 4 h")],
)
def test_durations_read_in_at_most_two_units(minutes, text):
    assert duration_text(dt.timedelta(minutes=minutes, seconds=30)) == text


def test_turnaround_runs_from_the_first_upload_to_the_first_signature():
    upload = _at(hour=9)
    signed = turnaround_of(
        first_upload_at=upload, first_signed_at=_at(hour=11, minute=5), now=_at(hour=18)
    )
    still_open = turnaround_of(first_upload_at=upload, first_signed_at=None, now=_at(hour=18))
    assert (signed.text, signed.open, signed.hours) == ("2 h 5 min", False, 2.08)
    assert (still_open.text, still_open.open) == ("open, 9 h 0 min so far", True)
    assert turnaround_of(first_upload_at=None, first_signed_at=None, now=upload) is None


def test_the_turnaround_column(client, doctor, technician):
    signed = _record(technician, RecordStatus.REVIEWED, at=_at(hour=8))
    _photo(signed, at=_at(hour=9, minute=30), by=technician, eye="OS")
    _photo(signed, at=_at(hour=9), by=technician)  # the first upload counts
    _signed(signed, doctor, at=_at(hour=11, minute=5))
    _signed(signed, doctor, at=_at(hour=15), version=2)  # an amendment does not
    waiting = _record(technician, at=_at(hour=8))
    _photo(waiting, at=timezone.now() - dt.timedelta(hours=3, minutes=10, seconds=5), by=technician)
    no_photos = _record(technician, RecordStatus.DRAFT, at=_at(hour=8))
    client.force_login(doctor)
    html = client.get("/", {"start": timezone.localdate().isoformat()}).content.decode()
    assert f'<tr id="row-{signed.pk}"' in html
    rows = {r.pk: r.turnaround for r in _listed(client.get("/", {"status": ""}))}
    assert rows[signed.pk].text == "2 h 5 min"
    assert rows[waiting.pk].open is True
    assert rows[waiting.pk].text.startswith("open, 3 h ")  # 3 h 10 min so far (exact: above)
    assert rows[no_photos.pk] is None
    assert '<td data-label="Turnaround" class="turnaround">2 h 5 min</td>' in html


# --- assignment -----------------------------------------------------------------------------
def test_bulk_assignment_from_the_worklist(client, doctor, doctor2, technician):
    first, second = _record(technician), _record(technician)
    signed = _record(technician, RecordStatus.REVIEWED)
    client.force_login(doctor)
    page = client.get("/").content.decode()
    assert f'name="records" value="{first.pk}" form="bulk-assign"' in page
    assert f'name="records" value="{signed.pk}"' not in page  # signed: nothing to assign

    response = client.post(
        reverse("worklist-assign"),
        {
            "doctor": str(doctor2.pk),
            "records": [first.pk, second.pk, signed.pk],
            "next": "/?doctor=none",
        },
        follow=True,
    )

    assert response.redirect_chain == [("/?doctor=none", 302)]
    assert list(
        ScreeningRecord.objects.order_by("pk").values_list("assigned_doctor", flat=True)
    ) == [doctor2.pk, doctor2.pk, None]
    messages = [str(m) for m in response.context["messages"]]
    assert messages == [
        f"Screening {signed} is signed: its doctor can no longer change.",
        "2 screenings assigned to 钱医生.",
    ]
    assert AuditEvent.objects.filter(changes__has_key="assigned_doctor").count() == 2


def test_technicians_may_not_assign(client, technician, doctor):
    record = _record(technician)
    client.force_login(technician)
    assert 'id="bulk-assign"' not in client.get("/").content.decode()
    response = client.post(
        reverse("worklist-assign"), {"doctor": str(doctor.pk), "records": [record.pk]}
    )
    assert response.status_code == 403
    assert ScreeningRecord.objects.get(pk=record.pk).assigned_doctor is None
    assert not AuditEvent.objects.filter(object_type="screening.screeningrecord").exists()


def test_bulk_assignment_refuses_a_non_doctor_and_an_outside_next(client, admin_user, technician):
    record = _record(technician)
    client.force_login(admin_user)
    response = client.post(
        reverse("worklist-assign"),
        {"doctor": str(technician.pk), "records": [record.pk], "next": "https://evil.example/"},
        follow=True,
    )
    assert response.redirect_chain == [("/", 302)]
    assert [str(m) for m in response.context["messages"]] == [
        "Choose the doctor to assign the screenings to."
    ]
    assert ScreeningRecord.objects.get(pk=record.pk).assigned_doctor is None


def test_assignment_on_the_screening_page(client, admin_user, doctor, technician):
    record = _record(technician)
    client.force_login(admin_user)
    page = client.get(reverse("pages:screening-detail", args=[record.pk])).content.decode()
    assert 'id="assign-form"' in page

    response = client.post(
        reverse("pages:screening-assign", args=[record.pk]), {"doctor": str(doctor.pk)}, follow=True
    )

    assert [str(m) for m in response.context["messages"]] == ["Assigned to doctor1."]
    assert '<dd id="assigned-doctor">doctor1' in response.content.decode()
    assert ScreeningRecord.objects.get(pk=record.pk).assigned_doctor == doctor


def test_the_screening_page_has_no_assignment_for_technicians(client, technician, doctor):
    record = _record(technician)
    client.force_login(technician)
    page = client.get(reverse("pages:screening-detail", args=[record.pk])).content.decode()
    assert 'id="assign-form"' not in page
    response = client.post(
        reverse("pages:screening-assign", args=[record.pk]), {"doctor": str(doctor.pk)}
    )
    assert response.status_code == 403
    assert ScreeningRecord.objects.get(pk=record.pk).assigned_doctor is None


def test_the_worklist_in_chinese(client, doctor, technician):
    record = _record(technician, RecordStatus.REVIEWED, at=_at(hour=8), assigned_doctor=doctor)
    _photo(record, at=_at(hour=9), by=technician)
    _signed(record, doctor, at=_at(hour=11, minute=5))
    client.force_login(doctor)
    client.cookies["django_language"] = "zh-hans"
    html = client.get("/", {"doctor": "me"}).content.decode()
    assert "<h1>我的工作列表</h1>" in html
    assert "<summary>筛选工作列表</summary>" in html
    assert '<td data-label="周转时间" class="turnaround">2小时5分钟</td>' in html
    assert '<option value="me" selected>我（我的工作列表）</option>' in html
