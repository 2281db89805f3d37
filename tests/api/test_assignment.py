"""The API's share of assignment: the worklist's assigned_to filter and the assign endpoint."""

from __future__ import annotations

from django.urls import reverse

from core.models import AuditEvent
from screening.models import RecordStatus, ScreeningRecord
from tests.factories import ScreeningRecordFactory, UserFactory


def _analysed(technician, **extra) -> ScreeningRecord:
    record = ScreeningRecordFactory(operator=technician)
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED, **extra)
    return record


def _ids(response) -> list[int]:
    return [item["id"] for item in response.json()["results"]]


def test_the_worklist_filters_by_assignment(as_doctor, doctor, technician):
    other = UserFactory(username="doctor2", role="doctor")
    mine = _analysed(technician, assigned_doctor=doctor)
    _analysed(technician, assigned_doctor=other)
    nobody = _analysed(technician)
    url = reverse("api-v1:worklist")

    assert _ids(as_doctor.get(url, {"assigned_to": "me"})) == [mine.pk]
    assert _ids(as_doctor.get(url, {"assigned_to": "none"})) == [nobody.pk]
    assert len(_ids(as_doctor.get(url))) == 3
    assert as_doctor.get(url, {"assigned_to": "me"}).json()["results"][0]["assigned_doctor"] == (
        doctor.pk
    )


def test_an_unknown_assigned_to_is_a_400(as_doctor):
    response = as_doctor.get(reverse("api-v1:worklist"), {"assigned_to": "everyone"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"assigned_to": ['Use "me" or "none".']}


def test_a_doctor_assigns_by_the_api(as_doctor, doctor, technician):
    record = _analysed(technician)
    url = reverse("api-v1:record-assign", args=[record.pk])

    response = as_doctor.post(url, {"doctor": doctor.pk}, format="json")

    assert (response.status_code, response.json()) == (
        200,
        {"id": record.pk, "assigned_doctor": doctor.pk},
    )
    event = AuditEvent.objects.get(object_type="screening.screeningrecord", action="update")
    assert (event.source, event.changes) == ("api", {"assigned_doctor": [None, "doctor1"]})
    response = as_doctor.post(url, {"doctor": None}, format="json")
    assert response.json() == {"id": record.pk, "assigned_doctor": None}


def test_the_api_refuses_technicians_non_doctors_and_signed_screenings(
    as_doctor, as_tech, doctor, technician
):
    record = _analysed(technician)
    url = reverse("api-v1:record-assign", args=[record.pk])
    assert as_tech.post(url, {"doctor": doctor.pk}, format="json").status_code == 403
    refused = as_doctor.post(url, {"doctor": technician.pk}, format="json")
    assert (refused.status_code, refused.json()["error"]["fields"]) == (
        400,
        {"doctor": ["tech1 is not a doctor."]},
    )
    assert as_doctor.post(url, {"doctor": 999999}, format="json").status_code == 400
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.REVIEWED)
    assert as_doctor.post(url, {"doctor": doctor.pk}, format="json").status_code == 400
    assert ScreeningRecord.objects.get(pk=record.pk).assigned_doctor is None
    assert not AuditEvent.objects.filter(object_type="screening.screeningrecord").exists()
