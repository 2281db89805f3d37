"""The Redis broker is down while photos are uploaded: nothing is lost once it is back.

A real web process (gunicorn) and a real `ai` cluster use a throwaway redis-server started by
this test as their broker and cache. Redis is killed, photos arrive through the REST API and
the web UI's upload endpoint, Redis is started again, and the reconciler (which queues photos
that have no analysis) gets them analysed by the real worker.
"""

from __future__ import annotations

import secrets
import signal
import time

import pytest
import requests
from django.conf import settings
from django.test import Client
from rest_framework_simplejwt.tokens import RefreshToken

from ai_engine.inference.package import write_package
from ai_engine.models import Analysis, AnalysisStatus
from ai_engine.services import package_register
from screening.models import FundusImage
from tests.ai_engine.inference.conftest import card_dict, tiny_model
from tests.conftest import fundus_like_jpeg
from tests.factories import PatientFactory, ScreeningRecordFactory, UserFactory
from tests.reliability.processes import (
    RedisServer,
    free_port,
    require_postgresql,
    run_python,
    start_cluster,
    start_web,
    stop,
    wait_for,
    worker_env,
)
from tests.reliability.tally import TALLY, note

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("transactional_roles"),
]
UPLOADS_PER_ENTRY_POINT = 2


def test_uploads_while_redis_is_down_are_kept_and_analysed_once_it_is_back(tmp_path):
    require_postgresql()
    folder = tmp_path / "pkg"
    card = card_dict(name="tiny-broker", version="0.1")
    write_package(folder, tiny_model(card), card)
    package_register(path=folder, activate=True)
    technician = UserFactory(role="technician")
    records = [
        ScreeningRecordFactory(patient=PatientFactory(), operator=technician) for _ in range(2)
    ]

    broker = RedisServer(tmp_path / "redis")
    broker.start()
    media = tmp_path / "media"
    env = worker_env(media, REDIS_URL=broker.url, AI_WORKERS="1")
    port = free_port()
    web_log = tmp_path / "web.log"
    web = start_web(env, port, log=web_log)
    cluster = None
    try:
        base = f"http://127.0.0.1:{port}"
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {RefreshToken.for_user(technician).access_token}"
        browser = Client()
        browser.force_login(technician)
        csrf = secrets.token_hex(16)
        ui = requests.Session()
        ui.cookies.set(
            settings.SESSION_COOKIE_NAME, browser.cookies[settings.SESSION_COOKIE_NAME].value
        )
        ui.cookies.set(settings.CSRF_COOKIE_NAME, csrf)
        ui.headers["X-CSRFToken"] = csrf

        broker.stop()
        TALLY.faults_injected += 1
        outcomes = []
        for n in range(UPLOADS_PER_ENTRY_POINT):
            for entry, session, url in (
                ("api", api, f"{base}/api/v1/records/{records[0].pk}/images/"),
                ("web", ui, f"{base}/screening/{records[1].pk}/photos/upload"),
            ):
                seed = 10 * n + (1 if entry == "api" else 2)
                response = session.post(
                    url,
                    data={"eye": "OD" if n == 0 else "OS"},
                    files={"file": (f"{entry}{n}.jpg", fundus_like_jpeg(seed=seed), "image/jpeg")},
                    timeout=60,
                )
                outcomes.append((entry, response.status_code, response.text[:300]))
        statuses = [(entry, code) for entry, code, _ in outcomes]
        assert all(code == 201 for _, code in statuses), outcomes
        stored = FundusImage.objects.count()
        files = [p for p in media.rglob("*") if p.is_file() and "fundus" in p.parts]
        assert (stored, len(files)) == (2 * UPLOADS_PER_ENTRY_POINT,) * 2
        assert not Analysis.objects.exists()
        log = web_log.read_text(errors="replace")
        logged = log.count("Could not queue")
        assert logged == 2 * UPLOADS_PER_ENTRY_POINT, log[-3000:]
        # The API's upload throttle keeps its counters in Redis too: it steps aside, logged.
        unthrottled = log.count("Throttle 'upload' not applied, the cache is unavailable")
        assert unthrottled == UPLOADS_PER_ENTRY_POINT, log[-3000:]
        note(
            f"[fault] Redis broker killed; {len(outcomes)} uploads (API + web UI) → {statuses}; "
            f"{stored} photos + files committed, {logged} broker errors and {unthrottled} "
            "unapplied API throttles logged, 0 analyses yet"
        )

        broker.start()
        began = time.monotonic()
        cluster = start_cluster(env, log=tmp_path / "cluster.log")
        counts = run_python(
            env, "from ai_engine.tasks import reconcile_analyses; print(reconcile_analyses())"
        )
        assert f"'queued_missing': {stored}" in counts, counts
        finished = Analysis.objects.filter(
            status__in=(AnalysisStatus.DONE, AnalysisStatus.UNGRADABLE)
        )
        assert wait_for(lambda: finished.count() == stored, 240, 0.2), list(
            Analysis.objects.values_list("image_id", "status")
        )
    finally:
        if cluster is not None:
            stop(cluster, signal.SIGKILL)
        stop(web, signal.SIGKILL)
        broker.stop()
    assert sorted(Analysis.objects.values_list("image_id", flat=True)) == sorted(
        FundusImage.objects.values_list("pk", flat=True)
    )
    TALLY.faults_survived += 1
    note(
        f"[fault] Redis back: reconciler queued {stored} photos, the real worker analysed all "
        f"{stored} ({time.monotonic() - began:.0f} s); statuses "
        f"{sorted(set(Analysis.objects.values_list('status', flat=True)))}"
    )
