"""The operations page: queue depth per cluster, worker heartbeats, per-stage AI timings and the
latest failures — for administrators only."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from django_q.brokers import get_broker

from ai_engine.models import Analysis, AnalysisStatus
from ai_engine.monitoring import analysis_stage_timings
from clinic.models import WorkerHeartbeat
from screening.services import image_upload
from tests.web.conftest import add_analysis

pytestmark = pytest.mark.django_db


@pytest.fixture
def analysed_photos(record, technician, photo_file, package):
    """Two photos on the CPU and one on a GPU, with their per-stage seconds; one failure."""
    images = [
        image_upload(actor=technician, record=record, eye=eye, uploaded_file=photo_file(seed=i))
        for i, eye in enumerate(("OD", "OS", "OD"))
    ]
    finished = timezone.now() - dt.timedelta(minutes=5)
    for image, device, forward in zip(
        images, ("cpu", "cpu", "cuda:0"), (0.2, 0.4, 0.01), strict=True
    ):
        analysis = add_analysis(image, package)
        Analysis.objects.filter(pk=analysis.pk).update(
            device=device,
            finished_at=finished,
            timings={"decode": 0.05, "forward": forward, "cam": 0.1, "total": forward + 0.15},
        )
    failed = add_analysis(images[0], package, status=AnalysisStatus.FAILED, run=2)
    Analysis.objects.filter(pk=failed.pk).update(
        finished_at=finished, attempts=3, error="CUDA out of memory (tried to allocate 2 GiB)"
    )
    return images


def test_stage_timings_are_per_device_in_the_order_the_stages_run(analysed_photos):
    rows = analysis_stage_timings(since=timezone.now() - dt.timedelta(hours=1))
    cpu = [(r.stage, r.count, r.p50, r.max) for r in rows if r.device == "cpu"]
    assert cpu == [
        ("decode", 2, 0.05, 0.05),
        ("forward", 2, pytest.approx(0.3), 0.4),
        ("cam", 2, 0.1, 0.1),
        ("total", 2, pytest.approx(0.45), pytest.approx(0.55)),
    ]
    assert [r.stage for r in rows if r.device == "cuda:0"] == ["decode", "forward", "cam", "total"]
    # outside the window nothing is counted
    assert analysis_stage_timings(since=timezone.now()) == []


def test_an_administrator_sees_queues_heartbeats_timings_and_failures(
    client, admin_user, analysed_photos
):
    # on the broker itself: the test settings run async_task synchronously
    for _ in range(3):
        get_broker("ai").enqueue("signed-task-payload")
    get_broker("default").enqueue("signed-task-payload")
    WorkerHeartbeat.objects.create(cluster="ai", host="gpu-host-1", seen_at=timezone.now())
    client.force_login(admin_user)

    response = client.get("/operations/")

    assert response.status_code == 200
    queues = {queue.cluster: (queue.waiting, queue.taken) for queue in response.context["queues"]}
    assert queues == {"default": (1, 0), "ai": (3, 0)}
    page = response.content.decode()
    assert "gpu-host-1" in page and "no worker has reported" in page  # default cluster silent
    assert "cuda:0" in page and "<td>model inference</td>" in page
    assert "CUDA out of memory" in page
    assert ("Failed", 1) in response.context["status_counts"]


def test_the_operations_page_is_for_administrators_only(client, doctor, technician, patient_user):
    for user in (doctor, technician, patient_user):
        client.force_login(user)
        assert client.get("/operations/").status_code == 403
    client.logout()
    assert client.get("/operations/").status_code == 302  # to sign-in


def test_the_menu_links_the_page_for_administrators_only(client, admin_user, doctor):
    client.force_login(admin_user)
    assert 'href="/operations/"' in client.get("/").content.decode()
    client.force_login(doctor)
    assert 'href="/operations/"' not in client.get("/").content.decode()


def test_an_unreachable_redis_broker_is_shown_not_a_500(client, admin_user, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "redis": settings.REDIS_URL}
    settings.Q_CLUSTER.pop("orm", None)
    from django_q.conf import Conf

    original = (Conf.ORM, Conf.REDIS)
    Conf.ORM, Conf.REDIS = None, settings.REDIS_URL
    try:
        client.force_login(admin_user)
        response = client.get("/operations/")
    finally:
        Conf.ORM, Conf.REDIS = original
    assert response.status_code == 200
    assert "Broker unreachable" in response.content.decode()
