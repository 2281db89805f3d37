"""The deterministic template summary, in Chinese and English, built from the report's facts.

It is the default without an LLM and the fallback whenever the LLM fails. The sentences live
here side by side, per language, rather than in the gettext catalogue: this is patient-facing
clinical wording that is reviewed as one text, and it must exist in both languages even while a
catalogue is incomplete.

Once a doctor has signed, the letter speaks the doctor's words: it repeats only the AI findings
the doctor's conclusion confirms (``confirmed_by_doctor`` in the facts), and, as conclusions are
given per visit, without naming the eye the AI saw them in.
"""

from __future__ import annotations

from typing import Any

from ai_engine.inference.results import is_normal_label

SENTENCE_END = tuple("。！？.!?")

EYE_NAMES = {"zh-hans": {"OD": "右眼", "OS": "左眼"}, "en": {"OD": "right eye", "OS": "left eye"}}

SENTENCES = {
    "zh-hans": {
        "intro": "您于 {date} 进行了眼底筛查。",
        "iop_high": "{eye}眼压 {value} mmHg，高于正常范围（10–21 mmHg）。",
        "iop_low": "{eye}眼压 {value} mmHg，低于正常范围（10–21 mmHg）。",
        "iop_normal": "双眼眼压在正常范围内。",
        "va_low": "{eye}视力 {value}，低于正常。",
        "ungradable": "{eye}照片质量不足以判读，建议重新拍摄。",
        "ai_positive": "AI 辅助分析提示{eye}可能存在：{labels}。",
        "ai_confirmed": "医生确认了 AI 辅助分析的提示：{labels}。",
        "ungradable_reviewed": "{eye}照片质量不足以进行 AI 判读。",
        "ai_none": "AI 辅助分析未发现明显异常。",
        "ai_dr": "AI 辅助分析的糖尿病视网膜病变分级：{grades}。",
        "ai_dr_grade": "{eye} {grade}",
        "ai_dr_sep": "；",
        "ai_dme": "AI 辅助分析提示{eye}可能存在糖尿病黄斑水肿。",
        "ai_vision_threatening": "AI 提示{eye}的改变可能威胁视力，请尽快由眼科医生检查。",
        "ai_referable": "AI 提示{eye}宜转诊眼科进一步检查。",
        "draft": "本报告尚未经医生审核，AI 结果仅为提示，不能作为诊断。",
        "conclusion": "医生结论：{labels}。",
        "conclusion_text": "医生说明：{text}",
        "eye_conclusion": "{eye}：{labels}{codes}。",
        "eye_codes": "（ICD-10：{codes}）",
        "eye_recommendation": "{eye}建议：{label}。",
        "recommendation": "医生建议：{label}。",
        "recommendation_text": "{text}",
        "follow_up": "请于 {date} 前后复查。",
        "authority": "以上 AI 结果已由医生审核，请以医生结论为准。",
        "closing": "如出现视力下降、眼痛、眼红或视物变形，请及时就医。",
        "list_sep": "、",
    },
    "en": {
        "intro": "You had an eye (fundus) screening on {date}.",
        "iop_high": "The eye pressure in your {eye} is {value} mmHg, above the normal range (10–21 mmHg).",
        "iop_low": "The eye pressure in your {eye} is {value} mmHg, below the normal range (10–21 mmHg).",
        "iop_normal": "The eye pressure in both eyes is within the normal range.",
        "va_low": "The vision in your {eye} ({value}) is below normal.",
        "ungradable": "The photo of your {eye} was not clear enough to assess; it should be retaken.",
        "ai_positive": "The AI-assisted analysis suggests possible signs in your {eye}: {labels}.",
        "ai_confirmed": "The doctor confirmed what the AI-assisted analysis suggested: {labels}.",
        "ungradable_reviewed": "The photo of your {eye} was not clear enough for the AI to assess.",
        "ai_none": "The AI-assisted analysis found no clear abnormality.",
        "ai_dr": "The AI-assisted diabetic retinopathy grade: {grades}.",
        "ai_dr_grade": "{eye}: {grade}",
        "ai_dr_sep": "; ",
        "ai_dme": "The AI-assisted analysis suggests possible diabetic macular oedema in your {eye}.",
        "ai_vision_threatening": "The AI suggests the changes in your {eye} may threaten your sight; please have an eye doctor examine it soon.",
        "ai_referable": "The AI suggests your {eye} should be referred to an eye doctor for further examination.",
        "draft": "A doctor has not reviewed this report yet; the AI results are suggestions only and are not a diagnosis.",
        "conclusion": "The doctor's conclusion: {labels}.",
        "conclusion_text": "The doctor notes: {text}",
        "eye_conclusion": "Your {eye}: {labels}{codes}.",
        "eye_codes": " (ICD-10: {codes})",
        "eye_recommendation": "For your {eye}, the doctor recommends: {label}.",
        "recommendation": "The doctor recommends: {label}.",
        "recommendation_text": "{text}",
        "follow_up": "Please come back for a check-up around {date}.",
        "authority": "A doctor has reviewed the AI results; the doctor's conclusion is what counts.",
        "closing": "If your vision gets worse, or your eye hurts, turns red or sees straight lines as wavy, see a doctor promptly.",
        "list_sep": ", ",
    },
}


def template_summary(facts: dict[str, Any], *, language: str) -> str:
    """A plain-language explanation for the patient, in `language` ("zh-hans" or "en")."""
    lang = language if language in SENTENCES else "zh-hans"
    s, eye_names = SENTENCES[lang], EYE_NAMES[lang]
    sep = "" if lang == "zh-hans" else " "
    lines = [s["intro"].format(date=facts["screening"]["date"])]
    eyes = facts["eyes"]

    iop_flags = []
    for eye, values in eyes.items():
        iop = values.get("iop")
        if iop and iop["flag"] in ("high", "low"):
            iop_flags.append(
                s[f"iop_{iop['flag']}"].format(eye=eye_names[eye], value=_num(iop["mmhg"]))
            )
    if iop_flags:
        lines.extend(iop_flags)
    elif all(values.get("iop") for values in eyes.values()):
        lines.append(s["iop_normal"])
    for eye, values in eyes.items():
        va = values.get("visual_acuity")
        if va and va["flag"] == "low":
            lines.append(
                s["va_low"].format(
                    eye=eye_names[eye], value=va.get("display") or _num(va["decimal"])
                )
            )
    review = facts.get("doctor_review")
    ungradable = "ungradable" if review is None else "ungradable_reviewed"
    for eye, values in eyes.items():
        quality = values.get("quality")
        if quality and not quality["gradable"]:
            lines.append(s[ungradable].format(eye=eye_names[eye]))

    def labels_of(findings) -> list[str]:
        return _unique(f["label_zh"] if lang == "zh-hans" else f["label_en"] for f in findings)

    if review is None:
        positive_any = False
        for eye, values in eyes.items():
            diabetic_models = _diabetic_models(values.get("diabetic"))
            labels = labels_of(
                f
                for f in values["ai_findings"]
                if _abnormal(f) and f.get("model_name") not in diabetic_models
            )
            if labels:
                positive_any = True
                lines.append(
                    s["ai_positive"].format(eye=eye_names[eye], labels=s["list_sep"].join(labels))
                )
        grade_line, notes, diabetic_abnormal = _diabetic_sentences(eyes, s, eye_names, lang)
        lines.extend([grade_line, *notes] if grade_line else notes)
        positive_any = positive_any or diabetic_abnormal
        if not positive_any and any(values["ai_findings"] for values in eyes.values()):
            lines.append(s["ai_none"])
        lines.append(s["draft"])
    else:
        confirmed = labels_of(
            f
            for values in eyes.values()
            for f in values["ai_findings"]
            if _abnormal(f) and f.get("confirmed_by_doctor")
        )
        lines.append(s["conclusion"].format(labels=s["list_sep"].join(review["conclusion_labels"])))
        if review["conclusion_text"]:
            lines.append(
                s["conclusion_text"].format(text=_sentence(review["conclusion_text"], lang))
            )
        lines.extend(_eye_sentences(review, s, eye_names))
        if confirmed:
            lines.append(s["ai_confirmed"].format(labels=s["list_sep"].join(confirmed)))
        if review["recommendation_label"]:
            lines.append(s["recommendation"].format(label=review["recommendation_label"]))
        if review["recommendation_text"]:
            lines.append(
                s["recommendation_text"].format(text=_sentence(review["recommendation_text"], lang))
            )
        if review["follow_up_date"]:
            lines.append(s["follow_up"].format(date=review["follow_up_date"]))
        lines.append(s["authority"])
    lines.append(s["closing"])
    return sep.join(lines)


def _eye_sentences(
    review: dict[str, Any], s: dict[str, str], eye_names: dict[str, str]
) -> list[str]:
    """Per eye the doctor concluded on: the conclusion with its ICD-10 codes, and the eye's
    recommendation where it differs from the visit's."""
    lines = []
    for eye in review.get("eye_conclusions") or []:
        name = eye_names[eye["eye"]]
        codes = [diagnosis["code"] for diagnosis in eye["diagnoses"]]
        if eye["conclusion_labels"]:
            lines.append(
                s["eye_conclusion"].format(
                    eye=name,
                    labels=s["list_sep"].join(eye["conclusion_labels"]),
                    codes=s["eye_codes"].format(codes=s["list_sep"].join(codes)) if codes else "",
                )
            )
        if eye["recommendation_label"] and eye["recommendation"] != review["recommendation"]:
            lines.append(
                s["eye_recommendation"].format(eye=name, label=eye["recommendation_label"])
            )
    return lines


def _diabetic_models(diabetic: dict[str, Any] | None) -> set[str]:
    if not diabetic:
        return set()
    return {part["model_name"] for part in (diabetic.get("dr"), diabetic.get("dme")) if part}


def _diabetic_sentences(
    eyes: dict[str, Any], s: dict[str, str], eye_names: dict[str, str], lang: str
) -> tuple[str, list[str], bool]:
    """Before sign-off: each eye's DR grade in words, then oedema, vision-threatening or
    referable eyes (as ``reports.facts`` decided them with the card's rule), and whether any
    eye has DR or oedema."""
    key = "zh" if lang == "zh-hans" else "en"
    grades, notes = [], []
    abnormal = False
    for eye, values in eyes.items():
        diabetic = values.get("diabetic")
        if not diabetic:
            continue
        dr, dme = diabetic.get("dr"), diabetic.get("dme")
        abnormal = abnormal or bool(dr and dr["grade"] > 0) or bool(dme and dme["positive"])
        if dr:
            grades.append(
                s["ai_dr_grade"].format(eye=eye_names[eye], grade=dr[f"grade_text_{key}"])
            )
        if dme and dme["positive"]:
            notes.append(s["ai_dme"].format(eye=eye_names[eye]))
        if diabetic["vision_threatening"]:
            notes.append(s["ai_vision_threatening"].format(eye=eye_names[eye]))
        elif diabetic["referable"]:
            notes.append(s["ai_referable"].format(eye=eye_names[eye]))
    grade_line = s["ai_dr"].format(grades=s["ai_dr_sep"].join(grades)) if grades else ""
    return grade_line, notes, abnormal


def _abnormal(finding: dict[str, Any]) -> bool:
    """A positive finding of disease: never a positive "normal" label (facts say ``outcome``)."""
    if "outcome" in finding:
        return finding["outcome"] == "abnormal"
    return finding["positive"] and not is_normal_label(finding["label_code"])


def _sentence(text: str, lang: str) -> str:
    """The doctor's free text as one sentence, ended with the language's full stop."""
    text = " ".join(text.split())
    if text.endswith(SENTENCE_END):
        return text
    return text + ("。" if lang == "zh-hans" else ".")


def _num(value: float) -> str:
    return f"{value:g}"


def _unique(values) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))
