import pytest
from django.db import DatabaseError, connection, transaction

from core.audit import audit_log, audit_source
from core.models import AuditEvent
from tests.conftest import REQUIRE_SERVICES


@pytest.fixture
def event(db, doctor, patient):
    return audit_log(actor=doctor, action="view", obj=patient, patient_ref=patient.patient_id)


def test_an_event_records_actor_object_and_source(event, doctor, patient):
    assert (event.actor, event.actor_username, event.action) == (doctor, "doctor1", "view")
    assert (event.object_type, event.object_id, event.patient_ref) == (
        "patients.patient",
        str(patient.pk),
        patient.patient_id,
    )
    assert event.source == "system"


def test_the_source_of_tasks_and_commands_is_recorded(db, doctor, patient):
    with audit_source("task"):
        inner = audit_log(actor=None, action="update", obj=patient)
    assert inner.source == "task"
    assert inner.actor is None and inner.actor_username == ""


def test_the_orm_refuses_to_change_or_delete_events(event):
    event.action = "delete"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "view"


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        if REQUIRE_SERVICES:
            pytest.fail("the audit trigger must be tested on PostgreSQL in CI")
        pytest.skip("the append-only trigger exists on PostgreSQL")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE clinic_auditevent SET action = 'delete' WHERE id = %s",
        "DELETE FROM clinic_auditevent WHERE id = %s",
    ],
)
def test_postgresql_refuses_update_and_delete_even_in_raw_sql(event, statement):
    require_postgresql()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "view"


def test_bulk_queryset_updates_are_refused_by_postgresql(event):
    require_postgresql()
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="login")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.filter(pk=event.pk, action="view").exists()


def test_opening_a_patient_in_the_admin_is_logged_with_ip_and_request_id(client, doctor, patient):
    client.force_login(doctor)
    response = client.get(
        f"/admin/patients/patient/{patient.pk}/change/",
        REMOTE_ADDR="10.1.2.3",
        HTTP_USER_AGENT="pytest-browser",
    )
    assert response.status_code == 200
    event = AuditEvent.objects.get(action="view")
    assert (event.actor, event.patient_ref, event.source) == (doctor, patient.patient_id, "admin")
    assert (event.ip_address, event.user_agent) == ("10.1.2.3", "pytest-browser")
    assert event.request_id == response["X-Request-ID"]
