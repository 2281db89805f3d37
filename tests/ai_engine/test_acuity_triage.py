"""Triage reads the uncorrected acuity in any notation, low-vision categories included."""

from __future__ import annotations

import pytest
from django.utils import translation

from ai_engine.services import triage_update
from ai_engine.triage import triage_reason_text
from screening.services import image_upload, record_update
from tests.ai_results import MULTICLASS_NORMAL_WINS, add_analysis, multiclass_package


@pytest.fixture
def package(db):
    return multiclass_package()


@pytest.mark.parametrize(
    ("entered", "params"),
    [("指数/30cm", {"va": "0.012", "va_category": "CF"}), ("4.0", {"va": "0.1"})],
)
def test_low_vision_with_a_normal_looking_photo_is_flagged_whatever_the_notation(
    record, technician, photo_file, package, entered, params
):
    record_update(actor=technician, record=record, va_od=entered)
    image = image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file())
    add_analysis(image, package, findings=MULTICLASS_NORMAL_WINS)

    triage = triage_update(record=record)

    assert [(r["code"], r["eye"], r["params"]) for r in triage.reasons] == [
        ("low_vision_normal_photo", "OD", params)
    ]


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("zh-hans", "OD: 视力低下（指数），但眼底照片未见明显异常"),
        ("en", "OD: low vision (CF) with a normal-looking photo"),
    ],
)
def test_a_low_vision_category_is_named_as_the_clinic_wrote_it(
    record, technician, photo_file, package, language, text
):
    record_update(actor=technician, record=record, va_od="CF")
    image = image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file())
    add_analysis(image, package, findings=MULTICLASS_NORMAL_WINS)
    triage = triage_update(record=record)

    with translation.override(language):
        assert [triage_reason_text(reason) for reason in triage.reasons] == [text]
