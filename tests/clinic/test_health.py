import datetime as dt

import pytest
from django.core.files.storage import storages
from django.db import DatabaseError
from django.utils import timezone

from clinic.models import WorkerHeartbeat
from clinic.tasks import heartbeat
from tests.clinic.conftest import ACCESS_KEY, SECRET_KEY, use_bucket
from tests.silent_server import silent_server


def test_healthz_reports_degraded_without_workers_or_models(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"] == {"ok": True, "kind": "orm", "queued": 0}
    assert body["checks"]["workers"]["ok"] is False
    assert body["checks"]["models"]["ok"] is False
    assert body["checks"]["media"]["storage"] == "local"


def test_little_free_disk_under_a_local_media_root_only_degrades(client, db, settings):
    settings.HEALTH_MIN_FREE_DISK_GB = 10**9

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    media = response.json()["checks"]["media"]
    assert (media["ok"], media["storage"]) == (False, "local")
    assert media["free_gb"] >= 0


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


def test_healthz_is_degraded_when_only_a_quality_model_is_active(client, db, tmp_path):
    from ai_engine.inference.package import write_package
    from ai_engine.services import package_register
    from tests.ai_engine.inference.conftest import quality_card_dict, tiny_model

    card = quality_card_dict()
    write_package(tmp_path / "quality", tiny_model(card), card)
    package_register(path=tmp_path / "quality", activate=True)
    heartbeat("default")
    heartbeat("ai")
    body = client.get("/healthz").json()
    models = body["checks"]["models"]
    assert (models["ok"], models["active"]) == (False, ["tiny-quality 0.1 (quality)"])
    assert body["status"] == "degraded"


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


# --- media on an S3-compatible bucket (moto on loopback, tests/clinic/conftest.py) -----------
def test_a_reachable_bucket_is_the_media_check(client, db, bucket):
    response = client.get("/healthz")

    assert response.status_code == 200
    media = response.json()["checks"]["media"]
    assert (media["ok"], media["storage"]) == (True, "s3")
    assert set(media) == {"ok", "storage", "ms"}


def assert_fails_without_secrets(response, media: dict) -> None:
    """503 (out of the load balancer) and nothing about the endpoint or the keys."""
    assert response.status_code == 503
    assert response.json()["status"] == "fail"
    assert response.json()["checks"]["media"] == media
    for secret in (ACCESS_KEY, SECRET_KEY, "127.0.0.1"):
        assert secret not in response.content.decode()


def test_an_unreachable_bucket_fails_the_health_check(client, db, unreachable_bucket):
    response = client.get("/healthz")

    assert_fails_without_secrets(
        response, {"ok": False, "storage": "s3", "error": "EndpointConnectionError"}
    )


def test_a_missing_bucket_fails_with_the_servers_answer(
    client, db, s3_endpoint, monkeypatch, settings
):
    use_bucket(monkeypatch, settings, endpoint=s3_endpoint, bucket="ophai-no-such-bucket")

    response = client.get("/healthz")

    assert_fails_without_secrets(
        response, {"ok": False, "storage": "s3", "error": "ClientError", "code": "404"}
    )


@pytest.fixture
def silent_endpoint(monkeypatch, settings):
    """A bucket endpoint that accepts connections and never answers; yields the connections."""
    with silent_server() as (url, accepted):
        use_bucket(monkeypatch, settings, endpoint=url, bucket="ophai-media")
        yield accepted


def test_a_bucket_that_does_not_answer_fails_the_check_after_one_try(client, db, silent_endpoint):
    response = client.get("/healthz")

    assert_fails_without_secrets(
        response, {"ok": False, "storage": "s3", "error": "ReadTimeoutError"}
    )
    assert len(silent_endpoint) == 1  # no retry


def test_the_bucket_probe_gives_up_within_two_seconds_by_configuration(db, bucket):
    # Timings belong in bench/: the bound is what the probe's client is configured with,
    # ≤ 1 s to connect plus ≤ 1 s for the reply, one attempt; uploads keep their own budget.
    storage = storages["default"]
    probe = storage._health_client.meta.config
    uploads = storage.connection.meta.client.meta.config

    assert (probe.connect_timeout, probe.read_timeout, probe.retries) == (
        1,
        1,
        {"total_max_attempts": 1, "mode": "standard"},
    )
    assert (uploads.connect_timeout, uploads.read_timeout, uploads.retries) == (
        5,
        30,
        {"total_max_attempts": 3, "mode": "standard"},
    )
