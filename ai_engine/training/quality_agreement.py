"""Agreement of a quality gate with reference grades (EyeQ: good / usable / reject).

A gate refuses a photo or lets it through. Against the reference it is scored by
- ``reject_recall``: refused reference-"reject" photos / reference-"reject" photos;
- ``false_reject_good``: refused reference-"good" photos / reference-"good" photos;
- ``refused_usable``: refused reference-"usable" photos / reference-"usable" photos;
- ``binary_accuracy``: refused == (reference is "reject"), over all photos;
- ``accuracy``: for a model that names a grade per photo, grade == reference (3 classes).
Intervals are patient-level percentile bootstrap 95 % intervals (both eyes of a patient are
drawn together, as they are split together).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

GRADES = ("good", "usable", "reject")


def _rate(hits: np.ndarray, mask: np.ndarray) -> float | None:
    n = int(mask.sum())
    return None if n == 0 else float(hits[mask].sum() / n)


def point_agreement(
    truth: Sequence[str], refused: Sequence[bool], predicted: Sequence[str] | None = None
) -> dict[str, float | None]:
    truth_a = np.asarray(truth)
    refused_a = np.asarray(refused, dtype=bool)
    if len(truth_a) != len(refused_a):
        raise ValueError("truth and refused must have one entry per photo")
    unknown = sorted(set(truth_a.tolist()) - set(GRADES))
    if unknown:
        raise ValueError(f"unknown reference grades {unknown}; expected {', '.join(GRADES)}")
    result: dict[str, float | None] = {
        "reject_recall": _rate(refused_a, truth_a == "reject"),
        "false_reject_good": _rate(refused_a, truth_a == "good"),
        "refused_usable": _rate(refused_a, truth_a == "usable"),
        "binary_accuracy": (
            None if len(truth_a) == 0 else float(np.mean(refused_a == (truth_a == "reject")))
        ),
    }
    if predicted is not None:
        predicted_a = np.asarray(predicted)
        if len(predicted_a) != len(truth_a):
            raise ValueError("predicted must have one entry per photo")
        result["accuracy"] = None if len(truth_a) == 0 else float(np.mean(predicted_a == truth_a))
    return result


def gate_agreement(
    truth: Sequence[str],
    refused: Sequence[bool],
    patients: Sequence[str],
    predicted: Sequence[str] | None = None,
    *,
    rounds: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Point figures, counts and patient-level bootstrap 95 % intervals (see module docstring)."""
    truth_a = np.asarray(truth)
    refused_a = np.asarray(refused, dtype=bool)
    predicted_a = None if predicted is None else np.asarray(predicted)
    point = point_agreement(truth_a, refused_a, predicted_a)
    counts = {
        grade: {
            "n": int((truth_a == grade).sum()),
            "refused": int(refused_a[truth_a == grade].sum()),
        }
        for grade in GRADES
    }
    units, inverse = np.unique(np.asarray(patients), return_inverse=True)
    if len(inverse) != len(truth_a):
        raise ValueError("patients must have one entry per photo")
    members = [np.flatnonzero(inverse == u) for u in range(len(units))]
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {key: [] for key in point}
    for _ in range(rounds if len(units) else 0):
        index = np.concatenate([members[u] for u in rng.integers(0, len(units), len(units))])
        sample = point_agreement(
            truth_a[index], refused_a[index], None if predicted_a is None else predicted_a[index]
        )
        for key, value in sample.items():
            if value is not None:
                draws[key].append(value)
    ci95 = {
        key: [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]
        if values
        else None
        for key, values in draws.items()
    }
    return {
        "n_images": len(truth_a),
        "n_patients": len(units),
        **point,
        "counts": counts,
        "ci95": ci95,
    }


def choose_reject_threshold(
    truth: Sequence[str], p_reject: Sequence[float], min_recall: float
) -> float:
    """The highest threshold whose reject recall on these photos is at least ``min_recall``
    (refused when P(reject) >= threshold): the fewest refusals of good photos that keep it."""
    truth_a = np.asarray(truth)
    scores = np.sort(np.asarray(p_reject, dtype=np.float64)[truth_a == "reject"])[::-1]
    if len(scores) == 0:
        raise ValueError("no reference-'reject' photo to choose a threshold on")
    if not 0.0 < min_recall <= 1.0:
        raise ValueError("min_recall must be in (0, 1]")
    needed = int(np.ceil(min_recall * len(scores) - 1e-9))
    # refusing at the needed-th highest reject score keeps at least `needed` rejects
    return float(scores[max(needed, 1) - 1])
