"""Fixtures for the staff web UI: a model package, analyses with findings and heatmaps."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageDraw

from ai_engine.models import Analysis, AnalysisStatus, Finding, RecordTriage
from screening.models import RecordStatus, ScreeningRecord
from screening.services import image_upload

CARD = {
    "name": "odir-demo",
    "version": "1.2.0",
    "task": "multilabel",
    "architecture": "mobilenetv3_small_100",
    "input_size": 224,
    "labels": [
        {"code": "N", "zh": "正常", "en": "Normal", "threshold": 0.5},
        {
            "code": "D",
            "zh": "糖尿病视网膜病变",
            "en": "Diabetic retinopathy",
            "threshold": 0.5,
            "referable": True,
        },
        {"code": "G", "zh": "青光眼", "en": "Glaucoma", "threshold": 0.4, "referable": True},
    ],
    "training_data": "ODIR-5K training split, 5,000 patients (demo).",
    "validation": {"macro_f1": 0.712, "per_label": {"D": {"f1": 0.81, "auc": 0.9}}},
    "intended_use": "Demonstration of the screening workflow only.",
    "demonstration": True,
}


@pytest.fixture(autouse=True)
def _no_background_tasks(settings):
    """Client tests build AI results by hand; the real tasks are tested in their own apps."""
    settings.FUNDUS_ANALYSIS_TASK = ""
    settings.REVIEW_SIGNED_TASK = ""


def overlay_png(size: int = 64) -> bytes:
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((16, 16, 48, 48), fill=(255, 40, 0, 170))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def package(db):
    from tests.factories import ModelPackageFactory

    return ModelPackageFactory(card=CARD)


def add_analysis(image, package, *, findings=(), status=AnalysisStatus.DONE, run=1, reasons=()):
    """findings: (code, zh, en, probability, threshold, areas); positives get a heatmap."""
    analysis = Analysis.objects.create(
        image=image,
        package=package,
        run=run,
        model_name=package.name,
        model_version=package.version,
        weights_sha256=package.weights_sha256,
        demonstration=package.demonstration,
        status=status,
        quality_score=0.31 if status == AnalysisStatus.UNGRADABLE else 0.86,
        quality_gradable=None
        if status in (AnalysisStatus.QUEUED, AnalysisStatus.RUNNING)
        else status != AnalysisStatus.UNGRADABLE,
        quality_reasons=list(reasons),
    )
    for code, zh, en, probability, threshold, areas in findings:
        positive = probability >= threshold
        heatmap = (
            default_storage.save(
                f"heatmaps/test/{analysis.pk}-{code}.png", ContentFile(overlay_png())
            )
            if positive
            else ""
        )
        Finding.objects.create(
            analysis=analysis,
            label_code=code,
            label_zh=zh,
            label_en=en,
            probability=probability,
            threshold=threshold,
            positive=positive,
            heatmap=heatmap,
            abnormal_areas=list(areas),
        )
    return analysis


DR_POSITIVE = [
    ("D", "糖尿病视网膜病变", "Diabetic retinopathy", 0.83, 0.5, ["macula", "vascular_arcade"]),
    ("N", "正常", "Normal", 0.12, 0.5, []),
]
NORMAL = [
    ("D", "糖尿病视网膜病变", "Diabetic retinopathy", 0.21, 0.5, []),
    ("N", "正常", "Normal", 0.77, 0.5, []),
]


def make_analysed(
    record, technician, photo_file, package, *, od=DR_POSITIVE, os_=NORMAL, level="high", priority=2
):
    """Give `record` a photo per eye, a finished analysis each and a triage; status analysed."""
    image_od = image_upload(
        actor=technician, record=record, eye="OD", uploaded_file=photo_file(seed=record.pk * 2)
    )
    image_os = image_upload(
        actor=technician, record=record, eye="OS", uploaded_file=photo_file(seed=record.pk * 2 + 1)
    )
    add_analysis(image_od, package, findings=od)
    add_analysis(image_os, package, findings=os_)
    RecordTriage.objects.create(
        record=record,
        level=level,
        priority=priority,
        reasons=[
            {
                "code": "referable_finding",
                "eye": "OD",
                "params": {
                    "label_zh": "糖尿病视网膜病变",
                    "label_en": "Diabetic retinopathy",
                    "probability": 0.83,
                },
            }
        ],
    )
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    record.refresh_from_db()
    return record


@pytest.fixture
def analysed_record(record, technician, photo_file, package):
    return make_analysed(record, technician, photo_file, package)
