"""The facts a report is built from: complete, de-identified, latest AI run per model."""

from __future__ import annotations

import json

from django.utils import timezone, translation

from ai_engine.models import AnalysisStatus
from reports.facts import report_inputs
from reports.summary import template_summary
from tests.reports.conftest import EVIDENCE, add_analysis, sign


def test_the_facts_of_a_signed_record(signed_record):
    inputs = report_inputs(record=signed_record)
    facts = inputs.facts
    today = timezone.localdate().isoformat()

    assert facts["patient"] == {"age": signed_record.patient.age, "sex": "female"}
    assert facts["screening"] == {"date": today}
    assert facts["report_status"] == "final"
    od = facts["eyes"]["OD"]
    assert od["visual_acuity"] == {
        "decimal": 0.8,
        "logmar": 0.1,
        "five_point": 4.9,
        "category": "",
        "display": "4.9",  # the clinic's VA_NOTATION (five_point by default)
        "flag": "",
    }
    assert (od["corrected_visual_acuity"], od["pinhole_visual_acuity"]) == (None, None)
    assert od["iop"] == {"mmhg": 15.0, "flag": "", "normal_range": "10-21"}
    assert od["quality"] == {"score": 0.86, "gradable": True, "reasons": []}
    assert od["ai_findings"][0] == {
        "label_code": "D",
        "label_zh": "糖尿病视网膜病变",
        "label_en": "Diabetic retinopathy",
        "probability": 0.83,
        "threshold": 0.5,
        "decision": "threshold",
        "positive": True,
        "normal": False,
        "outcome": "abnormal",
        "confirmed_by_doctor": True,  # signed "dr_moderate" confirms the AI's D
        "abnormal_areas": ["黄斑区 macula"],
        "model_name": "odir-demo",
        "model_version": "1.2.0",
        "demonstration": True,
        "evidence": EVIDENCE,
        "evidence_zh": EVIDENCE,
        "evidence_en": EVIDENCE,
    }
    assert facts["triage"]["level"] == "high"
    review = facts["doctor_review"]
    assert review["conclusion_codes"] == ["dr_moderate"]
    assert review["conclusion_labels"] == ["Moderate non-proliferative diabetic retinopathy"]
    assert review["recommendation"] == "refer"
    assert review["conclusion_text"] == "右眼黄斑区可见硬性渗出"
    assert review["follow_up_date"] == inputs.review.follow_up_date.isoformat()
    assert inputs.review_version == 1
    assert inputs.media["OD"].heatmap.startswith("heatmaps/")  # the positive finding's heatmap
    assert inputs.media["OS"].photo.startswith("fundus-sanitized/")  # never the original


def test_the_facts_hold_no_identifiers(signed_record):
    patient = signed_record.patient
    text = json.dumps(report_inputs(record=signed_record).facts, ensure_ascii=False)
    for value in (patient.name, patient.phone, patient.patient_id, "138****"):
        assert value not in text


def test_only_the_latest_finished_run_of_each_model_counts(signed_record, package):
    image = signed_record.images.get(eye="OS")
    add_analysis(
        image, package, run=2, findings=[("G", "青光眼", "Glaucoma", 0.9, 0.5, ["视盘 optic disc"])]
    )
    add_analysis(
        image,
        package,
        run=3,
        status=AnalysisStatus.FAILED,
        findings=[("A", "年龄相关性黄斑变性", "AMD", 0.99, 0.5, [])],
    )
    findings = report_inputs(record=signed_record).facts["eyes"]["OS"]["ai_findings"]
    assert [(f["label_code"], f["positive"]) for f in findings] == [("G", True)]


def test_an_ungradable_photo_and_high_iop_reach_the_template(analysed_record, package):
    type(analysed_record).objects.filter(pk=analysed_record.pk).update(iop_os=25)
    image = analysed_record.images.get(eye="OS")
    add_analysis(image, package, run=2, status=AnalysisStatus.UNGRADABLE, quality=0.2, findings=[])
    facts = report_inputs(record=analysed_record).facts

    assert facts["eyes"]["OS"]["quality"] == {
        "score": 0.2,
        "gradable": False,
        "reasons": ["underexposed"],
    }
    assert facts["doctor_review"] is None
    zh = template_summary(facts, language="zh-hans")
    assert "左眼眼压 25 mmHg，高于正常范围（10–21 mmHg）。" in zh
    assert "左眼照片质量不足以判读，建议重新拍摄。" in zh
    assert "本报告尚未经医生审核" in zh
    en = template_summary(facts, language="en")
    assert "The eye pressure in your left eye is 25 mmHg, above the normal range" in en
    assert "possible signs in your right eye: Diabetic retinopathy." in en
    assert "A doctor has not reviewed this report yet" in en


def test_the_template_summary_follows_the_doctors_conclusion(signed_record):
    facts = report_inputs(record=signed_record).facts
    en = template_summary(facts, language="en")
    assert "The doctor's conclusion: Moderate non-proliferative diabetic retinopathy." in en
    assert "The doctor notes: 右眼黄斑区可见硬性渗出." in en
    assert "The doctor recommends: Refer to an ophthalmologist." in en
    assert "Normal" not in en  # a positive "normal" label is not an abnormality


def test_the_facts_and_summary_carry_the_eyes_conclusions(analysed_record, doctor):
    sign(
        doctor,
        analysed_record,
        conclusion_codes_od=["dr_moderate"],
        conclusion_text_od=f"{analysed_record.patient.name}右眼黄斑水肿",
        recommendation_od="refer",
        conclusion_codes_os=["cataract"],
        diagnosis_codes_os=["H25.1"],
        recommendation_os="follow_up",
    )
    facts = report_inputs(record=analysed_record).facts
    od, os_ = facts["doctor_review"]["eye_conclusions"]
    assert od == {
        "eye": "OD",
        "eye_label": "Right eye (OD)",
        "conclusion_codes": ["dr_moderate"],
        "conclusion_labels": ["Moderate non-proliferative diabetic retinopathy"],
        "diagnoses": [
            {
                "code": "E11.3",
                "name_zh": "2型糖尿病伴有眼的并发症",
                "name_en": "Type 2 diabetes mellitus with ophthalmic complications",
                "name": "Type 2 diabetes mellitus with ophthalmic complications",
            },
            {
                "code": "H36.0",
                "name_zh": "糖尿病性视网膜病变",
                "name_en": "Diabetic retinopathy",
                "name": "Diabetic retinopathy",
            },
        ],
        "conclusion_text": "[…]右眼黄斑水肿",  # identifiers cut out before the LLM
        "recommendation": "refer",
        "recommendation_label": "Refer to an ophthalmologist",
    }
    assert [d["code"] for d in os_["diagnoses"]] == ["H25.1"]
    # The right eye's DR finding is confirmed by the right eye's own conclusion.
    confirmed = {
        f["label_code"]: f["confirmed_by_doctor"] for f in facts["eyes"]["OD"]["ai_findings"]
    }
    assert confirmed["D"] is True

    en = template_summary(facts, language="en")
    assert (
        "Your right eye: Moderate non-proliferative diabetic retinopathy (ICD-10: E11.3, H36.0)."
        in en
    )
    assert "Your left eye: Cataract (ICD-10: H25.1)." in en
    assert "For your left eye, the doctor recommends: Follow-up examination." in en
    assert "For your right eye" not in en  # the same as the visit's
    with translation.override("zh-hans"):
        zh_facts = report_inputs(record=analysed_record).facts
    assert zh_facts["doctor_review"]["eye_conclusions"][1]["diagnoses"][0]["name"] == (
        "老年性核性白内障"
    )
    zh = template_summary(zh_facts, language="zh-hans")
    assert "左眼：白内障（ICD-10：H25.1）。" in zh
    assert "左眼建议：复查。" in zh
