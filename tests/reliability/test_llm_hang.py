"""The LLM endpoint accepts connections and never answers: the report is still produced in time.

A real default cluster runs the report task (`reports.tasks.generate_report_for_record`) with
LLM_BASE_URL pointing at a server in this test that accepts and holds every connection. The
summary must fall back to the template with the reason recorded, and the task must finish well
within its django-q2 timeout (a task past it is killed, and no report would exist).
"""

from __future__ import annotations

import signal

import pytest
from django_q.models import Task

from ai_engine.models import ModelPackage
from reports.models import Report
from screening.models import RecordStatus, ScreeningRecord
from screening.services import image_upload
from tests.factories import PatientFactory, ScreeningRecordFactory, UserFactory
from tests.reliability.processes import (
    HangingServer,
    require_postgresql,
    run_python,
    start_cluster,
    stop,
    wait_for,
    worker_env,
)
from tests.reliability.tally import TALLY, note
from tests.reports.conftest import add_analysis, sign

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("transactional_roles"),
]
LLM_TIMEOUT = 2
LLM_MAX_RETRIES = 1
TASK_TIMEOUT = 60


@pytest.fixture
def signed_record(settings, photo_file):
    settings.FUNDUS_ANALYSIS_TASK = ""  # results are written by hand below
    settings.REVIEW_SIGNED_TASK = ""  # the report task runs in the real cluster, not inline
    technician = UserFactory(role="technician")
    doctor = UserFactory(role="doctor")
    record = ScreeningRecordFactory(patient=PatientFactory(), operator=technician)
    package = ModelPackage.objects.create(
        name="odir-demo",
        version="1.2.0",
        task="multilabel",
        architecture="mobilenetv3_small_100",
        path="/nonexistent",
        weights_sha256="ab" * 32,
        card={"evidence": "demo"},
        is_active=True,
    )
    for eye, seed in (("OD", 1), ("OS", 2)):
        image = image_upload(
            actor=technician, record=record, eye=eye, uploaded_file=photo_file(seed=seed)
        )
        add_analysis(
            image,
            package,
            findings=[
                ("D", "糖尿病视网膜病变", "Diabetic retinopathy", 0.8, 0.5, ["黄斑区 macula"])
            ],
        )
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    record.refresh_from_db()
    sign(doctor, record)
    return record


def test_a_hanging_llm_falls_back_to_the_template_within_the_task_timeout(
    signed_record, settings, tmp_path
):
    require_postgresql()
    llm = HangingServer()
    env = worker_env(
        settings.MEDIA_ROOT,
        LLM_BASE_URL=llm.url,
        LLM_MODEL="qwen-test",
        LLM_API_KEY="sk-test",
        LLM_TIMEOUT=str(LLM_TIMEOUT),
        LLM_MAX_RETRIES=str(LLM_MAX_RETRIES),
        Q_TIMEOUT=str(TASK_TIMEOUT),
        Q_WORKERS="1",
    )
    cluster = start_cluster(env, name="default", log=tmp_path / "cluster.log")
    try:
        run_python(
            env,
            "from django_q.tasks import async_task; "
            f"async_task('reports.tasks.generate_report_for_record', {signed_record.pk})",
        )
        TALLY.faults_injected += 1
        assert wait_for(Report.objects.filter(record=signed_record).exists, 240, 0.2), (
            f"no report; see {tmp_path / 'cluster.log'}"
        )
        assert wait_for(Task.objects.filter(func__endswith="generate_report_for_record").exists, 30)
    finally:
        stop(cluster, signal.SIGKILL)
        llm.close()
    report = Report.objects.get(record=signed_record)
    task = Task.objects.get(func__endswith="generate_report_for_record")
    wall = (task.stopped - task.started).total_seconds()
    assert task.success, task.result
    assert (report.summary_source, report.summary_fallback_reason) == (
        "template",
        f"timed out after {LLM_TIMEOUT} s",
    )
    assert report.summary_final == report.summary_ai and report.summary_ai.strip()
    assert report.pdf
    assert llm.accepted == LLM_MAX_RETRIES + 1
    # each attempt waits LLM_TIMEOUT, plus the client's short back-off and the PDF
    assert LLM_TIMEOUT * (LLM_MAX_RETRIES + 1) <= wall < TASK_TIMEOUT
    TALLY.faults_survived += 1
    note(
        f"[fault] LLM endpoint accepts and never answers ({llm.accepted} connections held, "
        f"timeout {LLM_TIMEOUT} s, {LLM_MAX_RETRIES} retry): report v{report.version} with the "
        f"template summary ({report.summary_fallback_reason!r}) and a PDF in {wall:.1f} s "
        f"of a {TASK_TIMEOUT} s task timeout"
    )
