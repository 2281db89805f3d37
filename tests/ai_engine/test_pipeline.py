"""Upload → django-q2 task → analyses, findings, heatmaps, triage (django-q2 runs inline in tests)."""

import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from ai_engine.models import Analysis, AnalysisStatus, Finding, RecordTriage
from ai_engine.selectors import record_ai_result
from ai_engine.services import analyses_claim, analyses_reconcile, analysis_rerun
from ai_engine.tasks import analyse_image
from screening.models import RecordStatus, ScreeningRecord
from screening.services import image_upload
from tests.ai_engine.inference.degraded import degraded_jpeg


@pytest.fixture
def right_eye(shared_data) -> Path:
    return shared_data / "reference" / "odir_11_right.jpg"


@pytest.fixture
def left_eye(shared_data) -> Path:
    return shared_data / "reference" / "odir_11_left.jpg"


def black_photo() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (512, 512), (0, 0, 0)).save(buffer, "JPEG")
    return SimpleUploadedFile("black.jpg", buffer.getvalue())


def test_an_upload_is_analysed_with_findings_heatmaps_and_triage(
    active_package, record, upload_photo, right_eye, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        image = upload_photo(record, "OD", right_eye)
    analysis = Analysis.objects.get(image=image)
    assert (analysis.status, analysis.attempts, analysis.run) == (AnalysisStatus.DONE, 1, 1)
    assert (analysis.model_name, analysis.model_version) == ("tiny-odir", "0.1")
    assert analysis.weights_sha256 == active_package.weights_sha256
    assert analysis.demonstration is True
    assert analysis.quality_gradable is True and analysis.quality_reasons == []
    assert analysis.device == "cpu"
    assert set(analysis.timings) >= {"decode", "crop", "quality", "forward", "cam", "total"}
    findings = list(analysis.findings.all())
    assert sorted(f.label_code for f in findings) == sorted("NDGCAHMO")
    assert all(0.0 <= f.probability <= 1.0 for f in findings)
    with_heatmap = [f for f in findings if f.heatmap]
    assert with_heatmap, "a heatmap is drawn for each positive finding, or the top one"
    for finding in with_heatmap:
        with default_storage.open(finding.heatmap.name, "rb") as handle, Image.open(handle) as png:
            assert png.format == "PNG"
            assert abs(png.width / png.height - image.width / image.height) < 0.02
    assert ScreeningRecord.objects.get(pk=record.pk).status == RecordStatus.ANALYSED
    assert RecordTriage.objects.filter(record=record).exists()


def test_a_black_photo_is_ungradable_with_reasons_and_no_diagnosis(
    active_package, record, technician, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        image = image_upload(actor=technician, record=record, eye="OS", uploaded_file=black_photo())
    analysis = Analysis.objects.get(image=image)
    assert analysis.status == AnalysisStatus.UNGRADABLE
    assert analysis.quality_gradable is False
    assert "no_fundus" in analysis.quality_reasons
    assert analysis.findings.count() == 0
    triage = RecordTriage.objects.get(record=record)
    assert [r["code"] for r in triage.reasons] == ["ungradable"]
    assert triage.level == "high"
    result = record_ai_result(record=record, language="en")
    assert result["eyes"]["OS"]["conclusion"] == "Image quality insufficient, please retake"
    assert result["eyes"]["OS"]["confidence"] is None


def test_running_the_task_twice_writes_one_result(
    active_package, record, upload_photo, right_eye, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        image = upload_photo(record, "OD", right_eye)
    findings_before = Finding.objects.count()
    assert analyse_image(image.pk) == f"photo {image.pk}: nothing to do"
    assert Analysis.objects.filter(image=image).count() == 1
    assert Finding.objects.count() == findings_before


def test_both_eyes_waiting_are_analysed_in_one_batch(
    active_package, record, upload_photo, right_eye, left_eye, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        od = upload_photo(record, "OD", right_eye)
        os_ = upload_photo(record, "OS", left_eye)
    assert len(callbacks) == 2
    callbacks[0]()  # the first task takes both photos
    assert set(Analysis.objects.values_list("image_id", "status")) == {
        (od.pk, "done"),
        (os_.pk, "done"),
    }
    callbacks[1]()  # the second finds nothing left to do
    assert Analysis.objects.count() == 2
    result = record_ai_result(record=record, language="zh")
    assert set(result["eyes"]) == {"OD", "OS"}
    for eye in ("OD", "OS"):
        summary = result["eyes"][eye]
        assert set(summary) >= {
            "conclusion",
            "confidence",
            "abnormal_areas",
            "findings",
            "models",
            "demonstration",
        }
        assert summary["demonstration"] is True
        assert summary["models"][0]["name"] == "tiny-odir"
    assert result["pending"] is False


def test_a_worker_killed_mid_task_is_recovered_by_the_reconciler(
    active_package, record, upload_photo, right_eye, settings, django_capture_on_commit_callbacks
):
    settings.FUNDUS_ANALYSIS_TASK = ""  # the upload queues nothing: we play the worker by hand
    image = upload_photo(record, "OD", right_eye)
    from ai_engine.services import analyses_ensure

    analyses_ensure(image=image)
    claimed = analyses_claim(image_ids=[image.pk])  # a worker takes it ... and is SIGKILLed
    assert [a.status for a in claimed] == ["running"]
    later = timezone.now() + dt.timedelta(
        seconds=settings.AI_TASK_TIMEOUT + settings.AI_RECONCILE_GRACE + 1
    )
    with django_capture_on_commit_callbacks(execute=True):
        counts = analyses_reconcile(now=later)
    assert counts["requeued_running"] == 1
    analysis = Analysis.objects.get(image=image)
    assert (analysis.status, analysis.attempts) == (AnalysisStatus.DONE, 2)
    assert Analysis.objects.filter(image=image).count() == 1


def test_an_analysis_that_keeps_killing_workers_is_failed_not_looped(
    active_package, record, upload_photo, right_eye, settings
):
    settings.FUNDUS_ANALYSIS_TASK = ""
    image = upload_photo(record, "OD", right_eye)
    from ai_engine.services import analyses_ensure

    analyses_ensure(image=image)
    Analysis.objects.filter(image=image).update(
        status=AnalysisStatus.RUNNING,
        attempts=settings.AI_MAX_ATTEMPTS,
        started_at=timezone.now() - dt.timedelta(days=1),
    )
    counts = analyses_reconcile()
    assert counts["failed_running"] == 1
    analysis = Analysis.objects.get(image=image)
    assert analysis.status == AnalysisStatus.FAILED
    assert "stopped responding 3 times" in analysis.error


def test_a_lost_task_and_a_photo_without_analysis_are_queued_again(
    active_package, record, upload_photo, right_eye, settings, django_capture_on_commit_callbacks
):
    settings.FUNDUS_ANALYSIS_TASK = ""  # as if the broker lost the upload's task
    image = upload_photo(record, "OD", right_eye)
    with django_capture_on_commit_callbacks(execute=True):
        counts = analyses_reconcile()
    assert counts["queued_missing"] == 1
    assert Analysis.objects.get(image=image).status == AnalysisStatus.DONE


def test_tampered_weights_fail_the_analysis_with_a_readable_error(
    active_package, record, upload_photo, right_eye, django_capture_on_commit_callbacks
):
    weights = Path(active_package.path) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"tampered")
    with django_capture_on_commit_callbacks(execute=True):
        image = upload_photo(record, "OD", right_eye)
    analysis = Analysis.objects.get(image=image)
    assert analysis.status == AnalysisStatus.FAILED
    assert "does not match" in analysis.error and "refusing to load" in analysis.error
    assert analysis.findings.count() == 0


def test_staff_rerun_makes_a_new_run_and_keeps_the_old(
    active_package,
    record,
    upload_photo,
    right_eye,
    technician,
    patient_user,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        image = upload_photo(record, "OD", right_eye)
    first = Analysis.objects.get(image=image)
    with pytest.raises(PermissionDenied):
        analysis_rerun(analysis=first, actor=patient_user)
    with django_capture_on_commit_callbacks(execute=True):
        second = analysis_rerun(analysis=first, actor=technician)
    second.refresh_from_db()
    assert (second.run, second.status, second.requested_by) == (2, AnalysisStatus.DONE, technician)
    assert Analysis.objects.filter(image=image).count() == 2
    assert first.findings.count() == 8


# Issue 14 item 17: blurred and occluded photos are ungradable with their reason; greyscale and
# red-free photos are fundus photos, gradable with limits, that no colour model reads.
@pytest.mark.parametrize(
    ("kind", "status", "reasons", "triage_code"),
    [
        ("blur", AnalysisStatus.UNGRADABLE, ["out_of_focus"], "ungradable"),
        ("occlusion", AnalysisStatus.UNGRADABLE, ["partial_field"], "ungradable"),
        ("greyscale", AnalysisStatus.DONE, ["monochrome"], "monochrome_photo"),
        ("red-free", AnalysisStatus.DONE, ["monochrome"], "monochrome_photo"),
    ],
)
def test_a_bad_real_photo_gets_no_diagnosis_and_says_why(
    kind,
    status,
    reasons,
    triage_code,
    active_package,
    record,
    technician,
    right_eye,
    django_capture_on_commit_callbacks,
):
    upload = SimpleUploadedFile(f"{kind}.jpg", degraded_jpeg(right_eye, kind))
    with django_capture_on_commit_callbacks(execute=True):
        image = image_upload(actor=technician, record=record, eye="OD", uploaded_file=upload)
    analysis = Analysis.objects.get(image=image)
    assert (analysis.status, analysis.quality_gradable, analysis.quality_reasons) == (
        status,
        status == AnalysisStatus.DONE,
        reasons,
    )
    assert analysis.findings.count() == 0
    triage = RecordTriage.objects.get(record=record)
    assert ([r["code"] for r in triage.reasons], triage.level) == ([triage_code], "high")
    eye = record_ai_result(record=record, language="en")["eyes"]["OD"]
    assert (eye["confidence"], eye["findings"], eye["referable"]) == (None, [], False)
    if status == AnalysisStatus.DONE:
        assert eye["review_required"] is True
        assert eye["conclusion"] == (
            "Monochrome fundus photo (greyscale or red-free): colour AI models not applicable, "
            "the doctor reviews the photo"
        )
        zh = record_ai_result(record=record, language="zh")["eyes"]["OD"]["conclusion"]
        assert zh == "单色眼底照片（灰度或无赤光）：彩色 AI 模型不适用，请医生阅片"
    else:
        assert eye["conclusion"] == "Image quality insufficient, please retake"
