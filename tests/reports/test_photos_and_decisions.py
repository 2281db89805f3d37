"""What a report says per eye: the photo it speaks for (retakes, the doctor's choice), findings as
the model's decision rule reads them, and a patient letter that follows the doctor."""

from __future__ import annotations

import pytest
from django.utils import translation

from core.models import AuditEvent
from reports.facts import report_inputs
from reports.services import report_generate
from reports.summary import template_summary
from screening.services import image_choose_for_report, review_save_draft, review_sign
from tests.ai_results import make_retaken, multiclass_package
from tests.reports.conftest import pdf_text


@pytest.fixture
def package(db):
    return multiclass_package()


@pytest.fixture
def retaken_record(record, technician, photo_file, package):
    return make_retaken(record, technician, photo_file, package)


def sign(doctor, record, codes, text, recommendation="refer"):
    review = review_save_draft(
        doctor=doctor,
        record=record,
        conclusion_codes=codes,
        conclusion_text=text,
        recommendation=recommendation,
    )
    return review_sign(doctor=doctor, review=review)


def test_each_eye_speaks_through_its_newest_gradable_photo_with_results(retaken_record):
    inputs = report_inputs(record=retaken_record)
    os_ = inputs.facts["eyes"]["OS"]

    assert os_["quality"] == {"score": 0.86, "gradable": True, "reasons": []}
    assert os_["other_photos"] == 1
    assert [(f["label_code"], f["outcome"]) for f in os_["ai_findings"]] == [
        ("G", "abnormal"),
        ("N", "negative"),
        ("C", "negative"),
    ]
    assert inputs.media["OS"].photo == retaken_record.good_os.sanitized_file.name
    assert inputs.media["OS"].heatmap.endswith("-G.png")


def test_the_doctor_may_choose_another_photo_and_the_choice_is_audited(retaken_record, doctor):
    noise = retaken_record.noise_os
    image_choose_for_report(doctor=doctor, record=retaken_record, eye="OS", image=noise)

    inputs = report_inputs(record=retaken_record)
    assert inputs.media["OS"].photo == noise.sanitized_file.name
    assert inputs.facts["eyes"]["OS"]["quality"]["gradable"] is False
    event = AuditEvent.objects.get(action="update", object_type="screening.screeningrecord")
    assert event.changes == {"report_photo_os": [None, noise.pk]}

    image_choose_for_report(doctor=doctor, record=retaken_record, eye="OS", image=None)
    assert (
        report_inputs(record=retaken_record).media["OS"].photo
        == retaken_record.good_os.sanitized_file.name
    )


def test_a_technician_cannot_choose_the_report_photo(retaken_record, technician):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        image_choose_for_report(
            doctor=technician, record=retaken_record, eye="OS", image=retaken_record.noise_os
        )
    assert not retaken_record.images.filter(chosen_for_report=True).exists()
    assert not AuditEvent.objects.filter(object_type="screening.screeningrecord", action="update")


def test_a_multiclass_pdf_shows_the_argmax_rule_without_thresholds(
    retaken_record, doctor, tmp_path
):
    report = report_generate(record=retaken_record, actor=doctor, language="en")
    with report.pdf.open("rb") as stored:
        text = pdf_text(stored.read(), tmp_path)
    flat = "".join(text.split())

    assert "Decision rule: the most probable label is the result (no thresholds)." in " ".join(
        text.split()
    )
    assert "Threshold" not in text
    assert "34.0%" not in text and "28.0%" not in text
    # OD: normal is the argmax, glaucoma 0.41 is not a finding; OS: glaucoma is.
    # Two columns (OD | OS): each row reads "<OD finding> <p> <result> <OS finding> <p> <result>".
    rows = [" ".join(line.split()) for line in text.splitlines()]
    assert "Normal fundus 45.0% no abnormality Glaucoma 62.0% positive" in rows  # argmax each
    # OD glaucoma 0.41 is over the card's 0.34 yet not the result: "negative"
    assert "Glaucoma 41.0% negative Normal fundus 30.0% negative" in rows
    assert flat.count("positive") == 1  # OS: glaucoma, the argmax there
    assert "Right eye (OD): no AI results" not in text and "no AI results" not in text
    assert "1 other photo of this eye (retaken) is kept in the screening record." in " ".join(
        text.split()
    )


def test_the_letter_speaks_the_doctors_words_not_unconfirmed_ai_findings(retaken_record, doctor):
    # The AI saw glaucoma in the left eye; the doctor concluded a cataract of the right eye.
    sign(doctor, retaken_record, ["cataract"], "右眼晶状体混浊")
    with translation.override("zh-hans"):
        facts = report_inputs(record=retaken_record).facts
    assert [f["confirmed_by_doctor"] for f in facts["eyes"]["OS"]["ai_findings"]] == [
        False,
        False,
        False,
    ]

    zh = template_summary(facts, language="zh-hans")
    en = template_summary(facts, language="en")

    assert "医生结论：白内障。医生说明：右眼晶状体混浊。" in zh
    assert "青光眼" not in zh and "左眼" not in zh and "AI 辅助分析提示" not in zh
    assert "The doctor notes: 右眼晶状体混浊." in en
    assert "Glaucoma" not in en and "left eye" not in en and "suggests" not in en


def test_the_letter_repeats_an_ai_finding_the_doctor_confirmed(retaken_record, doctor):
    sign(doctor, retaken_record, ["glaucoma_suspect"], "")
    with translation.override("zh-hans"):
        facts = report_inputs(record=retaken_record).facts

    zh = template_summary(facts, language="zh-hans")

    assert "医生结论：青光眼疑似。医生确认了 AI 辅助分析的提示：青光眼。医生建议：" in zh
    assert "正常眼底" not in zh
