"""Diabetic eyes through the staff UI: the screening page's DR block and the worklist's triage,
from synthetic ophai-dr / ophai-dme analyses (tests.ai_results.make_diabetic)."""

from __future__ import annotations

import html as html_lib
import re

from django.urls import reverse

from screening.models import RecordStatus
from tests.ai_results import make_diabetic
from tests.factories import ScreeningRecordFactory

# OD: argmax R3 (p 0.55), DME 0.62 over its 0.40 threshold. OS: argmax R1 (p 0.45) but
# P(>=R2) = 0.35 reaches the card's 0.30 operating point, no DME (0.10).
OD = {"dr": (0.05, 0.05, 0.2, 0.55, 0.15), "dme": 0.62}
OS = {"dr": (0.2, 0.45, 0.25, 0.07, 0.03), "dme": 0.10}


def _text(response) -> str:
    """The page's visible text, whitespace collapsed."""
    body = re.sub(
        r"<script.*?</script>|<style.*?</style>", " ", response.content.decode(), flags=re.S
    )
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def _page(client, record, language: str) -> str:
    client.cookies["django_language"] = language
    return _text(client.get(reverse("pages:screening-detail", args=[record.pk])))


def test_the_screening_page_shows_each_eyes_grade_rule_and_oedema_in_english(
    client, doctor, technician, record, photo_file
):
    make_diabetic(record, technician, photo_file, od=OD, os_=OS)
    client.force_login(doctor)
    text = _page(client, record, "en")
    assert "Severe non-proliferative diabetic retinopathy (R3)" in text
    assert "p=0.55" in text
    # OD: referable at the operating point, vision-threatening, with oedema
    assert (
        "Referable: P(≥R2)=0.90 ≥ threshold 0.30 (the model card's screening operating point, sensitivity first)"
        in text
    )
    assert "yes: severe NPDR or worse, or macular oedema" in text
    assert "Diabetic macular oedema yes (Diabetic macular oedema) · p=0.62, threshold 0.40" in text
    # OS: the most probable grade is R1, yet referable by P(>=R2) against the card's threshold
    assert "Mild non-proliferative diabetic retinopathy (R1)" in text
    assert "Referable: P(≥R2)=0.35 ≥ threshold 0.30" in text
    assert "no (No diabetic macular oedema) · p=0.10, threshold 0.40" in text
    # which models, their evidence, research use only
    assert "ophai-dr 0.3.0 · Evidence: Demonstration model: referable-DR AUC 0.91" in text
    assert "ophai-dme 0.2.0 · Evidence: Demonstration model: DME AUC 0.88" in text
    assert text.count("仅供研究——不可用于诊断 / research use — not for diagnosis") == 2
    # the triage at the top says why it is urgent
    assert (
        "OD: vision-threatening diabetic retinopathy: Severe non-proliferative diabetic "
        "retinopathy (R3) (p=0.55), urgent referral" in text
    )
    assert "OD: diabetic macular oedema (p=0.62 ≥ 0.4), referral within weeks" in text
    assert (
        "OS: referable diabetic retinopathy: Mild non-proliferative diabetic retinopathy (R1), P(≥R2)=0.35, referral within weeks"
        in text
    )


def test_the_grade_table_shows_the_argmax_grade_without_a_threshold_column(
    client, doctor, technician, record, photo_file
):
    make_diabetic(record, technician, photo_file, od=OD, os_=OS)
    client.force_login(doctor)
    client.cookies["django_language"] = "en"
    html = client.get(reverse("pages:screening-detail", args=[record.pk])).content.decode()
    od = html[html.index('aria-label="Right eye (OD)') :]
    dr_block = od[od.index("ophai-dr 0.3.0</a>") :]
    dr_table = dr_block[: dr_block.index("</table>")]
    assert ">Threshold<" not in dr_table
    assert "the most probable grade is the grade shown" in dr_table
    positive = re.findall(r'<td class="positive">([^<]+)</td>', dr_table)
    assert positive == ["Severe non-proliferative diabetic retinopathy"]
    # the heatmap menu offers the argmax grade's and the oedema's heatmap
    menu = od[od.index("heatmap-finding-") : od.index("</select>")]
    assert "Severe non-proliferative diabetic retinopathy (0.55)" in menu
    assert "Diabetic macular oedema (0.62)" in menu


def test_the_screening_page_in_chinese(client, doctor, technician, record, photo_file):
    make_diabetic(record, technician, photo_file, od=OD, os_=OS)
    client.force_login(doctor)
    text = _page(client, record, "zh-hans")
    assert "重度非增殖期糖尿病视网膜病变 (R3)" in text
    assert "可转诊：P(≥R2)=0.90 ≥ 阈值 0.30（模型卡的筛查工作点，灵敏度优先）" in text
    assert "轻度非增殖期糖尿病视网膜病变 (R1)" in text
    assert "可转诊：P(≥R2)=0.35 ≥ 阈值 0.30（模型卡的筛查工作点，灵敏度优先）" in text
    assert "糖尿病黄斑水肿 是" in text
    assert "P(可转诊, ≥R2) 0.90 — 需转诊" in text
    assert "威胁视力 是：重度非增殖期或更重，或黄斑水肿" in text
    assert "演示模型：在 600 只留出眼上可转诊 DR 的 AUC 0.91" in text
    assert (
        "OD: 威胁视力的糖尿病视网膜病变：重度非增殖期糖尿病视网膜病变 (R3)（p=0.55），紧急转诊"
        in text
    )


def test_a_card_without_an_operating_point_says_the_grade_decides(
    client, doctor, technician, record, photo_file
):
    from tests.ai_results import DR_CARD, dr_package

    card = {
        **DR_CARD,
        "version": "0.1.0",
        "dr_grading": {**DR_CARD["dr_grading"], "referable_threshold": None},
    }
    dr_package(card)
    from ai_engine.services import triage_update
    from screening.models import ScreeningRecord
    from screening.services import image_upload
    from tests.ai_results import add_analysis, dr_findings

    image = image_upload(
        actor=technician, record=record, eye="OD", uploaded_file=photo_file(seed=5)
    )
    add_analysis(image, dr_package(card), findings=dr_findings(0.2, 0.45, 0.25, 0.07, 0.03))
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    triage_update(record=record)
    client.force_login(doctor)
    text = _page(client, record, "en")
    assert "Mild non-proliferative diabetic retinopathy (R1)" in text
    assert "not referable" in text
    assert "By the most probable grade: referable from R2" in text
    assert (
        "OD: diabetic retinopathy: Mild non-proliferative diabetic retinopathy (R1) (p=0.45)"
        in text
    )
    assert "Routine" in text


def test_the_worklist_puts_vision_threatening_then_referable_dr_first(
    client, doctor, technician, photo_file
):
    calm = make_diabetic(
        ScreeningRecordFactory(operator=technician),
        technician,
        photo_file,
        od={"dr": (0.9, 0.06, 0.02, 0.01, 0.01), "dme": 0.05},
        os_={"dr": (0.85, 0.1, 0.03, 0.01, 0.01), "dme": 0.05},
    )
    referable = make_diabetic(
        ScreeningRecordFactory(operator=technician),
        technician,
        photo_file,
        od={"dr": (0.1, 0.2, 0.6, 0.05, 0.05), "dme": 0.1},
        os_={"dr": (0.9, 0.06, 0.02, 0.01, 0.01), "dme": 0.05},
    )
    proliferative = make_diabetic(
        ScreeningRecordFactory(operator=technician),
        technician,
        photo_file,
        od={"dr": (0.9, 0.06, 0.02, 0.01, 0.01), "dme": 0.05},
        os_={"dr": (0.0, 0.05, 0.1, 0.25, 0.6), "dme": 0.2},
    )
    assert (calm.triage.level, referable.triage.level, proliferative.triage.level) == (
        "none",
        "high",
        "urgent",
    )
    client.force_login(doctor)
    client.cookies["django_language"] = "en"
    response = client.get("/")
    groups = {group["code"]: group["records"] for group in response.context["groups"]}
    assert groups["review"] == [proliferative, referable, calm]
    text = _text(response)
    assert (
        "OS: vision-threatening diabetic retinopathy: Proliferative diabetic retinopathy (R4) (p=0.6), urgent referral"
        in text
    )
    assert (
        "OD: referable diabetic retinopathy: Moderate non-proliferative diabetic retinopathy (R2), P(≥R2)=0.7, referral within weeks"
        in text
    )
    client.cookies["django_language"] = "zh-hans"
    text = _text(client.get("/"))
    assert "OS: 威胁视力的糖尿病视网膜病变：增殖期糖尿病视网膜病变 (R4)（p=0.6），紧急转诊" in text
    assert (
        "OD: 需转诊的糖尿病视网膜病变：中度非增殖期糖尿病视网膜病变 (R2)，P(≥R2)=0.7，数周内转诊"
        in text
    )


def test_the_dr_model_card_names_its_operating_point(client, technician):
    from tests.ai_results import dr_package

    package = dr_package()
    client.force_login(technician)
    client.cookies["django_language"] = "en"
    text = _text(client.get(reverse("ai_engine:model-card", args=[package.pk])))
    assert (
        "Screening operating point: referable when P(≥R2) ≥ 0.30 (chosen on validation, "
        "sensitivity first); vision-threatening from R3 or with macular oedema." in text
    )
    client.cookies["django_language"] = "zh-hans"
    text = _text(client.get(reverse("ai_engine:model-card", args=[package.pk])))
    assert "筛查工作点：P(≥R2) ≥ 0.30 时需转诊（在验证集上选定，灵敏度优先）" in text
