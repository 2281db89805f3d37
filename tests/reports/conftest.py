"""Fixtures for report tests: a reviewed record with photos and AI findings, and PDF helpers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from screening.services import review_save_draft, review_sign
from tests.ai_results import add_analysis, make_analysed, overlay_png

__all__ = ["EVIDENCE", "add_analysis", "overlay_png", "pdf_text", "sign"]

EVIDENCE = "Macro-F1 0.71 on 1,204 held-out photos (demo data)"


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


@pytest.fixture
def analysed_record(record, technician, photo_file, package):
    """A record with a photo per eye and a done analysis each (DR positive in OD)."""
    return make_analysed(record, technician, photo_file, package)


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
