"""Per-record summary in the mini-program's shape, per eye and combined.

An eye's photos are merged finding by finding (same model, same code: highest probability
among its gradable photos). The conclusion names the positive non-normal findings, most
probable first; ``confidence`` is the probability of the first one. With none, the
conclusion is the positive normal label if a model has one (confidence = its probability),
else "no obvious abnormality" with confidence 1 − the highest non-normal probability.
An eye without a gradable photo has ``confidence`` null and asks for a retake; an eye whose
gradable photos are all monochrome (greyscale or red-free: gradable with limits, no colour model
read them) has ``confidence`` null and ``review_required``: the doctor reads the photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .results import Finding, ImageAnalysis, normalise_eye

TEXT = {
    "zh": {
        "no_abnormality": "未见明显异常",
        "ungradable": "图像质量不足，请重新拍摄",
        "monochrome": "单色眼底照片（灰度或无赤光）：彩色 AI 模型不适用，请医生阅片",
        "no_photo": "无图像",
        "separator": "、",
        "OD": "右眼",
        "OS": "左眼",
        "eye_separator": "；",
        "colon": "：",
    },
    "en": {
        "no_abnormality": "No obvious abnormality",
        "ungradable": "Image quality insufficient, please retake",
        "monochrome": (
            "Monochrome fundus photo (greyscale or red-free): colour AI models not applicable, "
            "the doctor reviews the photo"
        ),
        "no_photo": "No photo",
        "separator": ", ",
        "OD": "Right eye",
        "OS": "Left eye",
        "eye_separator": "; ",
        "colon": ": ",
    },
}


def _language(language: str) -> str:
    return "zh" if language.lower().startswith("zh") else "en"


def _merged_findings(analyses: Sequence[ImageAnalysis]) -> list[tuple[dict[str, Any], Finding]]:
    best: dict[tuple[str, str, str], tuple[dict[str, Any], Finding]] = {}
    for analysis in analyses:
        if not analysis.colour_models_apply:
            continue
        for prediction in analysis.predictions:
            model = {
                "name": prediction.model_name,
                "version": prediction.model_version,
                "demonstration": prediction.demonstration,
                "evidence": prediction.evidence,
            }
            for finding in prediction.findings:
                key = (prediction.model_name, prediction.model_version, finding.code)
                if key not in best or finding.probability > best[key][1].probability:
                    best[key] = (model, finding)
    return list(best.values())


def _eye_summary(analyses: Sequence[ImageAnalysis], lang: str) -> dict[str, Any]:
    text = TEXT[lang]
    gradable = [a for a in analyses if a.gradable]
    read = [a for a in gradable if a.colour_models_apply]
    reasons = sorted({r for a in analyses if a.quality for r in a.quality.reasons})
    merged = _merged_findings(read)
    models: dict[tuple[str, str], dict[str, Any]] = {}
    for model, _ in merged:
        models[(model["name"], model["version"])] = model
    summary: dict[str, Any] = {
        "photos": len(analyses),
        "gradable": bool(gradable),
        "review_required": bool(gradable) and not read,
        "quality_reasons": reasons,
        "models": list(models.values()),
        "demonstration": any(m["demonstration"] for m in models.values()),
        "findings": [dict(f.to_dict(), model=m["name"]) for m, f in merged],
    }
    if not analyses:
        summary.update(
            conclusion=text["no_photo"], confidence=None, abnormal_areas=[], referable=False
        )
        return summary
    if not gradable:
        summary.update(
            conclusion=text["ungradable"], confidence=None, abnormal_areas=[], referable=False
        )
        return summary
    if not read:
        summary.update(
            conclusion=text["monochrome"], confidence=None, abnormal_areas=[], referable=False
        )
        return summary
    abnormal = sorted(
        (f for _, f in merged if f.positive and not f.normal), key=lambda f: -f.probability
    )
    areas: list[str] = []
    for finding in abnormal:
        for area in finding.areas:
            name = area.name(lang)
            if name not in areas:
                areas.append(name)
    names = list(dict.fromkeys(f.name(lang) for f in abnormal))
    if abnormal:
        conclusion = text["separator"].join(names)
        confidence = abnormal[0].probability
    else:
        normal = sorted(
            (f for _, f in merged if f.positive and f.normal), key=lambda f: -f.probability
        )
        if normal:
            conclusion, confidence = normal[0].name(lang), normal[0].probability
        else:
            others = [f.probability for _, f in merged if not f.normal]
            conclusion, confidence = text["no_abnormality"], 1.0 - max(others, default=0.0)
    summary.update(
        conclusion=conclusion,
        confidence=round(float(confidence), 4),
        abnormal_areas=areas,
        abnormal_codes=[f.code for f in abnormal],
        referable=any(f.referable for f in abnormal),
    )
    return summary


def combine_eye_results(analyses: Sequence[ImageAnalysis], language: str = "zh") -> dict[str, Any]:
    """``{"eyes": {"OD": summary, "OS": summary}, "combined": summary, "language": ...}``.

    Photos without a recognised eye are summarised under ``"unknown"`` and take part in
    the combined summary. Each summary carries ``conclusion``, ``confidence`` and
    ``abnormal_areas`` (the mini-program fields) plus findings and model details.
    """
    lang = _language(language)
    text = TEXT[lang]
    groups: dict[str, list[ImageAnalysis]] = {}
    for analysis in analyses:
        groups.setdefault(normalise_eye(analysis.eye) or "unknown", []).append(analysis)
    eyes = {eye: _eye_summary(items, lang) for eye, items in groups.items()}
    combined = _eye_summary(list(analyses), lang)
    abnormal_eyes = [e for e in ("OD", "OS") if e in eyes and eyes[e].get("abnormal_codes")]
    if abnormal_eyes and len(eyes) > 1:
        parts = [f"{text[e]}{text['colon']}{eyes[e]['conclusion']}" for e in abnormal_eyes]
        combined["conclusion"] = text["eye_separator"].join(parts)
    ungradable_eyes = [e for e, s in eyes.items() if not s["gradable"]]
    combined["ungradable_eyes"] = ungradable_eyes
    combined["review_eyes"] = [e for e, s in eyes.items() if s["review_required"]]
    return {"language": lang, "eyes": eyes, "combined": combined}
