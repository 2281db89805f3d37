"""The report PDF states the doctor's per-eye DR grade and macular oedema in words."""

from __future__ import annotations

from reports.services import report_generate
from tests.reports.conftest import pdf_text, sign


def _pdf(report, tmp_path) -> str:
    with report.pdf.open("rb") as stored:
        return "".join(pdf_text(stored.read(), tmp_path).split())


def test_the_doctors_grades_are_in_words_and_marked_as_the_authority(
    analysed_record, doctor, tmp_path
):
    sign(doctor, analysed_record, dr_grade_od=2, dme_od=True, dr_grade_os="ungradable")
    text = _pdf(report_generate(record=analysed_record, actor=doctor), tmp_path)
    assert "糖网分级（医生）:中度非增殖期糖尿病视网膜病变(R2);糖尿病黄斑水肿" in text
    assert "糖网分级（医生）:不可分级" in text
    assert "医生的糖网分级和黄斑水肿判断为本次筛查的依据" in text


def test_an_english_report_states_the_grade_in_english(analysed_record, doctor, tmp_path):
    sign(doctor, analysed_record, dr_grade_od=3, dme_od=False)
    report = report_generate(record=analysed_record, actor=doctor, language="en")
    text = _pdf(report, tmp_path)
    assert (
        "DRgrade(doctor):Severenon-proliferativediabeticretinopathy(R3);Nodiabeticmacularoedema"
        in text
    )
    assert "Thedoctor'sDRgradeandmacularoedemaassessmentaretheauthority" in text


def test_no_grading_row_when_the_doctor_graded_nothing(analysed_record, doctor, tmp_path):
    sign(doctor, analysed_record)
    text = _pdf(report_generate(record=analysed_record, actor=doctor), tmp_path)
    assert "糖网分级（医生）" not in text
