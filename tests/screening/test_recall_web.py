"""The recall page of the staff web UI, its CSV/Excel export, the worklist's count of due
follow-ups and the read-only admin of recall marks (issue #15)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from core.models import AuditEvent
from screening.models import DoctorReview, FollowUpContact
from screening.services import follow_up_mark
from tests.factories import PatientFactory, ScreeningRecordFactory, UserFactory

TODAY = dt.date(2027, 3, 10)


@pytest.fixture(autouse=True)
def frozen_today(monkeypatch):
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: TODAY)


@pytest.fixture
def due(db, doctor, technician):
    """张晓宇, seen in November, told to come back on 28 February: 10 days overdue."""
    patient = PatientFactory(name="张晓宇", phone="13812348000", patient_id="P20260001")
    record = ScreeningRecordFactory(
        patient=patient,
        operator=technician,
        screened_at=dt.datetime(2026, 11, 28, 1, 0, tzinfo=dt.UTC),
    )
    return DoctorReview.objects.create(
        record=record,
        doctor=doctor,
        conclusion_codes=["dr_moderate"],
        conclusion_codes_od=["dr_moderate"],
        diagnosis_codes_od=["E11.3"],
        dr_grade_od="2",
        recommendation="follow_up",
        follow_up_date=dt.date(2027, 2, 28),
        signed_at=dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC),
    )


def test_the_recall_page_lists_the_due_follow_up_with_a_masked_phone(client, technician, due):
    client.force_login(technician)
    response = client.get(reverse("screening:recall"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "张晓宇" in html
    assert "138****8000" in html
    assert "13812348000" not in html
    assert "10 days overdue" in html
    event = AuditEvent.objects.get(object_type="screening.followupcontact", action="view")
    assert event.changes == {"listed_patients": ["P20260001"], "filters": []}


def test_the_recall_page_is_in_chinese_by_default(client, technician, due, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    client.force_login(technician)
    html = client.get(reverse("screening:recall")).content.decode()
    assert "复诊召回" in html
    assert "逾期 10 天" in html


def test_filters_narrow_the_list(client, technician, due):
    client.force_login(technician)
    url = reverse("screening:recall")
    assert "张晓宇" in client.get(url, {"icd10": "E11"}).content.decode()
    assert "张晓宇" not in client.get(url, {"icd10": "H40"}).content.decode()
    assert "张晓宇" not in client.get(url, {"due_by": "2027-02-27"}).content.decode()
    bad = client.get(url, {"icd10": "=cmd"})
    assert bad.status_code == 200
    assert "张晓宇" not in bad.content.decode()


def test_the_recall_of_a_visit_shows_the_full_phone_to_front_desk_staff(client, technician, due):
    client.force_login(technician)
    html = client.get(reverse("screening:recall-detail", args=[due.record_id])).content.decode()
    assert "13812348000" in html
    event = AuditEvent.objects.get(action="view", object_type="patients.patient")
    assert event.changes == {"recall_of_record": due.record_id, "full_phone": True}


def test_doctors_see_the_phone_masked(client, doctor, due):
    client.force_login(doctor)
    html = client.get(reverse("screening:recall-detail", args=[due.record_id])).content.decode()
    assert "13812348000" not in html
    assert "138****8000" in html


def test_marking_from_the_list_returns_to_it(client, technician, due):
    client.force_login(technician)
    url = reverse("screening:recall") + "?icd10=E11"
    response = client.post(
        reverse("screening:recall-detail", args=[due.record_id]),
        {"status": "contacted", "next": url},
    )
    assert response.status_code == 302
    assert response["Location"] == url
    contact = FollowUpContact.objects.get()
    assert (contact.status, contact.created_by, contact.review) == ("contacted", technician, due)


def test_rescheduling_needs_a_date(client, technician, due):
    client.force_login(technician)
    url = reverse("screening:recall-detail", args=[due.record_id])
    response = client.post(url, {"status": "rescheduled"})
    assert response.status_code == 400
    assert "Enter the new follow-up date." in response.content.decode()
    assert FollowUpContact.objects.count() == 0
    response = client.post(url, {"status": "rescheduled", "new_date": "2027-03-20"})
    assert response.status_code == 302
    assert FollowUpContact.objects.get().new_date == dt.date(2027, 3, 20)


def test_a_patient_account_cannot_open_or_mark_recalls(client, patient_user, due):
    client.force_login(patient_user)
    assert client.get(reverse("screening:recall")).status_code == 403
    url = reverse("screening:recall-detail", args=[due.record_id])
    assert client.post(url, {"status": "came_back"}).status_code == 403
    assert FollowUpContact.objects.count() == 0


def test_a_visit_without_a_follow_up_has_no_recall(client, technician, record):
    client.force_login(technician)
    url = reverse("screening:recall-detail", args=[record.pk])
    assert client.get(url).status_code == 404


def read_csv(response) -> list[list[str]]:
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_the_export_holds_full_phone_numbers_for_front_desk_staff(client, technician, due):
    client.force_login(technician)
    response = client.get(reverse("screening:recall"), {"format": "csv", "icd10": "E11"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="recall-2027-03-10.csv"'
    rows = read_csv(response)
    assert rows[0][:8] == [
        "Follow-up date",
        "Days overdue",
        "Status",
        "Patient ID",
        "Name",
        "Sex",
        "Age",
        "Phone",
    ]
    assert rows[1][:12] == [
        "2027-02-28",
        "10",
        "Due",
        "P20260001",
        "张晓宇",
        "Female",
        "56",
        "13812348000",
        "Moderate non-proliferative diabetic retinopathy",
        "E11.3",
        "OD: Moderate NPDR (R2)",
        "Follow-up examination",
    ]
    assert len(rows) == 2
    event = AuditEvent.objects.get(action="download")
    assert event.changes == {
        "listed_patients": ["P20260001"],
        "filters": ["icd10"],
        "format": "csv",
        "full_phone": True,
    }


def test_the_excel_export_for_a_doctor_masks_phones(client, doctor, due):
    client.force_login(doctor)
    response = client.get(reverse("screening:recall"), {"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet["D2"].value == "P20260001"
    assert sheet["H2"].value == "138****8000"
    assert AuditEvent.objects.get(action="download").changes["full_phone"] is False


def test_an_unknown_export_format_is_refused_and_not_logged(client, technician, due):
    client.force_login(technician)
    assert client.get(reverse("screening:recall"), {"format": "pdf"}).status_code == 400
    assert not AuditEvent.objects.filter(action="download").exists()


def test_the_list_costs_the_same_queries_for_one_or_many_rows(client, technician, doctor, due):
    client.force_login(technician)
    url = reverse("screening:recall")
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    for name in ("王芳", "李雷"):
        record = ScreeningRecordFactory(
            patient=PatientFactory(name=name),
            operator=technician,
            screened_at=due.record.screened_at,
        )
        DoctorReview.objects.create(
            record=record,
            doctor=doctor,
            recommendation="refer",
            follow_up_date=dt.date(2027, 3, 1),
            signed_at=due.signed_at,
        )
    with CaptureQueriesContext(connection) as three:
        html = client.get(url).content.decode()
    assert html.count("/screening/recall/") >= 3
    assert len(three.captured_queries) == len(one.captured_queries)


def test_the_patient_list_finds_patients_by_pinyin(client, technician, due):
    client.force_login(technician)
    html = client.get(reverse("patients:list"), {"q": "zxy"}).content.decode()
    assert "张晓宇" in html
    assert "1 patient matches “zxy”." in html


# --- the worklist's count -------------------------------------------------------------------
def _follow_up(doctor, technician, follow_up_date: dt.date) -> DoctorReview:
    record = ScreeningRecordFactory(
        operator=technician, screened_at=dt.datetime(2026, 11, 28, 3, 0, tzinfo=dt.UTC)
    )
    return DoctorReview.objects.create(
        record=record,
        doctor=doctor,
        recommendation="follow_up",
        follow_up_date=follow_up_date,
        signed_at=dt.datetime(2026, 11, 28, 4, 0, tzinfo=dt.UTC),
    )


def _recall_queries(context: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"]
        for query in context.captured_queries
        if "screening_followupcontact" in query["sql"]
    ]


@pytest.fixture
def worklist_only_user(db):
    """Staff who may open the worklist but not the recall list."""
    user = UserFactory(username="viewer", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label__in=("screening", "patients"),
            codename__in=("view_screeningrecord", "view_patient"),
        )
    )
    return user


def test_the_worklist_links_the_count_of_open_follow_ups_due_by_today(
    client, technician, doctor, due
):
    # Given the overdue recall, one contacted (still open), one declined (closed), one not yet due
    contacted = _follow_up(doctor, technician, TODAY)
    follow_up_mark(actor=technician, review=contacted, status="contacted")
    declined = _follow_up(doctor, technician, dt.date(2027, 3, 1))
    follow_up_mark(actor=technician, review=declined, status="declined")
    _follow_up(doctor, technician, dt.date(2027, 3, 11))
    client.force_login(technician)

    with CaptureQueriesContext(connection) as context:
        response = client.get(reverse("dashboard"))

    assert response.status_code == 200
    assert response.context["recalls_due"] == 2
    assert (
        '<a class="count" id="count-recalls-due" href="/screening/recall/"><span>Follow-ups due'
        " or overdue</span><strong>2</strong></a>"
    ) in response.content.decode()
    assert len(_recall_queries(context)) == 1


def test_the_worklist_count_is_in_chinese(client, technician, due, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    client.force_login(technician)
    html = client.get(reverse("dashboard")).content.decode()
    assert "<span>到期及逾期复诊</span><strong>1</strong>" in html


def test_staff_who_may_not_see_recalls_get_no_count(client, worklist_only_user, due):
    client.force_login(worklist_only_user)

    with CaptureQueriesContext(connection) as context:
        response = client.get(reverse("dashboard"))

    assert response.status_code == 200
    assert response.context["recalls_due"] is None
    assert "count-recalls-due" not in response.content.decode()
    assert _recall_queries(context) == []
    assert client.get(reverse("screening:recall")).status_code == 403


# --- the admin of recall marks --------------------------------------------------------------
ADMIN_LIST = "/admin/screening/followupcontact/"


def _listed(response) -> list[FollowUpContact]:
    return list(response.context["cl"].result_list)


@pytest.fixture
def mark(due, technician) -> FollowUpContact:
    return follow_up_mark(
        actor=technician, review=due, status="rescheduled", new_date=dt.date(2027, 3, 20)
    )


def test_the_admin_lists_marks_searchable_by_patient_id_without_the_phone(client, admin_user, mark):
    client.force_login(admin_user)

    response = client.get(ADMIN_LIST)

    assert response.status_code == 200
    html = response.content.decode()
    assert "P20260001" in html
    assert "Rescheduled" in html
    assert "March 20, 2027" in html
    assert "tech1" in html
    assert "13812348000" not in html
    assert "138****8000" not in html
    assert _listed(response) == [mark]
    assert _listed(client.get(ADMIN_LIST, {"q": "P20260001"})) == [mark]
    assert _listed(client.get(ADMIN_LIST, {"q": "P20269999"})) == []
    assert _listed(client.get(ADMIN_LIST, {"status__exact": "declined"})) == []
    assert _listed(client.get(ADMIN_LIST, {"status__exact": "rescheduled"})) == [mark]


def test_opening_a_mark_in_the_admin_is_audited_and_nothing_can_be_changed(
    client, admin_user, mark
):
    client.force_login(admin_user)
    url = f"{ADMIN_LIST}{mark.pk}/change/"
    before = AuditEvent.objects.count()

    assert client.get(url).status_code == 200

    event = AuditEvent.objects.get(action="view", object_type="patients.patient")
    assert (event.actor, event.patient_ref) == (admin_user, "P20260001")
    assert AuditEvent.objects.count() == before + 1
    assert client.post(url, {"status": "declined", "note": "x"}).status_code == 403
    assert client.get(f"{ADMIN_LIST}add/").status_code == 403
    assert client.post(f"{ADMIN_LIST}{mark.pk}/delete/", {"post": "yes"}).status_code == 403
    mark.refresh_from_db()
    assert (mark.status, mark.new_date, mark.note) == ("rescheduled", dt.date(2027, 3, 20), "")
    assert FollowUpContact.objects.count() == 1


def test_staff_without_the_recall_permission_cannot_open_marks_in_the_admin(
    client, worklist_only_user, mark
):
    client.force_login(worklist_only_user)
    before = AuditEvent.objects.count()

    assert client.get(ADMIN_LIST).status_code == 403
    assert client.get(f"{ADMIN_LIST}{mark.pk}/change/").status_code == 403

    assert AuditEvent.objects.count() == before
