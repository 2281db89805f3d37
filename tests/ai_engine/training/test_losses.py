"""Median-frequency oversampling weights and focal / weighted losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ai_engine.training.losses import FocalLoss, make_loss, median_frequency_weights, sample_weights


def test_median_frequency_weights_multiclass() -> None:
    targets = np.eye(3)[[0] * 6 + [1] * 2 + [2] * 3]  # frequencies 6, 2, 3 → median 3
    assert median_frequency_weights(targets, "multiclass").tolist() == [0.5, 1.5, 1.0]
    assert sample_weights(targets, "multiclass").tolist() == [0.5] * 6 + [1.5] * 2 + [1.0] * 3


def test_oversampling_balances_expected_draws() -> None:
    targets = np.eye(3)[[0] * 6 + [1] * 2 + [2] * 3]
    weights = sample_weights(targets, "multiclass")
    per_class = [weights[targets[:, k] > 0].sum() for k in range(3)]
    assert per_class == [3.0, 3.0, 3.0]


def test_multilabel_sample_weight_is_the_rarest_label_and_none_counts_as_a_class() -> None:
    # N 3, G 1, none 2 → median 2 → weights N 2/3, G 2, none 1.
    targets = np.array([[1, 0], [1, 0], [1, 1], [0, 0], [0, 0]])
    assert sample_weights(targets, "multilabel").tolist() == pytest.approx([2 / 3, 2 / 3, 2, 1, 1])


def test_binary_sample_weights() -> None:
    targets = np.array([[1], [0], [0], [0]])  # negatives 3, positives 1 → median 2
    assert sample_weights(targets, "binary").tolist() == pytest.approx([2, 2 / 3, 2 / 3, 2 / 3])


def test_focal_loss_multiclass_value() -> None:
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p = (0.25, 0.75)
    target = torch.tensor([[0.0, 1.0]])
    expected = -((1 - 0.75) ** 2) * math.log(0.75)
    assert FocalLoss("multiclass", gamma=2.0)(logits, target).item() == pytest.approx(expected)
    # γ = 0 is plain cross-entropy.
    assert FocalLoss("multiclass", gamma=0.0)(logits, target).item() == pytest.approx(
        -math.log(0.75)
    )


def test_focal_loss_multilabel_value_and_positive_weight() -> None:
    logits = torch.tensor([[0.0, 0.0]])  # p = 0.5 for both
    target = torch.tensor([[1.0, 0.0]])
    term = 0.25 * math.log(2.0)  # (1 - 0.5)^2 · −log 0.5
    assert FocalLoss("multilabel")(logits, target).item() == pytest.approx(term)
    weighted = FocalLoss("multilabel", weight=torch.tensor([3.0, 1.0]))(logits, target)
    assert weighted.item() == pytest.approx((3 * term + term) / 2)


def test_weighted_bce_uses_negative_to_positive_ratio() -> None:
    targets = np.array([[1], [0], [0], [0]])
    loss = make_loss("bce", "binary", targets, balance=True)
    assert loss.pos_weight.tolist() == [3.0]


def test_loss_task_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="ce needs --task multiclass"):
        make_loss("ce", "multilabel", np.zeros((2, 2)), balance=False)
