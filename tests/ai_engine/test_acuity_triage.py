"""Triage reads the uncorrected acuity in any notation, low-vision categories included."""

from __future__ import annotations

import pytest

from ai_engine.services import triage_update
from screening.services import image_upload, record_update
from tests.ai_results import MULTICLASS_NORMAL_WINS, add_analysis, multiclass_package


@pytest.fixture
def package(db):
    return multiclass_package()


@pytest.mark.parametrize(("entered", "shown"), [("指数/30cm", "0.012"), ("4.0", "0.1")])
def test_low_vision_with_a_normal_looking_photo_is_flagged_whatever_the_notation(
    record, technician, photo_file, package, entered, shown
):
    record_update(actor=technician, record=record, va_od=entered)
    image = image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file())
    add_analysis(image, package, findings=MULTICLASS_NORMAL_WINS)

    triage = triage_update(record=record)

    assert [(r["code"], r["eye"], r["params"]) for r in triage.reasons] == [
        ("low_vision_normal_photo", "OD", {"va": shown})
    ]
