from __future__ import annotations

import json

from ai_engine.inference.results import (
    AbnormalArea,
    Finding,
    ImageAnalysis,
    Prediction,
    QualityResult,
)
from ai_engine.inference.summary import combine_eye_results

PERIPHERY = AbnormalArea("periphery", "视网膜周边", "periphery", 1.0, 0.1, (0.8, 0.5))
DISC = AbnormalArea("optic_disc", "视盘", "optic disc", 0.9, 0.05, (0.3, 0.5))


def finding(code: str, zh: str, en: str, p: float, *, normal: bool = False, areas=()) -> Finding:
    return Finding(code, zh, en, p, 0.5, p >= 0.5, not normal, normal, areas=list(areas))


def analysis(eye: str, findings: list[Finding], *, gradable: bool = True) -> ImageAnalysis:
    quality = QualityResult(
        0.8 if gradable else 0.2, gradable, [] if gradable else ["out_of_focus"], {}
    )
    prediction = Prediction("odir", "1.0", "multilabel", True, "demo model", findings, False, 0.0)
    return ImageAnalysis(
        source=eye, eye=eye, quality=quality, predictions=[prediction] if gradable else []
    )


def test_per_eye_and_combined_in_chinese() -> None:
    right = analysis(
        "OD",
        [
            finding("N", "正常", "normal", 0.1, normal=True),
            finding("D", "糖尿病视网膜病变", "diabetic retinopathy", 0.89, areas=[PERIPHERY]),
            finding("G", "青光眼", "glaucoma", 0.6, areas=[DISC]),
        ],
    )
    left = analysis(
        "OS",
        [
            finding("N", "正常", "normal", 0.93, normal=True),
            finding("D", "糖尿病视网膜病变", "diabetic retinopathy", 0.2),
        ],
    )
    result = combine_eye_results([right, left], language="zh")
    od, os_ = result["eyes"]["OD"], result["eyes"]["OS"]
    assert (od["conclusion"], od["confidence"], od["abnormal_areas"]) == (
        "糖尿病视网膜病变、青光眼",
        0.89,
        ["视网膜周边", "视盘"],
    )
    assert od["referable"] is True
    assert (os_["conclusion"], os_["confidence"], os_["abnormal_areas"]) == ("正常", 0.93, [])
    assert result["combined"]["conclusion"] == "右眼：糖尿病视网膜病变、青光眼"
    assert result["combined"]["confidence"] == 0.89
    assert od["models"] == [
        {"name": "odir", "version": "1.0", "demonstration": True, "evidence": "demo model"}
    ]
    assert od["demonstration"] is True
    json.dumps(result, ensure_ascii=False)


def test_english_no_abnormality_and_ungradable() -> None:
    right = analysis("right", [finding("D", "糖尿病视网膜病变", "diabetic retinopathy", 0.3)])
    left = analysis("left", [], gradable=False)
    result = combine_eye_results([right, left], language="en")
    assert result["eyes"]["OD"]["conclusion"] == "No obvious abnormality"
    assert result["eyes"]["OD"]["confidence"] == 0.7
    assert result["eyes"]["OS"]["conclusion"] == "Image quality insufficient, please retake"
    assert result["eyes"]["OS"]["confidence"] is None
    assert result["eyes"]["OS"]["quality_reasons"] == ["out_of_focus"]
    assert result["combined"]["ungradable_eyes"] == ["OS"]


def test_several_photos_of_one_eye_keep_the_highest_probability() -> None:
    first = analysis("OD", [finding("D", "糖尿病视网膜病变", "DR", 0.55)])
    second = analysis("OD", [finding("D", "糖尿病视网膜病变", "DR", 0.8)])
    result = combine_eye_results([first, second], language="en")
    assert result["eyes"]["OD"]["confidence"] == 0.8
    assert [f["probability"] for f in result["eyes"]["OD"]["findings"]] == [0.8]


def test_a_monochrome_eye_is_for_the_doctor_with_no_ai_conclusion() -> None:
    quality = QualityResult(0.8, True, ["monochrome"], {})
    grey = ImageAnalysis(source="OD", eye="OD", quality=quality)
    colour = analysis("OS", [finding("N", "正常", "normal", 0.9, normal=True)])
    result = combine_eye_results([grey, colour], "en")
    right = result["eyes"]["OD"]
    assert (right["gradable"], right["review_required"], right["confidence"]) == (True, True, None)
    assert right["conclusion"] == (
        "Monochrome fundus photo (greyscale or red-free): colour AI models not applicable, "
        "the doctor reviews the photo"
    )
    assert (right["findings"], right["referable"], right["quality_reasons"]) == (
        [],
        False,
        ["monochrome"],
    )
    assert result["eyes"]["OS"]["review_required"] is False
    assert (result["combined"]["review_eyes"], result["combined"]["ungradable_eyes"]) == (
        ["OD"],
        [],
    )
    zh = combine_eye_results([grey], "zh")["eyes"]["OD"]["conclusion"]
    assert zh == "单色眼底照片（灰度或无赤光）：彩色 AI 模型不适用，请医生阅片"
