"""PostgreSQL unreachable before and in the middle of a request: a clear 503, nothing half written.

A real web process (gunicorn, DEBUG off) reaches the test database through a TCP proxy in this
test. The proxy is cut (a) the moment the web process sends the INSERT of the audit row, after
the patient's INSERT went through in the same transaction, and (b) before requests arrive.
Then it is restored and the same web process serves again without a restart.
"""

from __future__ import annotations

import signal

import pytest
import requests
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpResponse
from django.test import Client
from django.urls import path
from rest_framework_simplejwt.tokens import RefreshToken

from core.errors import MESSAGES
from core.models import AuditEvent
from patients.models import Patient
from screening.models import FundusImage
from tests.conftest import fundus_like_jpeg
from tests.factories import PatientFactory, ScreeningRecordFactory, UserFactory
from tests.reliability.processes import (
    TcpProxy,
    database_url,
    free_port,
    require_postgresql,
    start_web,
    stop,
    worker_env,
)
from tests.reliability.tally import TALLY, note

EN = MESSAGES["en"]
ZH = MESSAGES["zh"]
AUDIT_INSERT = b'INSERT INTO "clinic_auditevent"'


# --------------------------------------------------------------------------- in-process


def _raise_operational(request):
    raise OperationalError("server closed the connection unexpectedly")


def _raise_interface(request):
    raise InterfaceError("connection already closed")


def _fine(request):
    return HttpResponse("ok")


urlpatterns = [
    path("page", _raise_operational),
    path("api/v1/thing", _raise_interface),
    path("fine", _fine),
]


@pytest.mark.urls("tests.reliability.test_database_outage")
def test_database_errors_from_a_view_become_a_503_page_or_api_error(client, db):
    page = client.get("/page")
    assert (page.status_code, page["Retry-After"], page["Content-Type"]) == (
        503,
        "30",
        "text/html; charset=utf-8",
    )
    assert EN in page.content.decode() and ZH in page.content.decode()

    api = client.get("/api/v1/thing", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert api.status_code == 503
    assert api.json() == {"error": {"code": "database_unavailable", "message": ZH, "fields": {}}}
    assert client.get("/fine").status_code == 200


# --------------------------------------------------------------------------- real processes


@pytest.fixture
def web_behind_proxy(transactional_roles, tmp_path):
    require_postgresql()
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    port = free_port()
    media = tmp_path / "media"
    env = worker_env(
        media,
        DATABASE_URL=database_url(host="127.0.0.1", port=proxy.port),
        FUNDUS_ANALYSIS_TASK="",  # no queue in this test: the database is the fault
    )
    web = start_web(env, port, log=tmp_path / "web.log")
    try:
        yield f"http://127.0.0.1:{port}", proxy, media
    finally:
        stop(web, signal.SIGKILL)
        proxy.close()


def _counts() -> tuple[int, int, int]:
    return Patient.objects.count(), AuditEvent.objects.count(), FundusImage.objects.count()


def _files(media) -> list[str]:
    return sorted(str(p) for p in media.rglob("*") if p.is_file()) if media.exists() else []


def test_a_cut_database_answers_503_and_leaves_no_partial_rows(web_behind_proxy):
    base, proxy, media = web_behind_proxy
    technician = UserFactory(role="technician")
    record = ScreeningRecordFactory(patient=PatientFactory(), operator=technician)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {RefreshToken.for_user(technician).access_token}"
    browser = Client()
    browser.force_login(technician)
    web = requests.Session()
    web.cookies.set(
        settings.SESSION_COOKIE_NAME, browser.cookies[settings.SESSION_COOKIE_NAME].value
    )
    new_patient = {"name": "断线测试", "sex": "female", "date_of_birth": "1970-05-01"}

    assert api.get(f"{base}/api/v1/patients/", timeout=30).status_code == 200
    before = _counts()

    # (a) cut in the middle of the transaction: after the patient's INSERT, before its audit row
    proxy.cut_when(AUDIT_INSERT)
    response = api.post(f"{base}/api/v1/patients/", json=new_patient, timeout=30)
    TALLY.faults_injected += 1
    assert proxy.cuts == 1, "the proxy never saw the audit INSERT"
    assert response.status_code == 503, response.text[:500]
    assert response.json()["error"]["code"] == "database_unavailable"
    assert _counts() == before
    TALLY.faults_survived += 1
    note(
        "[fault] PostgreSQL cut mid-transaction (patient INSERT sent, audit INSERT dropped): "
        f"503 {response.json()['error']['message']!r}; patients/audit rows unchanged {before[:2]}"
    )

    # the same for a photo upload: its file was stored before the transaction
    proxy.restore()
    proxy.cut_when(AUDIT_INSERT)
    response = api.post(
        f"{base}/api/v1/records/{record.pk}/images/",
        data={"eye": "OD"},
        files={"file": ("od.jpg", fundus_like_jpeg(seed=5), "image/jpeg")},
        timeout=30,
    )
    TALLY.faults_injected += 1
    assert (proxy.cuts, response.status_code) == (2, 503), response.text[:500]
    assert (_counts(), _files(media)) == (before, [])
    TALLY.faults_survived += 1
    note("[fault] PostgreSQL cut mid-upload: 503, no photo row, no file under MEDIA_ROOT")

    # (b) the database is unreachable before the requests arrive
    proxy.cut()
    TALLY.faults_injected += 1
    page = web.get(f"{base}/", timeout=30)
    listing = api.get(f"{base}/api/v1/patients/", timeout=30)
    health = requests.get(f"{base}/healthz", timeout=30)
    assert (page.status_code, listing.status_code, health.status_code) == (503, 503, 503)
    assert EN in page.text and ZH in page.text
    assert listing.json()["error"]["code"] == "database_unavailable"
    assert health.json()["checks"]["database"]["ok"] is False
    TALLY.faults_survived += 1
    note("[fault] PostgreSQL unreachable: web page, API and /healthz all 503 with the message")

    # back: the same web process serves and writes again
    proxy.restore()
    response = api.post(f"{base}/api/v1/patients/", json=new_patient, timeout=30)
    assert response.status_code == 201, response.text[:500]
    created = Patient.objects.get(patient_id=response.json()["patient_id"])
    assert AuditEvent.objects.filter(action="create", object_id=str(created.pk)).count() == 1
    assert web.get(f"{base}/", timeout=30).status_code == 200
    note("[fault] PostgreSQL back: the same web process creates the patient and its audit row")
