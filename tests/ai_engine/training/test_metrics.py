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
