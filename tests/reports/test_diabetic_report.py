"""The report of a diabetic screening: the per-eye DR grade in words (zh and en), referable /
vision-threatening, macular oedema, the producing models with a research-use mark, and the
template letter; the doctor's signed review stays the authority. PDFs read back with pdftotext."""

from __future__ import annotations

import json

from reports.facts import report_inputs
from reports.services import report_generate
from tests.ai_results import make_diabetic
from tests.reports.conftest import sign
from tests.reports.test_pdf import page_text, squash

# OD: argmax R3 (p 0.55) with oedema 0.62; OS: argmax R1 but P(>=R2) 0.35 >= the card's 0.30.
OD = {"dr": (0.05, 0.05, 0.2, 0.55, 0.15), "dme": 0.62}
OS = {"dr": (0.2, 0.45, 0.25, 0.07, 0.03), "dme": 0.10}
RESEARCH_ONLY = "仅供研究——不可用于诊断 / research use — not for diagnosis"


def pdf_words(report, tmp_path) -> str:
    with report.pdf.open("rb") as stored:
        return squash(page_text(stored.read(), tmp_path))


def test_a_chinese_draft_report_states_each_eyes_grade_in_words(
    record, technician, photo_file, doctor, tmp_path
):
    make_diabetic(record, technician, photo_file, od=OD, os_=OS)
    report = report_generate(record=record, actor=doctor, language="zh-hans")
    text = pdf_words(report, tmp_path)
    assert squash("重度非增殖期糖尿病视网膜病变 (R3)") in text
    assert squash("Severe non-proliferative diabetic retinopathy (R3)") in text
    assert squash("轻度非增殖期糖尿病视网膜病变 (R1)") in text
    assert squash("可转诊：P(≥R2)=0.35 ≥ 阈值 0.30（模型卡的筛查工作点，灵敏度优先）") in text
    assert squash("糖尿病黄斑水肿 62.0% (阈值 40.0%)") in text
    assert squash("未见糖尿病黄斑水肿") in text
    assert squash("模型: ophai-dr 0.3.0 — " + RESEARCH_ONLY) in text
    assert squash("模型: ophai-dme 0.2.0 — " + RESEARCH_ONLY) in text
    # the template letter, before sign-off
    assert (
        squash(
            "AI 辅助分析的糖尿病视网膜病变分级：右眼 重度非增殖期糖尿病视网膜病变 (R3)；"
            "左眼 轻度非增殖期糖尿病视网膜病变 (R1)。"
        )
        in text
    )
    assert squash("AI 辅助分析提示右眼可能存在糖尿病黄斑水肿。") in text
    assert squash("AI 提示右眼的改变可能威胁视力，请尽快由眼科医生检查。") in text
    assert squash("AI 提示左眼宜转诊眼科进一步检查。") in text
    assert squash("本报告尚未经医生审核，AI 结果仅为提示，不能作为诊断。") in text


def test_an_english_report_in_english_words(record, technician, photo_file, doctor, tmp_path):
    make_diabetic(record, technician, photo_file, od=OD, os_=OS)
    text = pdf_words(report_generate(record=record, actor=doctor, language="en"), tmp_path)
    assert squash("Severe non-proliferative diabetic retinopathy (R3)") in text
    assert squash("重度非增殖期糖尿病视网膜病变 (R3)") in text  # the other language, small
    assert squash("Referable: P(≥R2)=0.35 ≥ threshold 0.30") in text
    assert squash("Diabetic macular oedema 62.0% (threshold 40.0%)") in text
    assert squash("Model: ophai-dr 0.3.0 — " + RESEARCH_ONLY) in text
    # pdftotext drops a hyphen where a line wraps at it: compare without hyphens
    assert squash(
        "The AI-assisted diabetic retinopathy grade: right eye: Severe non-proliferative "
        "diabetic retinopathy (R3); left eye: Mild non-proliferative diabetic retinopathy (R1)."
    ).replace("-", "") in text.replace("-", "")


def test_once_signed_the_doctors_words_are_the_authority(
    record, technician, photo_file, doctor, tmp_path
):
    make_diabetic(record, technician, photo_file, od=OD, os_=OS)
    sign(doctor, record, conclusion_codes=["dr_severe"], conclusion_text="")
    text = pdf_words(report_generate(record=record, actor=doctor, language="zh-hans"), tmp_path)
    assert squash("重度非增殖期糖尿病视网膜病变 (R3)") in text  # the AI table still says it
    assert squash("医生确认了 AI 辅助分析的提示：重度非增殖期糖尿病视网膜病变。") in text
    assert squash("以上 AI 结果已由医生审核，请以医生结论为准。") in text
    assert "AI辅助分析的糖尿病视网膜病变分级" not in text  # the letter speaks the doctor's words


def test_the_summary_facts_carry_the_grade_and_no_identifiers(
    record, technician, photo_file, doctor
):
    make_diabetic(record, technician, photo_file, od=OD, os_=OS)
    facts = report_inputs(record=record).facts
    od = facts["eyes"]["OD"]["diabetic"]
    assert (od["dr"]["grade"], od["dr"]["grade_text_zh"], od["referable"]) == (
        3,
        "重度非增殖期糖尿病视网膜病变 (R3)",
        True,
    )
    assert od["vision_threatening"] and od["dme"]["positive"]
    assert od["dr"]["model_name"] == "ophai-dr" and od["dr"]["demonstration"] is True
    sent = json.dumps(facts, ensure_ascii=False)
    patient = record.patient
    for identifier in (patient.name, patient.phone, patient.patient_id, patient.national_id):
        if identifier:
            assert identifier not in sent
