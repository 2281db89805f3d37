"""The DR grade, referable / vision-threatening decisions and their words, per eye."""

from __future__ import annotations

import pytest

from ai_engine.inference.diabetic import (
    DECISION_GRADE,
    DECISION_REFERABLE_THRESHOLD,
    dr_grade_words,
    eye_diabetic,
    is_dme_card,
    is_dr_card,
)


def dr_card(threshold: float | None = None) -> dict:
    grading = {"scheme": "icdr_0_4", "referable_from": 2, "vision_threatening_from": 3}
    if threshold is not None:
        grading["referable_threshold"] = threshold
    return {
        "name": "ophai-dr",
        "version": "1.0.0",
        "task": "multiclass",
        "labels": [{"code": f"dr{g}", "threshold": 0.5} for g in range(5)],
        "dr_grading": grading,
    }


DME_CARD = {
    "name": "ophai-dme",
    "version": "1.0.0",
    "task": "binary",
    "labels": [{"code": "DME", "threshold": 0.4}],
}
META = {"model_name": "", "model_version": "", "demonstration": True}


def grades(*p: float) -> dict[str, float]:
    return {f"dr{g}": v for g, v in enumerate(p)}


def test_grade_words_in_both_languages() -> None:
    assert dr_grade_words(2) == "中度非增殖期糖尿病视网膜病变 (R2)"
    assert dr_grade_words(4, "en") == "Proliferative diabetic retinopathy (R4)"


def test_card_kinds() -> None:
    assert is_dr_card(dr_card()) and not is_dme_card(dr_card())
    assert is_dme_card(DME_CARD) and not is_dr_card(DME_CARD)


def test_operating_point_makes_a_mild_grade_referable_and_says_why() -> None:
    eye = eye_diabetic("OD", [(dr_card(0.3), grades(0.2, 0.45, 0.25, 0.07, 0.03), META)])
    assert eye.dr.grade == 1
    assert eye.dr.p_referable == pytest.approx(0.35)
    assert eye.dr.referable and eye.dr.decision == DECISION_REFERABLE_THRESHOLD
    assert eye.referable and not eye.vision_threatening


def test_without_an_operating_point_the_grade_decides() -> None:
    eye = eye_diabetic("OS", [(dr_card(), grades(0.2, 0.45, 0.25, 0.07, 0.03), META)])
    assert not eye.dr.referable and eye.dr.decision == DECISION_GRADE


def test_severe_grade_or_oedema_threaten_vision() -> None:
    severe = eye_diabetic("OD", [(dr_card(0.3), grades(0.0, 0.1, 0.2, 0.6, 0.1), META)])
    assert severe.vision_threatening and severe.p_vision_threatening == pytest.approx(0.7)
    oedema = eye_diabetic(
        "OD",
        [
            (dr_card(0.3), grades(0.9, 0.05, 0.05, 0.0, 0.0), META),
            (DME_CARD, {"DME": 0.5}, META),
        ],
    )
    assert not oedema.dr.referable and oedema.dme.positive
    assert oedema.referable and oedema.vision_threatening
    assert oedema.p_vision_threatening == pytest.approx(0.5)
    assert oedema.to_dict("en")["dme"]["text"] == "Diabetic macular oedema"


def test_an_eye_without_diabetic_models_is_not_assessed() -> None:
    screening = {"task": "multiclass", "labels": [{"code": "N"}, {"code": "G"}]}
    eye = eye_diabetic("OD", [(screening, {"N": 0.9, "G": 0.1}, META)])
    assert not eye.assessed and eye.p_vision_threatening is None
    assert eye.to_dict() == {
        "dr": None,
        "dme": None,
        "referable": False,
        "vision_threatening": False,
        "p_vision_threatening": None,
    }


def test_a_vision_threatening_grade_is_always_referable_even_under_a_high_operating_point() -> None:
    # argmax R3 with P(>=R2) = 0.40 under a 0.5 operating point: severe NPDR is never "not
    # referable" (the page, triage and API would otherwise contradict each other).
    eye = eye_diabetic("OD", [(dr_card(0.5), grades(0.3, 0.3, 0.0, 0.4, 0.0), META)])
    assert eye.dr.grade == 3 and eye.dr.p_referable == pytest.approx(0.4)
    assert eye.dr.severe and eye.dr.referable and eye.referable


def test_the_card_evidence_travels_with_the_assessment() -> None:
    card = {**dr_card(0.3), "evidence": "one line", "evidence_zh": "中文证据"}
    eye = eye_diabetic("OD", [(card, grades(0.9, 0.1, 0.0, 0.0, 0.0), META)])
    assert eye.dr.evidence("zh-hans") == "中文证据" and eye.dr.evidence("en") == "one line"
    assert eye.to_dict("en")["dr"]["evidence"] == "one line"


def test_a_photo_the_dr_model_did_not_read_gets_no_grade() -> None:
    # a monochrome photo: the analysis is done, but colour models stored no findings
    eye = eye_diabetic("OD", [(dr_card(0.3), {}, META), (DME_CARD, {}, META)])
    assert not eye.assessed and eye.dr is None and not eye.referable
