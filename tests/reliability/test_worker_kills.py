"""SIGKILL the AI worker in the middle of inference, K times: no photo loses or doubles its result.

A real `ai` cluster (ORM broker on PostgreSQL) analyses three camera photos of three visits.
Each time an analysis is running, the worker process (the cluster's child that loaded torch,
as the OOM killer would pick it) gets SIGKILL; django-q2 replaces it and the next task starts.
Then the reconciler — a subprocess with a short AI_TASK_TIMEOUT, so the killed analyses are
stale at once — queues them again and the same cluster finishes them.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from PIL import Image

from ai_engine.inference.package import write_package
from ai_engine.models import Analysis, AnalysisStatus
from ai_engine.services import package_register
from screening.models import FundusImage, RecordStatus, ScreeningRecord
from tests.ai_engine.inference.conftest import card_dict, tiny_model
from tests.factories import PatientFactory, ScreeningRecordFactory, UserFactory
from tests.reliability.processes import (
    busiest_worker,
    require_postgresql,
    run_python,
    start_cluster,
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
KILLS = 3
PHOTOS = ("1.jpg", "10.jpg", "11.jpg")


@pytest.fixture
def three_photos(tmp_path, shared_data):
    media = tmp_path / "media"
    (media / "fundus").mkdir(parents=True)
    folder = tmp_path / "pkg"
    card = card_dict(name="tiny-kill", version="0.1")
    write_package(folder, tiny_model(card), card)
    package_register(path=folder, activate=True)
    technician = UserFactory(role="technician")
    images = []
    for name in PHOTOS:
        source = shared_data / "highres" / name
        (media / "fundus" / name).write_bytes(source.read_bytes())
        with Image.open(source) as img:
            width, height = img.size
        # One visit per photo, so each task analyses one photo (a visit's photos are batched).
        record = ScreeningRecordFactory(
            patient=PatientFactory(), operator=technician, status=RecordStatus.IMAGES_UPLOADED
        )
        images.append(
            FundusImage.objects.create(
                record=record,
                eye="OD",
                file=f"fundus/{name}",
                sha256=name.ljust(64, "0"),
                width=width,
                height=height,
                format="JPEG",
                mode="RGB",
                size_bytes=source.stat().st_size,
                uploaded_by=technician,
            )
        )
    return media, images


def test_sigkill_of_the_ai_worker_during_inference_loses_and_doubles_nothing(
    three_photos, tmp_path
):
    require_postgresql()
    media, images = three_photos
    env = worker_env(media, AI_TASK_TIMEOUT="120", AI_TASK_RETRY="600", AI_WORKERS="1")
    reconcile_env = {**env, "AI_TASK_TIMEOUT": "1", "AI_RECONCILE_GRACE": "1"}
    cluster = start_cluster(env, log=tmp_path / "cluster.log")
    killed: list[int] = []
    began = time.monotonic()
    try:
        ids = ", ".join(str(image.pk) for image in images)
        run_python(
            env,
            "from django_q.tasks import async_task\n"
            f"for pk in ({ids},): async_task('ai_engine.tasks.analyse_image', pk, cluster='ai')",
        )
        for _ in range(KILLS):
            running = Analysis.objects.filter(status=AnalysisStatus.RUNNING).exclude(pk__in=killed)
            assert wait_for(running.exists, 180, 0.02), (
                f"no analysis started; see {tmp_path / 'cluster.log'}"
            )
            analysis = running.get()
            # At once: the whole task (decode, quality, forward, CAMs) takes ~0.2 s on an idle
            # machine now, so a fixed pause could outlast it; the kill lands mid-task either way.
            os.kill(busiest_worker(cluster), signal.SIGKILL)
            TALLY.faults_injected += 1
            analysis.refresh_from_db()
            assert analysis.status == AnalysisStatus.RUNNING, "finished before the kill landed"
            killed.append(analysis.pk)
            note(
                f"[fault] SIGKILL ai worker during inference of photo {analysis.image_id} "
                f"(attempt {analysis.attempts}) at {time.monotonic() - began:.1f} s"
            )
        assert sorted(killed) == sorted(
            Analysis.objects.filter(status=AnalysisStatus.RUNNING).values_list("pk", flat=True)
        )
        time.sleep(2.5)  # past the reconciler's 1 s timeout + 1 s grace
        counts = run_python(
            reconcile_env,
            "from ai_engine.tasks import reconcile_analyses; print(reconcile_analyses())",
        )
        assert f"'requeued_running': {KILLS}" in counts, counts
        finished = Analysis.objects.filter(
            status__in=(AnalysisStatus.DONE, AnalysisStatus.UNGRADABLE)
        )
        assert wait_for(lambda: finished.count() == len(images), 240, 0.2), list(
            Analysis.objects.values_list("image_id", "status", "attempts")
        )
    finally:
        stop(cluster, signal.SIGKILL)
    per_photo = {
        image.pk: list(Analysis.objects.filter(image=image).values_list("status", "attempts"))
        for image in images
    }
    assert per_photo == {image.pk: [(AnalysisStatus.DONE, 2)] for image in images}
    assert not Analysis.objects.filter(
        status__in=(AnalysisStatus.QUEUED, AnalysisStatus.RUNNING, AnalysisStatus.FAILED)
    ).exists()
    assert all(analysis.findings.count() == 8 for analysis in Analysis.objects.all())
    assert set(ScreeningRecord.objects.values_list("status", flat=True)) == {RecordStatus.ANALYSED}
    TALLY.faults_survived += KILLS
    note(
        f"[fault] {KILLS} worker SIGKILLs → {len(images)} photos, {len(images)} analyses "
        f"(1 each, done, 2 attempts, 8 findings), 0 queued/running/failed; "
        f"{time.monotonic() - began:.0f} s with the reconciler ({counts.strip().splitlines()[-1]})"
    )
