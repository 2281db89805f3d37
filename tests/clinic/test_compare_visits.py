"""Compare visits: a patient's two visits side by side (photos per eye, AI findings, the
doctor's conclusions, the VA/IOP trend with both visits marked), audited as a patient view."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic.comparison import VisitChoiceError, parse_visit_ids, visit_pair
from core.models import AuditEvent, StaffProfile
from screening.models import DoctorReview, ScreeningRecord
from screening.services import image_upload
from tests.ai_results import (
    MULTICLASS_GLAUCOMA,
    NORMAL,
    add_analysis,
    make_analysed,
    multiclass_package,
)
from tests.factories import ModelPackageFactory, PatientFactory, ScreeningRecordFactory


def _visit(patient, technician, days_ago: int, **fields) -> ScreeningRecord:
    record = ScreeningRecordFactory(patient=patient, operator=technician, **fields)
    ScreeningRecord.objects.filter(pk=record.pk).update(
        screened_at=timezone.now() - dt.timedelta(days=days_ago)
    )
    record.refresh_from_db()
    return record


@pytest.fixture
def visits(patient, technician):
    """Three visits of one patient: 300, 100 and 1 days ago."""
    return [
        _visit(patient, technician, 300, va_od="0.50", logmar_od="0.30", iop_od="22.0"),
        _visit(patient, technician, 100, va_od="0.60", logmar_od="0.22", iop_od="19.0"),
        _visit(patient, technician, 1, va_od="0.40", logmar_od="0.40", iop_od="25.0"),
    ]


def _url(patient, **query) -> str:
    url = reverse("pages:patient-compare", args=[patient.patient_id])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def _views(patient) -> int:
    return AuditEvent.objects.filter(
        action=AuditEvent.Action.VIEW, patient_ref=patient.patient_id
    ).count()


def test_without_a_choice_the_latest_two_visits_are_compared_earlier_first(
    client, doctor, patient, visits
):
    client.force_login(doctor)

    response = client.get(_url(patient))

    assert response.status_code == 200
    earlier, later = response.context["pair"]
    assert (earlier.record, later.record) == (visits[1], visits[2])
    assert _views(patient) == 1
    html = response.content.decode()
    assert re.findall(r'<option value="(\d+)" selected>', html) == [
        str(visits[1].pk),
        str(visits[2].pk),
    ]


def test_two_chosen_visits_are_compared_in_time_order_and_marked_on_the_trend(
    client, doctor, patient, visits
):
    client.force_login(doctor)

    response = client.get(_url(patient, a=visits[2].pk, b=visits[0].pk))

    assert response.status_code == 200
    earlier, later = response.context["pair"]
    assert (earlier.record, later.record) == (visits[0], visits[2])
    va_chart = response.context["va_chart"]
    assert [(mark.label, mark.position) for mark in va_chart.marks] == [
        ("A", va_chart.series[0].points[0].x),
        ("B", va_chart.series[0].points[2].x),
    ]
    html = response.content.decode()
    assert html.count('class="mark"') == 4  # A and B on the VA and the IOP chart
    summary = re.search(r'<table id="compare-summary">.*?</table>', html, re.S).group(0)
    cells = [
        re.sub(r"<[^>]+>|\s+", " ", row).split()
        for row in re.findall(r"<tr>.*?</tr>", summary, re.S)
    ]
    assert cells[1] == ["VA", "OD", "4.7", "4.6"]  # the clinic's notation, 5-point
    assert cells[3] == ["IOP", "OD", "22.0", "25.0"]


def test_the_visits_acuity_is_shown_in_the_viewers_notation(client, doctor, patient, visits):
    StaffProfile.objects.create(user=doctor, va_notation="decimal")
    client.force_login(doctor)

    html = client.get(_url(patient, a=visits[0].pk, b=visits[2].pk)).content.decode()

    assert re.findall(r'data-acuity="va_od">([^<]*)</td>', html) == ["0.5", "0.4"]
    assert "<h3>Visual acuity (decimal)</h3>" in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"a": "x", "b": "1"}, "Choose two visits to compare."),
        ({"a": "1"}, "Choose two visits to compare."),
        ({"a": "7", "b": "7"}, "Choose two different visits to compare."),
    ],
)
def test_a_malformed_choice_is_a_bad_request(client, doctor, patient, visits, query, message):
    client.force_login(doctor)

    response = client.get(_url(patient, **query))

    assert (response.status_code, response.content.decode()) == (400, message)
    assert _views(patient) == 0


def test_an_unknown_visit_is_not_found(client, doctor, patient, visits):
    client.force_login(doctor)

    response = client.get(_url(patient, a=visits[0].pk, b=999_999))

    assert response.status_code == 404
    assert _views(patient) == 0


def test_another_patients_visit_is_refused(client, doctor, patient, technician, visits):
    other = _visit(PatientFactory(created_by=technician), technician, 5)
    client.force_login(doctor)

    response = client.get(_url(patient, a=visits[0].pk, b=other.pk))

    assert response.status_code == 404
    assert _views(patient) == 0
    assert other.patient.name not in response.content.decode()


def test_a_patient_with_one_visit_is_told_that_comparing_needs_two(client, doctor, patient, record):
    client.force_login(doctor)

    response = client.get(_url(patient))

    assert response.status_code == 200
    assert response.context["pair"] is None
    assert "Comparing needs at least two visits of this patient." in response.content.decode()


def test_a_patient_account_may_not_compare_visits(client, patient_user, patient, visits):
    client.force_login(patient_user)

    response = client.get(_url(patient))

    assert response.status_code == 403
    assert _views(patient) == 0


def test_the_patient_page_links_to_the_comparison(client, doctor, patient, visits):
    client.force_login(doctor)

    html = client.get(reverse("pages:patient-detail", args=[patient.patient_id])).content.decode()

    assert f'href="{_url(patient)}"' in html


def test_each_eye_shows_both_visits_photos_findings_and_conclusions(
    client, doctor, technician, patient, photo_file
):
    package = multiclass_package()
    dr = ModelPackageFactory(name="odir-demo", version="1.2.0", demonstration=False)
    first = make_analysed(
        _visit(patient, technician, 200),
        technician,
        photo_file,
        package,
        od=MULTICLASS_GLAUCOMA,
        os_=[],
    )
    make_analysed(_visit(patient, technician, 2), technician, photo_file, dr, od=NORMAL, os_=NORMAL)
    DoctorReview.objects.create(
        record=first,
        doctor=doctor,
        conclusion_codes=["glaucoma_suspect"],
        recommendation="refer",
        signed_at=timezone.now(),
        conclusion_codes_od=["glaucoma_suspect"],
        diagnosis_codes_od=["H40.0"],
        conclusion_text_od="视盘凹陷扩大",
        recommendation_od="refer",
    )
    client.force_login(doctor)

    response = client.get(_url(patient))

    html = response.content.decode()
    od = re.search(
        r'<section class="card compare-eye" id="compare-OD".*?</section>', html, re.S
    ).group(0)
    a, b = od.split('data-visit="B"')
    # the photos, in viewers synchronised per eye
    photos_a = json.loads(re.search(r'data-photos="([^"]*)"', a).group(1).replace("&quot;", '"'))
    od_first = first.images.get(eye="OD")
    assert [p["src"] for p in photos_a] == [
        reverse("screening:fundus-image-file", args=[od_first.pk])
    ]
    assert len(photos_a[0]["heatmaps"]) == 1
    assert photos_a[0]["heatmaps"][0]["label"] == "Glaucoma (0.62)"
    assert 'data-sync="compare-OD"' in a and 'data-sync="compare-OD"' in b
    # the AI findings per visit, with the model and the not-for-diagnosis wording
    assert "ophai-demo-screening 0.1.0" in a and "odir-demo 1.2.0" in b
    assert "Demonstration model — not for diagnosis" in a
    assert "Demonstration model — not for diagnosis" not in b  # a validated model
    # the doctor's per-eye conclusion where filled; none signed for the later visit
    assert "Glaucoma suspect" in a and "H40.0" in a and "视盘凹陷扩大" in a
    assert "Refer to an ophthalmologist" in a
    assert "No signed review" in b


def test_parse_and_pair_read_the_choice():
    with pytest.raises(VisitChoiceError):
        parse_visit_ids("3", "")
    assert parse_visit_ids(None, None) is None
    assert parse_visit_ids("4", "2") == (4, 2)
    assert visit_pair(visits=[], ids=None) is None


def test_the_page_reads_a_fixed_number_of_queries_however_many_photos(
    client, doctor, technician, patient, photo_file, django_assert_num_queries
):
    package = multiclass_package()
    visits = [
        make_analysed(
            _visit(patient, technician, days_ago), technician, photo_file, package, od=NORMAL
        )
        for days_ago in (30, 3)
    ]
    client.force_login(doctor)
    with django_assert_num_queries(20):
        client.get(_url(patient))
    retake = image_upload(
        actor=technician, record=visits[1], eye="OD", uploaded_file=photo_file(seed=42)
    )
    add_analysis(retake, package, findings=NORMAL)

    # session, user, permissions (2), patient, visits, audit; per visit: record, photos,
    # analyses, findings, review; the viewer's acuity notation; roles (2)
    with django_assert_num_queries(20):
        response = client.get(_url(patient))

    later_od = response.context["eyes"][0][2][1][2]
    assert len(later_od.photos) == 2
