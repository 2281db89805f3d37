"""End to end with real django-q2 worker processes, on PostgreSQL, with the ORM and the Redis broker.

The test process writes rows to the test database; `qcluster` subprocesses (the `ai` cluster,
production settings) do the work; nothing runs inline here.
"""

from __future__ import annotations

import signal
import time

import pytest
import redis

from ai_engine.inference.package import write_package
from ai_engine.models import Analysis, AnalysisStatus
from ai_engine.services import package_register
from screening.models import FundusImage
from tests.ai_engine.inference.conftest import card_dict, tiny_model
from tests.factories import PatientFactory, ScreeningRecordFactory, UserFactory
from tests.reliability.processes import (
    REDIS_URL,
    require_postgresql,
    require_redis,
    run_python,
    start_cluster,
    stop,
    wait_for,
    worker_env,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("transactional_roles"),
]


def enqueue(env: dict[str, str], image_id: int) -> None:
    run_python(
        env,
        f"from django_q.tasks import async_task; async_task('ai_engine.tasks.analyse_image', {image_id}, cluster='ai')",
    )


@pytest.fixture
def photo_on_disk(tmp_path, shared_data):
    """A registered tiny package and a stored camera-resolution photo (slow enough to interrupt)."""
    media = tmp_path / "media"
    (media / "fundus").mkdir(parents=True)
    source = shared_data / "highres" / "1.jpg"
    (media / "fundus" / "1.jpg").write_bytes(source.read_bytes())
    folder = tmp_path / "pkg"
    card = card_dict(name="tiny-worker", version="0.1")
    write_package(folder, tiny_model(card), card)
    package_register(path=folder, activate=True)
    technician = UserFactory(role="technician")
    record = ScreeningRecordFactory(
        patient=PatientFactory(), operator=technician, status="images_uploaded"
    )
    from PIL import Image

    with Image.open(source) as img:
        width, height = img.size
    image = FundusImage.objects.create(
        record=record,
        eye="OD",
        file="fundus/1.jpg",
        sha256="0" * 64,
        width=width,
        height=height,
        format="JPEG",
        mode="RGB",
        size_bytes=source.stat().st_size,
        uploaded_by=technician,
    )
    return media, image


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_a_real_worker_analyses_an_upload(photo_on_disk, broker):
    require_postgresql()
    extra = {}
    if broker == "redis":
        require_redis()
        redis.Redis.from_url(REDIS_URL).flushdb()
        extra = {"REDIS_URL": REDIS_URL}
    media, image = photo_on_disk
    env = worker_env(media, **extra)
    cluster = start_cluster(env)
    try:
        enqueue(env, image.pk)
        assert wait_for(
            lambda: Analysis.objects.filter(image=image, status=AnalysisStatus.DONE).exists(), 120
        ), (
            f"no finished analysis; statuses: {list(Analysis.objects.values_list('status', flat=True))}"
        )
    finally:
        stop(cluster)
    analysis = Analysis.objects.get(image=image)
    assert (analysis.attempts, analysis.findings.count()) == (1, 8)
    print(
        f"[{broker} broker] one photo analysed by a real worker in {analysis.timings['total']:.2f} s"
    )


def test_sigkill_during_inference_leaves_exactly_one_result(photo_on_disk):
    require_postgresql()
    media, image = photo_on_disk
    env = worker_env(media, AI_TASK_TIMEOUT="120", AI_TASK_RETRY="600")
    # The reconciler runs with a short timeout, so the killed analysis counts as stale at once.
    reconcile_env = {**env, "AI_TASK_TIMEOUT": "1", "AI_RECONCILE_GRACE": "1"}
    cluster = start_cluster(env)
    try:
        enqueue(env, image.pk)
        running = wait_for(
            lambda: Analysis.objects.filter(image=image, status=AnalysisStatus.RUNNING).exists(),
            120,
            0.01,
        )
        assert running, "the worker never started the analysis"
        stop(cluster, signal.SIGKILL)
        print("[fault] SIGKILLed the ai cluster while the analysis was running")
    finally:
        stop(cluster, signal.SIGKILL)
    assert Analysis.objects.get(image=image).status == AnalysisStatus.RUNNING

    cluster = start_cluster(env)
    try:
        time.sleep(3)  # past the reconciler's timeout + grace
        counts = run_python(
            reconcile_env,
            "from ai_engine.tasks import reconcile_analyses; print(reconcile_analyses())",
        )
        assert "'requeued_running': 1" in counts
        assert wait_for(
            lambda: Analysis.objects.filter(image=image, status=AnalysisStatus.DONE).exists(), 120
        )
    finally:
        stop(cluster)
    analysis = Analysis.objects.get(image=image)
    assert Analysis.objects.filter(image=image).count() == 1
    assert (analysis.attempts, analysis.findings.count()) == (2, 8)
    print("[fault] after restart + reconciler: 1 analysis, 8 findings, 2 attempts")
