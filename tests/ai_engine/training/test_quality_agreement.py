"""The quality gate's agreement figures against reference grades (EyeQ good / usable / reject)."""

import pytest

from ai_engine.training.quality_agreement import (
    choose_reject_threshold,
    gate_agreement,
    point_agreement,
)


def test_agreement_counts_refusals_per_reference_grade() -> None:
    truth = ["good", "good", "good", "good", "usable", "usable", "reject", "reject", "reject"]
    refused = [False, False, False, True, True, False, True, True, False]
    predicted = ["good", "good", "usable", "reject", "reject", "usable", "reject", "reject", "good"]
    figures = point_agreement(truth, refused, predicted)
    assert figures["reject_recall"] == pytest.approx(2 / 3)
    assert figures["false_reject_good"] == pytest.approx(1 / 4)
    assert figures["refused_usable"] == pytest.approx(1 / 2)
    assert figures["binary_accuracy"] == pytest.approx(6 / 9)  # 3 good + 1 usable + 2 reject
    assert figures["accuracy"] == pytest.approx(5 / 9)


def test_a_gate_without_grades_has_no_three_class_accuracy_and_empty_grades_have_none() -> None:
    figures = point_agreement(["good", "good"], [False, True])
    assert "accuracy" not in figures
    assert figures["reject_recall"] is None and figures["false_reject_good"] == 0.5


def test_unknown_grades_and_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown reference grades \\['bad'\\]"):
        point_agreement(["bad"], [True])
    with pytest.raises(ValueError, match="one entry per photo"):
        point_agreement(["good", "reject"], [True])


def test_bootstrap_intervals_hold_the_point_and_resample_patients() -> None:
    truth = ["reject", "reject", "good", "good"] * 10
    refused = [True, False, False, False] * 10
    patients = [f"p{i // 2}" for i in range(40)]  # both eyes of a patient: one reject each
    result = gate_agreement(truth, refused, patients, rounds=200)
    assert (result["n_images"], result["n_patients"]) == (40, 20)
    assert result["counts"]["reject"] == {"n": 20, "refused": 10}
    assert result["reject_recall"] == 0.5
    # every patient has exactly one refused reject of two: resampling patients cannot move it
    assert result["ci95"]["reject_recall"] == [0.5, 0.5]
    low, high = result["ci95"]["binary_accuracy"]
    assert low <= result["binary_accuracy"] <= high


def test_the_threshold_is_the_highest_that_keeps_the_reject_recall() -> None:
    truth = ["reject"] * 4 + ["good"] * 3
    p_reject = [0.9, 0.7, 0.4, 0.2, 0.5, 0.1, 0.05]
    assert choose_reject_threshold(truth, p_reject, 0.75) == 0.4  # refuses 3 of 4 rejects
    assert choose_reject_threshold(truth, p_reject, 0.5) == 0.7
    assert choose_reject_threshold(truth, p_reject, 1.0) == 0.2
    with pytest.raises(ValueError, match="no reference-'reject' photo"):
        choose_reject_threshold(["good"], [0.3], 0.85)


def _join_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "scripts" / "eyeq_quality_labels.py"
    spec = importlib.util.spec_from_file_location("eyeq_quality_labels", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_eyeq_grades_join_the_fundus_table_and_bad_rows_are_named(tmp_path) -> None:
    script = _join_script()
    fundus = [
        {"file": "images/a.jpeg", "dataset": "eyepacs", "patient": "eyepacs-1", "eye": "left"},
        {"file": "images/b.jpeg", "dataset": "eyepacs256", "patient": "eyepacs-2", "eye": "right"},
        {"file": "images/c.jpeg", "dataset": "odir", "patient": "odir-3", "eye": "left"},
    ]
    joined = script.join_quality_labels(
        fundus,
        [
            {"file": "images/b.jpeg", "quality": "reject"},
            {"file": "images/a.jpeg", "quality": "good"},
        ],
    )
    assert [(r["file"], r["patient"], r["quality"]) for r in joined] == [
        ("images/a.jpeg", "eyepacs-1", "good"),
        ("images/b.jpeg", "eyepacs-2", "reject"),
    ]
    with pytest.raises(script.LabelJoinError, match="line 2: needs a file and a quality"):
        script.join_quality_labels(fundus, [{"file": "images/a.jpeg", "quality": "bad"}])
    with pytest.raises(script.LabelJoinError, match="1 EyeQ files are not in fundus/labels.csv"):
        script.join_quality_labels(fundus, [{"file": "images/z.jpeg", "quality": "good"}])
    assert script.main(["--data", str(tmp_path), "--out", str(tmp_path / "out.csv")]) == 2
    assert not (tmp_path / "out.csv").exists()
