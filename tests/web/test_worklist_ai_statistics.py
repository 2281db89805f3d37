"""The worklist, the AI pages (status JSON, heatmaps, model cards, re-runs) and statistics."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from ai_engine.models import Analysis, RecordTriage
from clinic.statistics import clinic_statistics
from screening.models import RecordStatus, ScreeningRecord
from screening.services import image_upload, review_save_draft, review_sign
from tests.factories import PatientFactory, ScreeningRecordFactory, UserFactory
from tests.web.conftest import DR_POSITIVE, NORMAL, add_analysis, make_analysed


def _record(technician, status, *, days_ago=0, priority=None, reasons=()):
    record = ScreeningRecordFactory(
        operator=technician, screened_at=timezone.now() - dt.timedelta(days=days_ago)
    )
    ScreeningRecord.objects.filter(pk=record.pk).update(status=status)
    if priority is not None:
        RecordTriage.objects.create(
            record=record, level="high", priority=priority, reasons=list(reasons)
        )
    return record


# --- worklist -------------------------------------------------------------------------------
def test_the_worklist_groups_todays_screenings_and_sorts_review_by_priority(
    client, doctor, technician
):
    low = _record(technician, RecordStatus.ANALYSED, priority=1)
    urgent = _record(technician, RecordStatus.ANALYSED, priority=3)
    backlog = _record(technician, RecordStatus.ANALYSED, days_ago=2, priority=2)
    retake = _record(
        technician, RecordStatus.ANALYSED, priority=2, reasons=[{"code": "ungradable", "eye": "OS"}]
    )
    waiting = _record(technician, RecordStatus.DRAFT)
    analysing = _record(technician, RecordStatus.ANALYSING)
    done = _record(technician, RecordStatus.REPORTED)
    _record(technician, RecordStatus.REVIEWED, days_ago=3)  # an old, finished visit: not listed
    client.force_login(doctor)
    response = client.get("/")
    groups = {group["code"]: group["records"] for group in response.context["groups"]}
    assert groups["review"] == [urgent, backlog, low]
    assert groups["ungradable"] == [retake]
    assert groups["waiting_photos"] == [waiting]
    assert groups["analysing"] == [analysing]
    assert groups["reported"] == [done]
    assert groups["reviewed"] == []
    assert response.context["total"] == 7  # every listed screening, the backlog included
    html = response.content.decode()
    assert "OS: photo not gradable: retake" in html


def test_the_worklist_of_another_day(client, doctor, technician):
    old = _record(technician, RecordStatus.REVIEWED, days_ago=3)
    client.force_login(doctor)
    day = timezone.localdate() - dt.timedelta(days=3)
    response = client.get("/", {"day": day.isoformat()})
    assert response.context["groups"][4]["records"] == [old]


def test_the_worklist_needs_a_constant_number_of_queries(
    client, doctor, technician, django_assert_max_num_queries
):
    for index in range(12):
        _record(technician, RecordStatus.ANALYSED, priority=index % 4)
        _record(technician, RecordStatus.DRAFT)
    client.force_login(doctor)
    # 16: the worklist's 15 and the count of follow-up recalls due (one query).
    with django_assert_max_num_queries(16):
        response = client.get("/")
    assert len(response.context["groups"][0]["records"]) == 12


def test_the_quick_search_goes_to_the_patient_list(client, technician):
    PatientFactory(name="赵六", phone="13712345678")
    client.force_login(technician)
    assert f'action="{reverse("patients:list")}"' in client.get("/").content.decode()
    response = client.get(reverse("patients:list"), {"q": "5678"})
    assert [p.name for p in response.context["patients"]] == ["赵六"]


# --- AI status, heatmaps, model cards, re-runs ----------------------------------------------
def test_the_status_json_follows_the_analyses(client, technician, record, photo_file, package):
    client.force_login(technician)
    url = reverse("ai_engine:record-status", args=[record.pk])
    assert client.get(url).json()["state"] == "no_photos"
    image = image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file())
    body = client.get(url).json()
    assert (body["state"], body["finished"]) == ("waiting", False)
    analysis = add_analysis(image, package, status="running")
    body = client.get(url).json()
    assert body["state"] == "running"
    assert body["text"] == "AI analysis running (0 of 1 done)…"
    assert body["images"][0]["analyses"][0]["status"] == "running"
    Analysis.objects.filter(pk=analysis.pk).update(status="done")
    body = client.get(url).json()
    assert (body["state"], body["finished"]) == ("done", True)


def test_patient_accounts_get_no_status(client, db, record):
    client.force_login(UserFactory(role="patient"))
    assert client.get(reverse("ai_engine:record-status", args=[record.pk])).status_code == 403


def test_heatmaps_are_served_only_to_staff(client, doctor, analysed_record):
    finding = analysed_record.images.get(eye="OD").analyses.get().findings.get(positive=True)
    url = reverse("ai_engine:heatmap-file", args=[finding.pk])
    anonymous = client.get(url)
    assert anonymous.status_code == 302
    client.force_login(doctor)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "private, no-store"
    client.force_login(UserFactory(role="patient"))
    assert client.get(url).status_code == 403


def test_the_model_card_page(client, technician, package):
    client.force_login(technician)
    html = client.get(reverse("ai_engine:model-card", args=[package.pk])).content.decode()
    assert "mobilenetv3_small_100" in html
    assert "ODIR-5K training split" in html
    assert "Demonstration of the screening workflow only." in html
    assert "Demonstration model — not for diagnosis" in html
    assert "macro_f1" in html and "0.712" in html
    assert "Glaucoma" in html and "0.4" in html


def test_a_rerun_makes_a_new_analysis(client, doctor, analysed_record, monkeypatch):
    queued = []
    monkeypatch.setattr("ai_engine.services.enqueue_on_commit", lambda *a, **k: queued.append(a))
    analysis = analysed_record.images.get(eye="OD").analyses.get()
    client.force_login(doctor)
    response = client.post(reverse("ai_engine:rerun", args=[analysis.pk]))
    assert response.status_code == 302
    assert response["Location"].endswith(f"#image-{analysis.image_id}")
    assert list(analysis.image.analyses.order_by("run").values_list("run", "status")) == [
        (1, "done"),
        (2, "queued"),
    ]
    assert queued == [("ai_engine.tasks.analyse_image", analysis.image_id)]


def test_reruns_are_refused_without_permission_and_after_signing(
    client, doctor, analysed_record, monkeypatch
):
    monkeypatch.setattr("ai_engine.services.enqueue_on_commit", lambda *a, **k: None)
    analysis = analysed_record.images.get(eye="OD").analyses.get()
    client.force_login(UserFactory(role="patient"))
    assert client.post(reverse("ai_engine:rerun", args=[analysis.pk])).status_code == 403
    review = review_save_draft(
        doctor=doctor, record=analysed_record, conclusion_codes=["normal"], recommendation="routine"
    )
    review_sign(doctor=doctor, review=review)
    client.force_login(doctor)
    response = client.post(reverse("ai_engine:rerun", args=[analysis.pk]), follow=True)
    assert "its analyses are final" in response.content.decode()
    assert analysis.image.analyses.count() == 1


# --- statistics -----------------------------------------------------------------------------
def _signed(doctor, record, codes, recommendation):
    review = review_save_draft(
        doctor=doctor, record=record, conclusion_codes=codes, recommendation=recommendation
    )
    review_sign(doctor=doctor, review=review)


@pytest.fixture
def clinic_month(doctor, technician, photo_file, package):
    """Three signed screenings: DR agreed, normal agreed, DR called by the AI only; one ungradable."""
    agreed = make_analysed(
        ScreeningRecordFactory(operator=technician), technician, photo_file, package
    )
    _signed(doctor, agreed, ["dr_moderate"], "refer")
    normal = make_analysed(
        ScreeningRecordFactory(operator=technician), technician, photo_file, package, od=NORMAL
    )
    _signed(doctor, normal, ["normal"], "routine")
    ai_only = make_analysed(
        ScreeningRecordFactory(operator=technician), technician, photo_file, package, od=DR_POSITIVE
    )
    _signed(doctor, ai_only, ["cataract"], "urgent")
    retake = ScreeningRecordFactory(operator=technician)
    image = image_upload(
        actor=technician, record=retake, eye="OD", uploaded_file=photo_file(seed=99)
    )
    add_analysis(image, package, status="ungradable", reasons=["overexposed"])


def test_statistics_compare_the_ai_with_the_doctor(clinic_month):
    today = timezone.localdate()
    stats = clinic_statistics(start=today - dt.timedelta(days=6), end=today)
    assert stats.screenings == 4
    assert stats.per_day[-1] == (today, 4)
    assert len(stats.per_day) == 7
    dr = next(a for a in stats.agreements if a.category.code == "dr")
    assert (dr.both_positive, dr.ai_only, dr.doctor_only, dr.both_negative) == (1, 1, 0, 1)
    assert dr.rate == pytest.approx(2 / 3)
    cataract = next(a for a in stats.agreements if a.category.code == "cataract")
    assert cataract.total == 0  # the model has no cataract label: not assessed
    assert (stats.analyses_graded, stats.analyses_ungradable) == (6, 1)
    assert stats.ungradable_rate == pytest.approx(1 / 7)
    assert (stats.reviews_signed, stats.referrals) == (3, 2)
    assert stats.findings == [
        ("N", "正常", "Normal", 4),
        ("D", "糖尿病视网膜病变", "Diabetic retinopathy", 2),
    ]


def test_the_statistics_page(client, doctor, clinic_month, django_assert_max_num_queries):
    client.force_login(doctor)
    # 20, the workload tables (clinic.workload), and one that finds no shadow package to
    # compare (ai_engine.learning.shadow_comparisons)
    with django_assert_max_num_queries(28):
        response = client.get(reverse("statistics"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "67%" in html  # DR agreement
    assert "14%" in html  # ungradable rate
    assert html.count('<rect class="bar"') == 30 + 2  # 30 days, 2 finding labels


def test_statistics_with_a_date_range(client, doctor, clinic_month):
    client.force_login(doctor)
    response = client.get(reverse("statistics"), {"start": "2020-01-01", "end": "2020-01-31"})
    assert response.context["stats"].screenings == 0
    assert len(response.context["stats"].per_day) == 31


def test_technicians_may_not_see_statistics(client, technician):
    client.force_login(technician)
    assert client.get(reverse("statistics")).status_code == 403


def test_administrators_see_statistics(client, admin_user):
    client.force_login(admin_user)
    assert client.get(reverse("statistics")).status_code == 200
