import datetime as dt

import pytest
from django.db import DatabaseError
from django.utils import timezone

from clinic.models import WorkerHeartbeat
from clinic.tasks import heartbeat


def test_healthz_reports_degraded_without_workers_or_models(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"] == {"ok": True, "kind": "orm", "queued": 0}
    assert body["checks"]["workers"]["ok"] is False
    assert body["checks"]["models"]["ok"] is False


@pytest.fixture
def active_package(db, tmp_path):
    from ai_engine.inference.package import write_package
    from ai_engine.services import package_register
    from tests.ai_engine.inference.conftest import card_dict, tiny_model

    card = card_dict(name="tiny-odir", version="0.1")
    write_package(tmp_path / "pkg", tiny_model(card), card)
    return package_register(path=tmp_path / "pkg", activate=True)


def test_healthz_is_ok_with_fresh_heartbeats_and_an_active_model(client, active_package):
    heartbeat("default")
    heartbeat("ai")
    body = client.get("/healthz").json()
    assert body["checks"]["workers"]["ok"] is True
    assert body["checks"]["models"]["active"] == ["tiny-odir 0.1"]
    assert body["status"] == "ok"


def test_a_stale_heartbeat_is_reported(client, db):
    WorkerHeartbeat.objects.create(
        cluster="ai", seen_at=timezone.now() - dt.timedelta(minutes=10), host="gpu1"
    )
    clusters = client.get("/healthz").json()["checks"]["workers"]["clusters"]
    assert clusters["ai"]["ok"] is False and clusters["ai"]["seconds_since_heartbeat"] >= 600


def test_healthz_answers_503_when_the_database_is_down(client, db, monkeypatch):
    from clinic import health

    def broken(*args, **kwargs):
        raise DatabaseError("connection refused")

    with monkeypatch.context() as patched:
        patched.setattr(health.connection, "cursor", broken)
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {"ok": False, "error": "DatabaseError"}


@pytest.mark.parametrize("name", ["clinic.heartbeat.default", "clinic.heartbeat.ai"])
def test_heartbeat_schedules_exist(db, name):
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name=name)
    assert schedule.func == "clinic.tasks.heartbeat"
