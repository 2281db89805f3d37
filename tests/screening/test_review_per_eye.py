"""The per-eye clinical record: conclusion, ICD-10 codes, text and recommendation per eye."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import translation

from core.models import AuditEvent
from screening import icd10
from screening.models import ConclusionCode, DoctorReview, RecordStatus, ScreeningRecord
from screening.services import review_clean, review_save_draft, review_sign


@pytest.fixture
def uploaded_record(record):
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    record.refresh_from_db()
    return record


PER_EYE = {
    "conclusion_codes_od": ["dr_moderate"],
    "diagnosis_codes_od": [],
    "conclusion_text_od": " 黄斑区硬性渗出 ",
    "recommendation_od": "refer",
    "conclusion_codes_os": ["normal"],
    "diagnosis_codes_os": [],
    "conclusion_text_os": "",
    "recommendation_os": "routine",
}


# --- the catalogue --------------------------------------------------------------------------
def test_every_conclusion_has_defaults_and_every_default_is_in_the_catalogue():
    assert set(icd10.DEFAULT_CODES) == set(ConclusionCode.values)
    defaults = {code for codes in icd10.DEFAULT_CODES.values() for code in codes}
    assert icd10.unknown_codes(defaults) == []
    for code in ("E11.3", "H36.0", "H40.0", "H25.9", "H26.9", "H35.3", "H35.0", "H44.2"):
        assert code in icd10.CATALOGUE
    for code in ("H35.8", "H33.0", "H34.8", "Z01.0"):
        assert code in icd10.CATALOGUE


def test_defaults_follow_the_picked_conclusions_each_code_once():
    assert icd10.default_codes(["dr_mild", "cataract", "dr_severe"]) == ["E11.3", "H36.0", "H26.9"]
    assert icd10.default_codes(["other"]) == []


def test_typed_codes_are_split_upper_cased_and_deduplicated():
    assert icd10.parse_codes(" e11.3，H36.0; h36.0 、H40.0") == ["E11.3", "H36.0", "H40.0"]
    assert icd10.parse_codes(["h26.9", " "]) == ["H26.9"]
    assert icd10.parse_codes(None) == []


def test_names_in_chinese_and_english():
    assert icd10.code_name("H36.0", "zh-hans") == "糖尿病性视网膜病变"
    assert icd10.code_name("H36.0", "en") == "Diabetic retinopathy"
    with translation.override("zh-hans"):
        assert icd10.code_name("H40.0") == "可疑青光眼"
    assert icd10.code_name("X99.9", "en") == "X99.9"


# --- saving ---------------------------------------------------------------------------------
def test_the_eyes_are_saved_with_default_codes_and_the_visit_is_derived(doctor, uploaded_record):
    review = review_save_draft(doctor=doctor, record=uploaded_record, **PER_EYE)

    review.refresh_from_db()
    assert review.conclusion_codes_od == ["dr_moderate"]
    assert review.diagnosis_codes_od == ["E11.3", "H36.0"]
    assert review.diagnosis_codes_os == ["Z01.0"]
    assert (review.conclusion_text_od, review.conclusion_text_os) == ("黄斑区硬性渗出", "")
    assert (review.recommendation_od, review.recommendation_os) == ("refer", "routine")
    # Left empty: the union of the eyes' conclusions (the abnormal one outranks "normal") and
    # the most pressing recommendation.
    assert review.conclusion_codes == ["dr_moderate"]
    assert review.recommendation == "refer"
    created = AuditEvent.objects.get(action="create", object_type="screening.doctorreview")
    assert created.changes["diagnosis_codes_od"] == [None, ["E11.3", "H36.0"]]
    assert created.changes["recommendation_os"] == [None, "routine"]


def test_an_eyes_dr_conclusion_fills_its_empty_icdr_grade(doctor, uploaded_record):
    """One fact, one answer: the eye concluded "moderate NPDR" is graded R2 for the statistics,
    the export and the AI agreement even when the doctor left the grade field empty."""
    review = review_save_draft(
        doctor=doctor,
        record=uploaded_record,
        **{**PER_EYE, "conclusion_codes_os": ["dr_mild", "dr_severe"]},
    )

    review.refresh_from_db()
    assert (review.dr_grade_od, review.dr_grade_os) == ("2", "3")  # the worse of two picks
    assert (review.dme_od, review.dme_os) == (None, None)  # oedema is not implied


def test_a_given_icdr_grade_is_kept_beside_a_normal_eye(doctor, uploaded_record):
    review = review_save_draft(
        doctor=doctor, record=uploaded_record, **PER_EYE, dr_grade_os="0", dr_grade_od="2"
    )

    review.refresh_from_db()
    assert (review.dr_grade_od, review.dr_grade_os) == ("2", "0")


def test_the_doctors_own_codes_and_visit_conclusion_are_kept(doctor, uploaded_record):
    review = review_save_draft(
        doctor=doctor,
        record=uploaded_record,
        conclusion_codes=["dr_moderate", "cataract"],
        recommendation="follow_up",
        **{**PER_EYE, "diagnosis_codes_od": "e10.3, H36.0", "conclusion_codes_os": ["cataract"]},
    )
    assert review.diagnosis_codes_od == ["E10.3", "H36.0"]
    assert review.diagnosis_codes_os == ["H26.9"]
    assert (review.conclusion_codes, review.recommendation) == (
        ["dr_moderate", "cataract"],
        "follow_up",
    )


def test_one_eye_ungradable_and_the_other_normal_makes_the_visit_ungradable(
    doctor, uploaded_record
):
    review = review_save_draft(
        doctor=doctor,
        record=uploaded_record,
        conclusion_codes_od=["ungradable"],
        recommendation_od="retake",
        conclusion_codes_os=["normal"],
        recommendation_os="routine",
    )
    assert (review.conclusion_codes, review.recommendation) == (["ungradable"], "retake")
    assert (review.diagnosis_codes_od, review.diagnosis_codes_os) == ([], ["Z01.0"])


def test_bad_per_eye_input_is_refused_with_clear_field_errors(doctor, uploaded_record):
    with pytest.raises(ValidationError) as excinfo:
        review_save_draft(
            doctor=doctor,
            record=uploaded_record,
            conclusion_codes_od=["normal", "cataract"],
            diagnosis_codes_od=["H26.9"],
            conclusion_codes_os=["glaucoma_suspect"],
            diagnosis_codes_os="H40.0, X12.3",
            recommendation_os="soon",
        )
    assert excinfo.value.message_dict == {
        "conclusion_codes_od": [
            "For the right eye (OD), “no abnormality” and “not gradable” cannot be combined "
            "with other conclusions."
        ],
        "diagnosis_codes_os": [
            "Not in the clinic's ICD-10 catalogue: X12.3 (for the left eye (OS)). Use codes "
            "such as E11.3, H36.0, H40.0 or H26.9."
        ],
        "recommendation_os": ["Choose a recommendation for the left eye (OS), or leave it empty."],
        "recommendation": ["Choose a recommendation."],  # no valid one to derive it from
    }
    assert not DoctorReview.objects.exists()
    assert not AuditEvent.objects.filter(object_type="screening.doctorreview").exists()


def test_codes_without_a_conclusion_and_normal_with_a_diagnosis_are_refused(
    doctor, uploaded_record
):
    with pytest.raises(ValidationError) as excinfo:
        review_save_draft(
            doctor=doctor,
            record=uploaded_record,
            conclusion_codes=["glaucoma_suspect"],
            recommendation="follow_up",
            diagnosis_codes_od=["H40.0"],
            conclusion_codes_os=["normal"],
            diagnosis_codes_os=["H40.0"],
        )
    assert excinfo.value.message_dict == {
        "conclusion_codes_od": [
            "Choose the conclusion for the right eye (OD), or leave its other fields empty."
        ],
        "diagnosis_codes_os": [
            "For the left eye (OS), “No abnormality found” cannot carry a diagnosis code: H40.0."
        ],
    }
    with pytest.raises(ValidationError) as excinfo:
        review_save_draft(
            doctor=doctor,
            record=uploaded_record,
            conclusion_codes_od=["cataract"],
            diagnosis_codes_od=["Z01.0", "H26.9"],
            recommendation_od="follow_up",
        )
    assert excinfo.value.message_dict == {
        "diagnosis_codes_od": [
            "For the right eye (OD), Z01.0 (no abnormality) goes only with the conclusion “No "
            "abnormality found” and no other code."
        ]
    }
    assert not DoctorReview.objects.exists()


def test_an_eye_called_normal_cannot_contradict_its_dr_grade_nor_the_visit_its_eyes(
    doctor, uploaded_record
):
    with pytest.raises(ValidationError) as excinfo:
        review_clean(
            record=uploaded_record,
            fields={
                "conclusion_codes": ["normal"],
                "recommendation": "routine",
                "conclusion_codes_od": ["normal"],
                "dr_grade_od": "2",
                "conclusion_codes_os": ["amd"],
            },
        )
    errors = excinfo.value.message_dict
    assert errors["conclusion_codes_od"] == [
        "“No abnormality found” for the right eye (OD) contradicts the DR grade or macular "
        "oedema recorded for it: correct one or the other."
    ]
    assert errors["conclusion_codes"] == [
        "“No abnormality found” contradicts the diabetic retinopathy grade or macular oedema "
        "recorded for an eye: correct one or the other."
    ]


def test_an_eyes_dr_conclusion_must_match_its_icdr_grade(doctor, uploaded_record):
    with pytest.raises(ValidationError) as excinfo:
        review_save_draft(
            doctor=doctor,
            record=uploaded_record,
            recommendation="refer",
            conclusion_codes_od=["dr_moderate"],
            dr_grade_od="R1",
        )
    assert excinfo.value.message_dict == {
        "conclusion_codes_od": [
            "The diabetic retinopathy conclusion for the right eye (OD) does not match its "
            "ICDR grade (R1): correct one or the other."
        ]
    }
    assert not DoctorReview.objects.exists()
    review = review_save_draft(
        doctor=doctor,
        record=uploaded_record,
        recommendation="refer",
        conclusion_codes_od=["dr_moderate"],
        dr_grade_od="R2",
    )
    assert (review.conclusion_codes_od, review.dr_grade_od) == (["dr_moderate"], "2")


def test_nothing_for_the_visit_nor_the_eyes_is_refused(doctor, uploaded_record):
    with pytest.raises(ValidationError) as excinfo:
        review_save_draft(doctor=doctor, record=uploaded_record)
    assert excinfo.value.message_dict == {
        "conclusion_codes": ["Choose at least one conclusion."],
        "recommendation": ["Choose a recommendation."],
    }


def test_a_technician_cannot_write_per_eye_conclusions(technician, uploaded_record):
    with pytest.raises(PermissionDenied):
        review_save_draft(doctor=technician, record=uploaded_record, **PER_EYE)
    assert not DoctorReview.objects.exists()


# --- amendments -----------------------------------------------------------------------------
def test_an_amendment_carries_the_eyes_over_unless_it_changes_them(doctor, uploaded_record):
    signed = review_sign(
        doctor=doctor, review=review_save_draft(doctor=doctor, record=uploaded_record, **PER_EYE)
    )
    # The visit's fields only (as the admin sends them): the eyes stay as signed.
    amendment = review_save_draft(
        doctor=doctor,
        record=uploaded_record,
        conclusion_codes=["dr_moderate"],
        recommendation="urgent",
        amendment_reason="复诊后改为紧急转诊",
    )
    assert amendment.pk != signed.pk and amendment.supersedes_id == signed.pk
    assert amendment.conclusion_codes_od == ["dr_moderate"]
    assert amendment.diagnosis_codes_od == ["E11.3", "H36.0"]
    assert amendment.conclusion_text_od == "黄斑区硬性渗出"
    assert (amendment.recommendation_od, amendment.recommendation_os) == ("refer", "routine")
    # The amendment changes one eye; the other is carried over.
    amendment = review_save_draft(
        doctor=doctor,
        record=uploaded_record,
        conclusion_codes=["dr_moderate", "glaucoma_suspect"],
        recommendation="urgent",
        conclusion_codes_os=["glaucoma_suspect"],
        diagnosis_codes_os=[],
        recommendation_os="follow_up",
        amendment_reason="复诊后改为紧急转诊",
    )
    amendment.refresh_from_db()
    assert amendment.version == 2
    assert (amendment.conclusion_codes_os, amendment.diagnosis_codes_os) == (
        ["glaucoma_suspect"],
        ["H40.0"],
    )
    assert amendment.conclusion_codes_od == ["dr_moderate"]
    signed.refresh_from_db()
    assert (signed.conclusion_codes_os, signed.diagnosis_codes_os) == (["normal"], ["Z01.0"])


def test_the_review_names_its_eyes_diagnoses(doctor, uploaded_record):
    review = review_save_draft(doctor=doctor, record=uploaded_record, **PER_EYE)
    od, os_ = review.eye_conclusions
    assert (od.eye, od.conclusion_labels, od.recommendation_label) == (
        "OD",
        ["Moderate non-proliferative diabetic retinopathy"],
        "Refer to an ophthalmologist",
    )
    assert od.diagnoses == [
        ("E11.3", "Type 2 diabetes mellitus with ophthalmic complications"),
        ("H36.0", "Diabetic retinopathy"),
    ]
    assert os_.diagnoses == [("Z01.0", "Examination of eyes and vision (no abnormality)")]
    assert [eye.eye for eye in review.recorded_eye_conclusions] == ["OD", "OS"]
