from decimal import Decimal

from django.utils import translation

from ai_engine.triage import EyeFindings, triage_compute, triage_reason_text

GLAUCOMA = {
    "code": "G",
    "label_zh": "青光眼",
    "label_en": "glaucoma",
    "probability": 0.81,
    "referable": True,
}
CATARACT = {
    "code": "C",
    "label_zh": "白内障",
    "label_en": "cataract",
    "probability": 0.7,
    "referable": False,
}
NORMAL = {
    "code": "N",
    "label_zh": "正常",
    "label_en": "normal",
    "probability": 0.9,
    "referable": False,
}


def compute(eyes, iop=None, va=None):
    return triage_compute(
        eyes=eyes, iop=iop or {"OD": None, "OS": None}, va=va or {"OD": None, "OS": None}
    )


def test_glaucoma_suspicion_with_raised_pressure_in_the_same_eye_is_urgent():
    result = compute(
        [EyeFindings("OD", True, positive=[GLAUCOMA])],
        iop={"OD": Decimal("24.0"), "OS": Decimal("15")},
    )
    assert (result.level, result.priority) == ("urgent", 3)
    assert [r["code"] for r in result.reasons] == ["glaucoma_with_high_iop", "iop_high"]
    with translation.override("en"):
        assert triage_reason_text(result.reasons[0]) == "OD: glaucoma (p=0.81) with IOP 24.0 mmHg"
    with translation.override("zh-hans"):
        assert "青光眼" in triage_reason_text(result.reasons[0])


def test_a_referable_finding_without_pressure_is_high_and_a_minor_one_routine():
    assert compute([EyeFindings("OS", True, positive=[GLAUCOMA])]).level == "high"
    assert compute([EyeFindings("OS", True, positive=[CATARACT])]).level == "routine"


def test_low_vision_with_a_normal_looking_photo_is_flagged():
    result = compute(
        [EyeFindings("OD", True, positive=[NORMAL])],
        va={"OD": Decimal("0.2"), "OS": Decimal("1.0")},
    )
    assert result.level == "high"
    assert [(r["code"], r["eye"]) for r in result.reasons] == [("low_vision_normal_photo", "OD")]


def test_ungradable_and_failed_photos_ask_for_a_person():
    result = compute([EyeFindings("OD", False), EyeFindings("OS", None, failed=True)])
    assert [r["code"] for r in result.reasons] == ["ungradable", "analysis_failed"]
    assert result.level == "high"


def test_a_monochrome_photo_asks_the_doctor_to_read_it_not_for_a_retake():
    result = compute([EyeFindings("OD", True, monochrome=True)])
    assert (result.level, [(r["code"], r["eye"]) for r in result.reasons]) == (
        "high",
        [("monochrome_photo", "OD")],
    )
    with translation.override("en"):
        assert triage_reason_text(result.reasons[0]) == (
            "OD: monochrome photo (greyscale or red-free): colour AI not applicable, "
            "review the photo yourself"
        )
    with translation.override("zh-hans"):
        assert triage_reason_text(result.reasons[0]) == (
            "OD: 单色照片（灰度或无赤光）：彩色 AI 不适用，请直接阅片"
        )


def test_very_high_pressure_alone_is_urgent_and_nothing_at_all_is_none():
    assert compute([], iop={"OD": Decimal("35"), "OS": None}).level == "urgent"
    assert compute([EyeFindings("OD", True, positive=[NORMAL])]).level == "none"


# --- diabetic eyes: the grade and oedema by the card's rule (ai_engine.inference.diabetic) ---
from ai_engine.inference.diabetic import eye_diabetic  # noqa: E402
from tests.ai_results import DME_CARD, DR_CARD  # noqa: E402

META = {"model_name": "ophai-dr", "model_version": "0.3.0", "demonstration": True}


def diabetic(eye, grades, dme=None):
    results = [(DR_CARD, {f"dr{g}": p for g, p in enumerate(grades)}, META)]
    if dme is not None:
        results.append((DME_CARD, {"DME": dme}, META))
    return eye_diabetic(eye, results)


def test_severe_npdr_or_worse_is_urgent_with_the_grade_in_words():
    for grades, grade in (((0.05, 0.05, 0.2, 0.6, 0.1), 3), ((0.0, 0.05, 0.1, 0.25, 0.6), 4)):
        result = compute([EyeFindings("OD", True, diabetic=diabetic("OD", grades))])
        assert (result.level, [r["code"] for r in result.reasons]) == (
            "urgent",
            ["dr_vision_threatening"],
        )
        with translation.override("zh-hans"):
            text = triage_reason_text(result.reasons[0])
        assert f"糖尿病视网膜病变 (R{grade})" in text and text.startswith("OD: ")
    with translation.override("en"):
        assert triage_reason_text(result.reasons[0]) == (
            "OD: vision-threatening diabetic retinopathy: Proliferative diabetic retinopathy (R4) "
            "(p=0.6), urgent referral"
        )
    with translation.override("zh-hans"):
        assert "增殖期糖尿病视网膜病变 (R4)" in triage_reason_text(result.reasons[0])
        assert "紧急转诊" in triage_reason_text(result.reasons[0])


def test_referable_dr_at_the_operating_point_is_high_even_when_r1_is_most_probable():
    # argmax R1, P(>=R2) = 0.35 >= the card's 0.30: referral within weeks, not routine
    result = compute(
        [EyeFindings("OS", True, diabetic=diabetic("OS", (0.2, 0.45, 0.25, 0.07, 0.03)))]
    )
    assert (result.level, [r["code"] for r in result.reasons]) == ("high", ["dr_referable"])
    with translation.override("en"):
        assert triage_reason_text(result.reasons[0]) == (
            "OS: referable diabetic retinopathy: Mild non-proliferative diabetic retinopathy (R1), "
            "P(≥R2)=0.35, referral within weeks"
        )


def test_macular_oedema_is_a_referral_within_weeks_and_no_dr_is_nothing():
    result = compute(
        [EyeFindings("OD", True, diabetic=diabetic("OD", (0.9, 0.05, 0.05, 0.0, 0.0), dme=0.7))]
    )
    assert (result.level, [r["code"] for r in result.reasons]) == ("high", ["dme"])
    with translation.override("zh-hans"):
        assert "糖尿病黄斑水肿（p=0.7 ≥ 0.4），数周内转诊" in triage_reason_text(result.reasons[0])
    calm = compute(
        [EyeFindings("OD", True, diabetic=diabetic("OD", (0.9, 0.05, 0.05, 0.0, 0.0), dme=0.1))]
    )
    assert (calm.level, calm.reasons) == ("none", [])


def test_an_ungradable_photo_gets_no_dr_grade_in_its_triage():
    result = compute([EyeFindings("OD", False, diabetic=diabetic("OD", (0.0, 0.0, 0.1, 0.8, 0.1)))])
    assert [r["code"] for r in result.reasons] == ["ungradable"]


def test_an_eyes_grade_comes_before_its_oedema_the_worklist_shows_the_first_reasons():
    result = compute(
        [EyeFindings("OD", True, diabetic=diabetic("OD", (0.05, 0.05, 0.2, 0.55, 0.15), dme=0.62))]
    )
    assert [r["code"] for r in result.reasons] == ["dr_vision_threatening", "dme"]
