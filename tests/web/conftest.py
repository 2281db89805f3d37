"""Fixtures for the staff web UI: a model package, analyses with findings and heatmaps."""

from __future__ import annotations

import pytest

from tests.ai_results import NORMAL, add_analysis
from tests.ai_results import make_analysed as make_analysed_with

# The browser tests' fixtures (Chromium, a signed-in page, the serial live server).
from tests.web.browser import browser, page_for, roles, serial_live_server  # noqa: F401

__all__ = ["CARD", "DR_POSITIVE", "NORMAL", "add_analysis", "make_analysed"]

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


@pytest.fixture
def package(db):
    from tests.factories import ModelPackageFactory

    return ModelPackageFactory(card=CARD)


DR_POSITIVE = [
    ("D", "糖尿病视网膜病变", "Diabetic retinopathy", 0.83, 0.5, ["macula", "vascular_arcade"]),
    ("N", "正常", "Normal", 0.12, 0.5, []),
]


def make_analysed(record, technician, photo_file, package, *, od=DR_POSITIVE, **options):
    """tests.ai_results.make_analysed with the web tests' findings (named areas in OD)."""
    return make_analysed_with(record, technician, photo_file, package, od=od, **options)


@pytest.fixture
def analysed_record(record, technician, photo_file, package):
    return make_analysed(record, technician, photo_file, package)
