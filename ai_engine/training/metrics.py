"""Classification metrics in plain numpy: per label, macro, confusion matrices, calibration.

Decisions follow the card's conventions (see ``ai_engine.inference.card``): multiclass takes
the argmax, multilabel and binary compare each probability with its label's threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half); ``None`` when only one class is present."""
    y_true = np.asarray(y_true).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(y_true.sum())
    n_neg = len(y_true) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # Average ranks over ties (Mann–Whitney U).
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    u = ranks[y_true].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    y_true = np.asarray(y_true).astype(bool)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    sorted_scores = np.asarray(scores, dtype=np.float64)[order]
    hits = y_true[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(hits) - 1]
    tps = np.cumsum(hits)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    n_pos, n_neg = max(1, int(y_true.sum())), max(1, int((~y_true).sum()))
    return np.r_[0.0, fps / n_neg], np.r_[0.0, tps / n_pos]


def binary_counts(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, int]:
    y_true = np.asarray(y_true).astype(bool)
    y_pred = np.asarray(y_pred).astype(bool)
    return {
        "tp": int((y_true & y_pred).sum()),
        "fp": int((~y_true & y_pred).sum()),
        "fn": int((y_true & ~y_pred).sum()),
        "tn": int((~y_true & ~y_pred).sum()),
    }


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def binary_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | int]:
    c = binary_counts(y_true, y_pred)
    precision = _ratio(c["tp"], c["tp"] + c["fp"])
    recall = _ratio(c["tp"], c["tp"] + c["fn"])
    return {
        "n_positive": c["tp"] + c["fn"],
        "n_negative": c["tn"] + c["fp"],
        **c,
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"]),
        "sensitivity": recall,
        "specificity": _ratio(c["tn"], c["tn"] + c["fp"]),
    }


def decisions(probs: np.ndarray, task: str, thresholds: Sequence[float]) -> np.ndarray:
    """``N×K`` probabilities → ``N×K`` booleans per the card's positivity rule."""
    probs = np.asarray(probs, dtype=np.float64)
    if task == "multiclass":
        out = np.zeros(probs.shape, dtype=bool)
        out[np.arange(len(probs)), probs.argmax(axis=1)] = True
        return out
    return probs >= np.asarray(thresholds, dtype=np.float64)[None, :]


def tune_thresholds(
    targets: np.ndarray, probs: np.ndarray, *, grid: Sequence[float] | None = None
) -> list[float]:
    """Per label, the threshold with the best F1 (ties: the one closest to 0.5)."""
    grid = np.round(np.arange(0.02, 0.981, 0.01), 2) if grid is None else np.asarray(grid)
    chosen = []
    for k in range(targets.shape[1]):
        truth = targets[:, k] > 0.5
        best, best_key = 0.5, (-1.0, 0.0)
        for t in grid:
            f1 = binary_metrics(truth, probs[:, k] >= t)["f1"]
            key = (round(f1, 12), -abs(float(t) - 0.5))
            if key > best_key:
                best, best_key = float(t), key
        chosen.append(best)
    return chosen


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float:
    """ECE over equal-width confidence bins: Σ |accuracy − confidence| × share of samples."""
    confidence = np.asarray(confidence, dtype=np.float64).ravel()
    correct = np.asarray(correct, dtype=np.float64).ravel()
    if len(confidence) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        chosen = which == b
        if chosen.any():
            total += chosen.mean() * abs(correct[chosen].mean() - confidence[chosen].mean())
    return float(total)


def calibration_error(targets: np.ndarray, probs: np.ndarray, task: str, bins: int = 10) -> float:
    """Multiclass: top-label ECE; multilabel/binary: ECE over every (image, label) probability."""
    if task == "multiclass":
        top = probs.argmax(axis=1)
        return expected_calibration_error(
            probs.max(axis=1), targets[np.arange(len(targets)), top] > 0.5, bins
        )
    return expected_calibration_error(probs, targets > 0.5, bins)


def evaluate_predictions(
    targets: np.ndarray,
    probs: np.ndarray,
    codes: Sequence[str],
    task: str,
    thresholds: Sequence[float],
) -> dict[str, Any]:
    """The card's ``validation`` block: per label, macro, confusion matrices, ECE, baseline."""
    targets = np.asarray(targets, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    predicted = decisions(probs, task, thresholds)
    per_label: dict[str, dict[str, Any]] = {}
    for k, code in enumerate(codes):
        truth = targets[:, k] > 0.5
        entry: dict[str, Any] = binary_metrics(truth, predicted[:, k])
        entry["auc"] = roc_auc(truth, probs[:, k])
        entry["threshold"] = None if task == "multiclass" else float(thresholds[k])
        per_label[code] = entry
    f1s = [entry["f1"] for entry in per_label.values()]
    aucs = [entry["auc"] for entry in per_label.values() if entry["auc"] is not None]
    result: dict[str, Any] = {
        "n_images": len(targets),
        "decision": "argmax" if task == "multiclass" else "probability >= label threshold",
        "macro_f1": float(np.mean(f1s)),
        "macro_auc": float(np.mean(aucs)) if aucs else None,
        "per_label": per_label,
        "ece": calibration_error(targets, probs, task),
    }
    if task == "multiclass":
        truth = targets.argmax(axis=1)
        guess = probs.argmax(axis=1)
        matrix = np.zeros((len(codes), len(codes)), dtype=int)
        np.add.at(matrix, (truth, guess), 1)
        result["accuracy"] = float((truth == guess).mean())
        result["confusion_matrix"] = {
            "rows": "true",
            "columns": "predicted",
            "labels": list(codes),
            "matrix": matrix.tolist(),
        }
    else:
        result["confusion_matrix"] = {
            code: {key: per_label[code][key] for key in ("tp", "fp", "fn", "tn")} for code in codes
        }
    result["majority_baseline"] = majority_baseline(targets, codes, task)
    return result


def majority_baseline(targets: np.ndarray, codes: Sequence[str], task: str) -> dict[str, Any]:
    """What always answering the commonest class (multiclass) or each label's commoner side
    (multilabel/binary) would score; a constant score has AUC 0.5."""
    targets = np.asarray(targets) > 0.5
    if task == "multiclass":
        majority = int(targets.sum(axis=0).argmax())
        predicted = np.zeros_like(targets)
        predicted[:, majority] = True
        description = f"always {codes[majority]}"
    else:
        predicted = np.repeat((targets.mean(axis=0) > 0.5)[None, :], len(targets), axis=0)
        description = "each label's commoner answer"
    f1 = {
        code: binary_metrics(targets[:, k], predicted[:, k])["f1"] for k, code in enumerate(codes)
    }
    out: dict[str, Any] = {
        "predicts": description,
        "macro_f1": float(np.mean(list(f1.values()))),
        "f1": f1,
        "auc": 0.5,
    }
    if task == "multiclass":
        out["accuracy"] = float(targets[:, majority].mean())
    return out


def tune_class_offsets(
    targets: np.ndarray, probs: np.ndarray, *, span: float = 2.0, step: float = 0.1, rounds: int = 3
) -> list[float]:
    """Multiclass: additive logit offsets (first class fixed at 0) that maximise the macro-F1
    of ``argmax(log p + offset)`` — the multiclass counterpart of per-label thresholds. Added
    to the classifier's bias they change the model's argmax in exactly this way."""
    targets = np.asarray(targets) > 0.5
    logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0))
    k = logp.shape[1]
    grid = np.round(np.arange(-span, span + step / 2, step), 6)

    def macro_f1(offsets: np.ndarray) -> float:
        guess = (logp + offsets).argmax(axis=1)
        predicted = np.zeros_like(targets)
        predicted[np.arange(len(guess)), guess] = True
        return float(
            np.mean([binary_metrics(targets[:, j], predicted[:, j])["f1"] for j in range(k)])
        )

    offsets = np.zeros(k)
    best = macro_f1(offsets)
    for _ in range(rounds):
        changed = False
        for j in range(1, k):
            for value in grid:
                trial = offsets.copy()
                trial[j] = value
                score = macro_f1(trial)
                # Only a strictly better score moves an offset away from where it is.
                if score > best + 1e-12 or (
                    abs(score - best) <= 1e-12 and abs(value) < abs(offsets[j]) - 1e-9
                ):
                    best, offsets, changed = score, trial, True
        if not changed:
            break
    return [float(v) for v in offsets]


def bootstrap_ci(
    targets: np.ndarray,
    probs: np.ndarray,
    codes: Sequence[str],
    task: str,
    thresholds: Sequence[float],
    *,
    groups: Sequence[str] | None = None,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Percentile bootstrap intervals for macro-F1 and each label's F1, AUC, sensitivity and
    specificity. ``groups`` (patient ids) resamples whole patients, so both eyes of a patient
    stay together as they do in the split."""
    targets = np.asarray(targets, dtype=np.float64) > 0.5
    probs = np.asarray(probs, dtype=np.float64)
    predicted = decisions(probs, task, thresholds)
    keys = np.asarray(groups if groups is not None else np.arange(len(targets)))
    units, inverse = np.unique(keys, return_inverse=True)
    members = [np.flatnonzero(inverse == u) for u in range(len(units))]
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {"macro_f1": []}
    for _ in range(rounds):
        chosen = rng.integers(0, len(units), len(units))
        index = np.concatenate([members[u] for u in chosen])
        f1s = []
        for k, code in enumerate(codes):
            truth, guess = targets[index, k], predicted[index, k]
            m = binary_metrics(truth, guess)
            f1s.append(m["f1"])
            draws.setdefault(f"{code}.f1", []).append(m["f1"])
            draws.setdefault(f"{code}.sensitivity", []).append(m["sensitivity"])
            draws.setdefault(f"{code}.specificity", []).append(m["specificity"])
            auc = roc_auc(truth, probs[index, k])
            if auc is not None:
                draws.setdefault(f"{code}.auc", []).append(auc)
        draws["macro_f1"].append(float(np.mean(f1s)))
    tail = (1.0 - level) / 2.0 * 100.0

    def interval(values: list[float]) -> list[float]:
        low, high = np.percentile(values, [tail, 100.0 - tail])
        return [round(float(low), 4), round(float(high), 4)]

    result: dict[str, Any] = {
        "level": level,
        "rounds": rounds,
        "unit": "patient" if groups is not None else "image",
        "macro_f1": interval(draws["macro_f1"]),
        "per_label": {},
    }
    for code in codes:
        result["per_label"][code] = {
            metric: interval(draws[f"{code}.{metric}"])
            for metric in ("f1", "auc", "sensitivity", "specificity")
            if draws.get(f"{code}.{metric}")
        }
    return result


# --- ICDR grading (cards with a ``dr_grading`` block) ------------------------------------------
def quadratic_weighted_kappa(truth: np.ndarray, guess: np.ndarray, n_grades: int) -> float:
    """Cohen's kappa with quadratic weights between two integer gradings 0…n_grades−1; 1.0 for
    perfect agreement, 0 for chance. When every image has the same true and guessed grade the
    expected disagreement is 0: agreement counts 1.0, anything else 0.0."""
    truth = np.asarray(truth, dtype=int)
    guess = np.asarray(guess, dtype=int)
    observed = np.zeros((n_grades, n_grades), dtype=np.float64)
    np.add.at(observed, (truth, guess), 1.0)
    total = observed.sum()
    if total == 0:
        return 0.0
    grades = np.arange(n_grades)
    weights = (grades[:, None] - grades[None, :]) ** 2 / max(1, (n_grades - 1) ** 2)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / total
    denominator = float((weights * expected).sum())
    if denominator == 0.0:
        return 1.0 if float((weights * observed).sum()) == 0.0 else 0.0
    return float(1.0 - (weights * observed).sum() / denominator)


def probability_from(probs: np.ndarray, grade: int) -> np.ndarray:
    """P(grade ≥ ``grade``): the softmax mass of that grade and every higher one."""
    return np.asarray(probs, dtype=np.float64)[:, grade:].sum(axis=1)


def referable_decisions(
    probs: np.ndarray, referable_from: int, threshold: float | None
) -> np.ndarray:
    """The card's referable rule: P(grade ≥ referable_from) ≥ threshold, or, without a
    threshold, the argmax grade ≥ referable_from."""
    if threshold is None:
        return np.asarray(probs).argmax(axis=1) >= referable_from
    return probability_from(probs, referable_from) >= threshold


def sensitivity_first_threshold(
    truth: np.ndarray, scores: np.ndarray, target: float = 0.9
) -> dict[str, Any]:
    """The operating point for screening: the HIGHEST threshold whose sensitivity on these
    (validation) images is still ≥ ``target`` — as specific as the sensitivity target allows.
    Thresholds are the images' own scores (a decision is ``score >= threshold``), rounded down to
    4 decimals so the rounded value keeps every positive it counted; returns the threshold with
    the sensitivity and specificity it gives and the counts it was chosen on."""
    truth = np.asarray(truth).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if not 0.0 < target <= 1.0:
        raise ValueError(f"sensitivity target must be in (0, 1] (got {target})")
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0:
        raise ValueError("no positive image to choose a sensitivity-first threshold on")
    positives = np.sort(scores[truth])[::-1]
    # The k-th highest positive score keeps k positives; the fewest that reach the target.
    needed = math.ceil(target * n_pos - 1e-9)
    raw = positives[max(needed, 1) - 1]
    threshold = math.floor(raw * 10_000) / 10_000
    threshold = min(max(threshold, 0.0001), 0.9999)
    decided = scores >= threshold
    m = binary_metrics(truth, decided)
    return {
        "threshold": threshold,
        "sensitivity_target": float(target),
        "sensitivity": m["sensitivity"],
        "specificity": m["specificity"],
        "n_images": len(truth),
        "n_positive": n_pos,
        "n_negative": n_neg,
    }


def _grade_point(truth: np.ndarray, guess: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    m = binary_metrics(truth, guess)
    return {
        "n_positive": m["n_positive"],
        "n_negative": m["n_negative"],
        "auc": roc_auc(truth, scores),
        "sensitivity": m["sensitivity"],
        "specificity": m["specificity"],
        **{key: m[key] for key in ("tp", "fp", "fn", "tn")},
    }


def dr_grading_metrics(targets: np.ndarray, probs: np.ndarray, grading: dict[str, Any]) -> dict:
    """ICDR figures of a multiclass grading: quadratic weighted kappa of the argmax grade, the
    grade confusion matrix, and for referable (P(grade ≥ referable_from) against the card's
    ``referable_threshold``, else the argmax) and vision-threatening DR (P(grade ≥
    vision_threatening_from); argmax, or the referable threshold's rule only when both start at
    the same grade) the AUC, sensitivity and specificity."""
    targets = np.asarray(targets, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    n_grades = probs.shape[1]
    truth = targets.argmax(axis=1)
    guess = probs.argmax(axis=1)
    referable_from = int(grading["referable_from"])
    threatening_from = int(grading["vision_threatening_from"])
    threshold = grading.get("referable_threshold")
    matrix = np.zeros((n_grades, n_grades), dtype=int)
    np.add.at(matrix, (truth, guess), 1)
    referable = referable_decisions(probs, referable_from, threshold)
    threatening = referable_decisions(
        probs, threatening_from, threshold if threatening_from == referable_from else None
    )
    return {
        "n_images": len(truth),
        "qwk": quadratic_weighted_kappa(truth, guess, n_grades),
        "grade_accuracy": float((truth == guess).mean()) if len(truth) else 0.0,
        "referable": {
            "from_grade": referable_from,
            "decision": (
                f"P(grade >= {referable_from}) >= {threshold}"
                if threshold is not None
                else f"argmax grade >= {referable_from}"
            ),
            "threshold": threshold,
            **_grade_point(
                truth >= referable_from, referable, probability_from(probs, referable_from)
            ),
        },
        "vision_threatening": {
            "from_grade": threatening_from,
            "decision": f"argmax grade >= {threatening_from}",
            **_grade_point(
                truth >= threatening_from, threatening, probability_from(probs, threatening_from)
            ),
        },
        "confusion_matrix": {
            "rows": "true grade",
            "columns": "argmax grade",
            "grades": list(range(n_grades)),
            "matrix": matrix.tolist(),
        },
    }


def dr_grading_ci(
    targets: np.ndarray,
    probs: np.ndarray,
    grading: dict[str, Any],
    *,
    groups: Sequence[str] | None = None,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Percentile bootstrap intervals (whole patients resampled when ``groups`` is given) for
    the QWK and the referable / vision-threatening AUC, sensitivity and specificity."""
    targets = np.asarray(targets, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    n_grades = probs.shape[1]
    truth = targets.argmax(axis=1)
    guess = probs.argmax(axis=1)
    threshold = grading.get("referable_threshold")
    points = {}
    for name, start in (
        ("referable", int(grading["referable_from"])),
        ("vision_threatening", int(grading["vision_threatening_from"])),
    ):
        rule = threshold if (name == "referable" or start == grading["referable_from"]) else None
        points[name] = (
            truth >= start,
            referable_decisions(probs, start, rule),
            probability_from(probs, start),
        )
    keys = np.asarray(groups if groups is not None else np.arange(len(truth)))
    units, inverse = np.unique(keys, return_inverse=True)
    members = [np.flatnonzero(inverse == u) for u in range(len(units))]
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(rounds):
        chosen = rng.integers(0, len(units), len(units))
        index = np.concatenate([members[u] for u in chosen]) if len(units) else np.array([], int)
        draws.setdefault("qwk", []).append(
            quadratic_weighted_kappa(truth[index], guess[index], n_grades)
        )
        for name, (positive, decided, scores) in points.items():
            m = binary_metrics(positive[index], decided[index])
            if m["n_positive"]:
                draws.setdefault(f"{name}.sensitivity", []).append(m["sensitivity"])
            if m["n_negative"]:
                draws.setdefault(f"{name}.specificity", []).append(m["specificity"])
            auc = roc_auc(positive[index], scores[index])
            if auc is not None:
                draws.setdefault(f"{name}.auc", []).append(auc)
    tail = (1.0 - level) / 2.0 * 100.0

    def interval(values: list[float]) -> list[float]:
        low, high = np.percentile(values, [tail, 100.0 - tail])
        return [round(float(low), 4), round(float(high), 4)]

    result: dict[str, Any] = {
        "level": level,
        "rounds": rounds,
        "unit": "patient" if groups is not None else "image",
        "qwk": interval(draws["qwk"]) if draws.get("qwk") else None,
    }
    for name in points:
        result[name] = {
            metric: interval(draws[f"{name}.{metric}"])
            for metric in ("auc", "sensitivity", "specificity")
            if draws.get(f"{name}.{metric}")
        }
    return result
