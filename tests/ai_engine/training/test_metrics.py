"""Metric functions on hand-made predictions with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from ai_engine.training.metrics import (
    binary_metrics,
    decisions,
    evaluate_predictions,
    expected_calibration_error,
    majority_baseline,
    roc_auc,
    roc_curve,
    tune_class_offsets,
    tune_thresholds,
)


def test_roc_auc_counts_ordered_pairs_and_half_ties() -> None:
    # Pairs (pos, neg): 0.35>0.1 yes, 0.35>0.4 no, 0.8>both → 3 of 4.
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    assert roc_auc(np.array([1, 1]), np.array([0.2, 0.3])) is None


def test_roc_curve_runs_from_origin_to_one() -> None:
    fpr, tpr = roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]


def test_binary_metrics_exact() -> None:
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    guess = np.array([1, 1, 0, 1, 0, 0, 0, 0])
    m = binary_metrics(truth, guess)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 4)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(4 / 5)
    assert m["f1"] == pytest.approx(2 / 3)


def test_multiclass_report_uses_argmax_and_confusion_matrix() -> None:
    targets = np.eye(3)[[0, 0, 0, 1, 1, 2]]
    probs = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.6, 0.3, 0.1],
            [0.2, 0.7, 0.1],  # N called C
            [0.1, 0.8, 0.1],
            [0.3, 0.3, 0.4],  # C called G
            [0.1, 0.2, 0.7],
        ]
    )
    report = evaluate_predictions(targets, probs, ["N", "C", "G"], "multiclass", [0.5] * 3)
    assert report["confusion_matrix"]["matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["per_label"]["N"]["f1"] == pytest.approx(0.8)  # tp 2, fn 1
    assert report["per_label"]["C"]["f1"] == pytest.approx(0.5)  # tp 1, fp 1, fn 1
    assert report["per_label"]["G"]["f1"] == pytest.approx(2 / 3)  # tp 1, fp 1
    assert report["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert report["per_label"]["G"]["auc"] == 1.0
    assert report["n_images"] == 6
    baseline = report["majority_baseline"]
    assert baseline["predicts"] == "always N"
    assert baseline["f1"] == {"N": pytest.approx(2 * 3 / (2 * 3 + 3)), "C": 0.0, "G": 0.0}
    assert baseline["accuracy"] == 0.5


def test_multilabel_decisions_use_each_threshold() -> None:
    probs = np.array([[0.3, 0.6], [0.5, 0.2]])
    assert decisions(probs, "multilabel", [0.3, 0.7]).tolist() == [[True, False], [True, False]]
    assert decisions(probs, "multiclass", [0.9, 0.9]).tolist() == [[False, True], [True, False]]


def test_tune_thresholds_picks_best_f1_closest_to_half() -> None:
    targets = np.array([[1], [1], [0], [0]])
    probs = np.array([[0.30], [0.35], [0.20], [0.10]])
    # Any threshold in (0.20, 0.30] separates perfectly; 0.30 is closest to 0.5.
    assert tune_thresholds(targets, probs) == [0.3]


def test_expected_calibration_error() -> None:
    # Two bins: confidence 0.9 with 50 % right (gap 0.4), 0.55 with 50 % right (gap 0.05).
    confidence = np.array([0.9, 0.9, 0.55, 0.55])
    correct = np.array([1, 0, 1, 0])
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.5 * 0.4 + 0.5 * 0.05)


def test_majority_baseline_multilabel_predicts_the_commoner_side() -> None:
    targets = np.array([[1, 0], [1, 0], [0, 1]])
    baseline = majority_baseline(targets, ["N", "G"], "multilabel")
    assert baseline["f1"] == {"N": pytest.approx(0.8), "G": 0.0}
    assert baseline["auc"] == 0.5


def test_tune_class_offsets_moves_the_argmax_just_enough() -> None:
    targets = np.eye(3)[[0, 0, 1, 2, 2]]
    probs = np.array(
        [[0.7, 0.1, 0.2], [0.7, 0.1, 0.2], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4], [0.5, 0.1, 0.4]]
    )
    # G needs an offset above log(0.5/0.4) ≈ 0.22 and below log(0.7/0.2) ≈ 1.25: 0.3 is the
    # smallest on the 0.1 grid; C is already right and keeps 0.
    assert tune_class_offsets(targets, probs) == pytest.approx([0.0, 0.0, 0.3])


def test_quadratic_weighted_kappa_by_hand_and_edge_cases() -> None:
    from ai_engine.training.metrics import quadratic_weighted_kappa

    # Observed weighted disagreement 1/4, expected 15/12 (worked by hand) → 1 − 0.25/1.25.
    assert quadratic_weighted_kappa(np.array([0, 1, 2]), np.array([0, 2, 2]), 3) == (
        pytest.approx(0.8)
    )
    assert quadratic_weighted_kappa(np.array([0, 1, 4, 3]), np.array([0, 1, 4, 3]), 5) == 1.0
    # Always answering one grade agrees no better than chance.
    assert quadratic_weighted_kappa(np.array([0, 1, 2, 3]), np.array([1, 1, 1, 1]), 5) == 0.0
    # A far-off grade costs more than a near one.
    near = quadratic_weighted_kappa(np.array([0, 0, 4, 4]), np.array([0, 1, 4, 4]), 5)
    far = quadratic_weighted_kappa(np.array([0, 0, 4, 4]), np.array([0, 3, 4, 4]), 5)
    assert 1.0 > near > far


def grading_fixture() -> tuple[np.ndarray, np.ndarray]:
    """Six eyes, grades 0 0 1 2 3 4, with hand-set grade probabilities."""
    truth = [0, 0, 1, 2, 3, 4]
    probs = np.array(
        [
            [0.70, 0.20, 0.05, 0.05, 0.00],  # grade 0: P(≥2) 0.10
            [0.30, 0.30, 0.35, 0.05, 0.00],  # grade 0, argmax 2: P(≥2) 0.40
            [0.20, 0.60, 0.10, 0.10, 0.00],  # grade 1: P(≥2) 0.20
            [0.10, 0.55, 0.35, 0.00, 0.00],  # grade 2, argmax 1: P(≥2) 0.35
            [0.00, 0.10, 0.30, 0.60, 0.00],  # grade 3: P(≥2) 0.90, P(≥3) 0.60
            [0.00, 0.00, 0.10, 0.30, 0.60],  # grade 4: P(≥3) 0.90
        ]
    )
    return np.eye(5)[truth], probs


def test_dr_grading_metrics_referable_by_argmax_and_by_threshold() -> None:
    from ai_engine.training.metrics import dr_grading_metrics

    targets, probs = grading_fixture()
    grading = {"referable_from": 2, "vision_threatening_from": 3, "referable_threshold": None}
    by_argmax = dr_grading_metrics(targets, probs, grading)
    # Argmax grades 0 2 1 1 3 4: referable decisions F T F F T T vs truth F F F T T T.
    assert by_argmax["referable"] | {"auc": None} == {
        "from_grade": 2, "decision": "argmax grade >= 2", "threshold": None, "auc": None,
        "n_positive": 3, "n_negative": 3, "sensitivity": pytest.approx(2 / 3),
        "specificity": pytest.approx(2 / 3), "tp": 2, "fp": 1, "fn": 1, "tn": 2,
    }  # fmt: skip
    # P(≥2) ranks: positives 0.35 0.90 1.0 vs negatives 0.10 0.40 0.20 → 8 of 9 pairs.
    assert by_argmax["referable"]["auc"] == pytest.approx(8 / 9)
    assert by_argmax["vision_threatening"]["auc"] == 1.0
    assert by_argmax["vision_threatening"]["sensitivity"] == 1.0
    assert by_argmax["confusion_matrix"]["matrix"][2] == [0, 1, 0, 0, 0]
    assert by_argmax["grade_accuracy"] == pytest.approx(4 / 6)
    # The operating point P(≥2) ≥ 0.3 catches grade 2 as well, at the cost of the 0.40 negative.
    at_point = dr_grading_metrics(targets, probs, {**grading, "referable_threshold": 0.3})
    assert at_point["referable"]["decision"] == "P(grade >= 2) >= 0.3"
    assert at_point["referable"]["sensitivity"] == 1.0
    assert at_point["referable"]["specificity"] == pytest.approx(2 / 3)
    assert at_point["qwk"] == by_argmax["qwk"]


def test_sensitivity_first_threshold_is_the_highest_that_reaches_the_target() -> None:
    from ai_engine.training.metrics import sensitivity_first_threshold

    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    scores = np.array([0.95, 0.81234, 0.6, 0.2, 0.7, 0.5, 0.3, 0.1, 0.05, 0.0])
    # Three of four positives (0.75) are kept down to 0.6; the fourth needs 0.2.
    point = sensitivity_first_threshold(truth, scores, target=0.75)
    assert point["threshold"] == 0.6 and point["sensitivity"] == 0.75
    assert point["specificity"] == pytest.approx(5 / 6)
    point = sensitivity_first_threshold(truth, scores, target=0.9)
    assert point["threshold"] == 0.2 and point["sensitivity"] == 1.0
    assert point["specificity"] == pytest.approx(3 / 6)
    # Rounded down, never up: 0.81234 → 0.8123 still keeps that positive.
    assert sensitivity_first_threshold(truth, scores, target=0.5)["threshold"] == 0.8123
    with pytest.raises(ValueError, match="no positive"):
        sensitivity_first_threshold(np.zeros(3), np.ones(3))


def test_dr_grading_ci_brackets_the_point_figures_and_is_reproducible() -> None:
    from ai_engine.training.metrics import dr_grading_ci, dr_grading_metrics

    rng = np.random.default_rng(3)
    truth = rng.integers(0, 5, 200)
    logits = np.eye(5)[truth] * 2.0 + rng.normal(0, 1.0, (200, 5))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    targets = np.eye(5)[truth]
    grading = {"referable_from": 2, "vision_threatening_from": 3, "referable_threshold": 0.5}
    point = dr_grading_metrics(targets, probs, grading)
    groups = [f"p{i // 2}" for i in range(200)]
    ci = dr_grading_ci(targets, probs, grading, groups=groups, rounds=200, seed=1)
    assert ci["unit"] == "patient"
    assert ci["qwk"][0] < point["qwk"] < ci["qwk"][1]
    for name in ("referable", "vision_threatening"):
        for metric in ("auc", "sensitivity", "specificity"):
            low, high = ci[name][metric]
            assert low <= point[name][metric] <= high
    assert ci == dr_grading_ci(targets, probs, grading, groups=groups, rounds=200, seed=1)
