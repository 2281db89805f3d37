"""Fixtures for report tests: a reviewed record with photos and AI findings, and PDF helpers."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageDraw

from ai_engine.models import Analysis, AnalysisStatus, Finding, RecordTriage
from screening.models import RecordStatus, ScreeningRecord
from screening.services import image_upload, review_save_draft, review_sign

EVIDENCE = "Macro-F1 0.71 on 1,204 held-out photos (demo data)"


def overlay_png(size: int = 96) -> bytes:
    """A small heatmap-like overlay PNG (red blob on transparent), like the engine writes."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((size // 4, size // 4, size * 3 // 4, size * 3 // 4), fill=(255, 40, 0, 170))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def pdf_text(content: bytes, tmp_path: Path, name: str = "report.pdf") -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(autouse=True)
def _poppler():
    if shutil.which("pdftotext") is None:
        pytest.skip(
            "pdftotext (poppler-utils) is not installed: bash scripts/install_system_packages.sh"
        )


@pytest.fixture(autouse=True)
def _no_llm(settings):
    settings.LLM_BASE_URL = ""
    settings.LLM_MODEL = ""
    settings.LLM_API_KEY = ""
    settings.REPORT_VERIFY_BASE_URL = "https://clinic.example.org"


@pytest.fixture
def package(db):
    from tests.factories import ModelPackageFactory

    return ModelPackageFactory(card={"evidence": EVIDENCE})


def add_analysis(image, package, *, findings, status=AnalysisStatus.DONE, run=1, quality=0.86):
    analysis = Analysis.objects.create(
        image=image,
        package=package,
        run=run,
        model_name=package.name,
        model_version=package.version,
        weights_sha256=package.weights_sha256,
        demonstration=package.demonstration,
        status=status,
        quality_score=quality,
        quality_gradable=status != AnalysisStatus.UNGRADABLE,
        quality_reasons=[] if status != AnalysisStatus.UNGRADABLE else ["underexposed"],
    )
    for code, zh, en, probability, threshold, areas in findings:
        heatmap = ""
        if probability >= threshold:
            heatmap = default_storage.save(
                f"heatmaps/test/{analysis.pk}-{code}.png", ContentFile(overlay_png())
            )
        Finding.objects.create(
            analysis=analysis,
            label_code=code,
            label_zh=zh,
            label_en=en,
            probability=probability,
            threshold=threshold,
            positive=probability >= threshold,
            heatmap=heatmap,
            abnormal_areas=areas,
        )
    return analysis


@pytest.fixture
def analysed_record(record, technician, photo_file, package):
    """A record with a photo per eye and a done analysis each (DR positive in OD)."""
    od = image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file(seed=1))
    os_ = image_upload(actor=technician, record=record, eye="OS", uploaded_file=photo_file(seed=2))
    add_analysis(
        od,
        package,
        findings=[
            ("D", "糖尿病视网膜病变", "Diabetic retinopathy", 0.83, 0.5, ["黄斑区 macula"]),
            ("N", "正常", "Normal", 0.12, 0.5, []),
        ],
    )
    add_analysis(
        os_,
        package,
        findings=[
            ("D", "糖尿病视网膜病变", "Diabetic retinopathy", 0.21, 0.5, []),
            ("N", "正常", "Normal", 0.77, 0.5, []),
        ],
    )
    RecordTriage.objects.create(
        record=record,
        level="high",
        priority=2,
        reasons=[
            {
                "code": "referable_finding",
                "eye": "OD",
                "params": {
                    "label_zh": "糖尿病视网膜病变",
                    "label_en": "Diabetic retinopathy",
                    "probability": "0.83",
                },
            }
        ],
    )
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    record.refresh_from_db()
    return record


def sign(doctor, record, **overrides):
    fields = {
        "conclusion_codes": ["dr_moderate"],
        "conclusion_text": "右眼黄斑区可见硬性渗出",
        "recommendation": "refer",
        "follow_up_months": 3,
    }
    review = review_save_draft(doctor=doctor, record=record, **{**fields, **overrides})
    return review_sign(doctor=doctor, review=review)


@pytest.fixture
def signed_record(analysed_record, doctor):
    sign(doctor, analysed_record)
    analysed_record.refresh_from_db()
    return analysed_record
