"""Class balance and losses: median-frequency weights, focal loss, weighted BCE/CE."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("focal", "bce", "ce")


def label_frequencies(targets: np.ndarray, task: str) -> np.ndarray:
    """Positives per class; binary counts (negatives, positives), multilabel adds a last entry
    for rows with no positive label."""
    targets = np.asarray(targets) > 0.5
    if task == "binary":
        positives = int(targets[:, 0].sum())
        return np.array([len(targets) - positives, positives], dtype=np.float64)
    counts = targets.sum(axis=0).astype(np.float64)
    if task == "multilabel":
        counts = np.append(counts, float((~targets.any(axis=1)).sum()))
    return counts


def median_frequency_weights(targets: np.ndarray, task: str) -> np.ndarray:
    """Per class ``median(freq) / freq`` (classes that never occur get 0)."""
    freq = label_frequencies(targets, task)
    present = freq[freq > 0]
    median = float(np.median(present)) if len(present) else 1.0
    return np.where(freq > 0, median / np.maximum(freq, 1e-12), 0.0)


def sample_weights(targets: np.ndarray, task: str) -> np.ndarray:
    """Each image's drawing weight: the largest median-frequency weight among its labels, so
    minority labels are drawn about as often as the median label."""
    targets = np.asarray(targets) > 0.5
    weights = median_frequency_weights(targets, task)
    if task == "binary":
        return np.where(targets[:, 0], weights[1], weights[0])
    if task == "multiclass":
        return weights[targets.argmax(axis=1)]
    per_label = np.where(targets, weights[None, : targets.shape[1]], 0.0).max(axis=1)
    return np.where(targets.any(axis=1), per_label, weights[-1])


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017): ``-w · (1 − p_t)^γ · log p_t``.

    Multiclass: softmax over the classes, ``w`` per class. Multilabel/binary: a sigmoid per
    output, ``w`` weighs the positive term of each output (like BCE's ``pos_weight``).
    """

    def __init__(self, task: str, gamma: float = 2.0, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.task = task
        self.gamma = gamma
        self.register_buffer("weight", weight if weight is not None else torch.empty(0))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        weight = self.weight if self.weight.numel() else None
        if self.task == "multiclass":
            log_p = F.log_softmax(logits, dim=1)
            index = targets.argmax(dim=1, keepdim=True)
            log_pt = log_p.gather(1, index).squeeze(1)
            loss = -((1.0 - log_pt.exp()) ** self.gamma) * log_pt
            if weight is not None:
                loss = loss * weight[index.squeeze(1)]
            return loss.mean()
        log_p = F.logsigmoid(logits)
        log_not_p = F.logsigmoid(-logits)
        p = log_p.exp()
        positive = -targets * (1.0 - p) ** self.gamma * log_p
        negative = -(1.0 - targets) * p**self.gamma * log_not_p
        if weight is not None:
            positive = positive * weight.view(1, -1)
        return (positive + negative).mean()


def make_loss(
    kind: str,
    task: str,
    targets: np.ndarray,
    *,
    balance: bool,
    gamma: float = 2.0,
    label_smoothing: float = 0.0,
) -> nn.Module:
    """The training loss. With ``balance`` (no oversampling) classes are weighted by median
    frequency (multiclass) or positives by ``negatives / positives`` (BCE/focal, capped at 20)."""
    if kind not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)} (got {kind!r})")
    if kind == "ce" and task != "multiclass":
        raise ValueError("--loss ce needs --task multiclass; use bce or focal")
    if kind == "bce" and task == "multiclass":
        raise ValueError("--loss bce needs a multilabel or binary task; use ce or focal")
    weight = None
    if balance:
        if task == "multiclass":
            weight = torch.tensor(median_frequency_weights(targets, task), dtype=torch.float32)
        else:
            positives = np.asarray(targets).sum(axis=0)
            ratio = (len(targets) - positives) / np.maximum(positives, 1.0)
            weight = torch.tensor(np.clip(ratio, 1.0, 20.0), dtype=torch.float32)
    if kind == "focal":
        return FocalLoss(task, gamma, weight)
    if kind == "ce":
        return _SoftTargetCE(weight, label_smoothing)
    return nn.BCEWithLogitsLoss(pos_weight=weight)


class _SoftTargetCE(nn.Module):
    def __init__(self, weight: torch.Tensor | None, label_smoothing: float) -> None:
        super().__init__()
        self.register_buffer("weight", weight if weight is not None else torch.empty(0))
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            logits.float(),
            targets.argmax(dim=1),
            weight=self.weight if self.weight.numel() else None,
            label_smoothing=self.label_smoothing,
        )
