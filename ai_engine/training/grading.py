"""DR grading on the card: the referable operating point and the figures and evidence lines
that describe it (shared by the trainer and ``manage.py set_operating_point``).

The operating point is chosen on VALIDATION images only, sensitivity first: the highest
threshold on P(grade >= referable_from) whose validation sensitivity reaches the target. The
figures that describe it come from the held-out (test) images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .metrics import (
    dr_grading_ci,
    dr_grading_metrics,
    probability_from,
    sensitivity_first_threshold,
)

DEFAULT_SENSITIVITY_TARGET = 0.9


def choose_operating_point(
    targets: np.ndarray,
    probs: np.ndarray,
    referable_from: int,
    target: float = DEFAULT_SENSITIVITY_TARGET,
) -> tuple[float, dict[str, Any]]:
    """``(referable_threshold, operating_point)`` from validation one-hot grades and softmax
    probabilities; ``operating_point`` is the card's ``dr_grading.operating_point`` object."""
    truth = np.asarray(targets).argmax(axis=1) >= referable_from
    point = sensitivity_first_threshold(truth, probability_from(probs, referable_from), target)
    return point["threshold"], {
        "sensitivity_target": point["sensitivity_target"],
        "chosen_on": "validation",
        "n_images": point["n_images"],
        "n_positive": point["n_positive"],
        "n_negative": point["n_negative"],
        "sensitivity": round(point["sensitivity"], 4),
        "specificity": round(point["specificity"], 4),
    }


def grading_figures(
    targets: np.ndarray,
    probs: np.ndarray,
    grading: dict[str, Any],
    *,
    groups: Sequence[str] | None,
    rounds: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The card's ``validation.dr_grading``: the ICDR figures with their bootstrap 95% CIs."""
    figures = dr_grading_metrics(targets, probs, grading)
    figures["n_patients"] = len(set(groups)) if groups is not None else None
    figures["ci95"] = dr_grading_ci(
        targets, probs, grading, groups=groups, rounds=rounds, seed=seed
    )
    return figures


def _ci(ci: dict[str, Any], name: str, metric: str) -> str:
    low_high = (ci.get(name) or {}).get(metric) if name else ci.get(metric)
    return f" ({low_high[0]:.2f}–{low_high[1]:.2f})" if low_high else ""


def _auc(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def grading_line_en(figures: dict[str, Any], grading: dict[str, Any]) -> str:
    """One sentence: referable AUC, sensitivity/specificity at the operating point, QWK, with
    95% CIs and n."""
    ci = figures.get("ci95", {})
    ref, vt = figures["referable"], figures["vision_threatening"]
    point = grading.get("operating_point") or {}
    rule = (
        f"P(referable) ≥ {grading['referable_threshold']:.4g}"
        + (
            f", chosen on {point.get('n_images', '?')} validation eyes for sensitivity ≥ "
            f"{point['sensitivity_target']:.2f}"
            if point
            else ""
        )
        if grading.get("referable_threshold") is not None
        else "the argmax grade"
    )
    patients = figures.get("n_patients")
    return (
        f"referable DR (grade ≥ {ref['from_grade']}) AUC {_auc(ref['auc'])}"
        f"{_ci(ci, 'referable', 'auc')}, sensitivity {ref['sensitivity']:.2f}"
        f"{_ci(ci, 'referable', 'sensitivity')} and specificity {ref['specificity']:.2f}"
        f"{_ci(ci, 'referable', 'specificity')} at {rule} "
        f"({ref['n_positive']} referable of {figures['n_images']} held-out eyes"
        + (f" of {patients} patients" if patients else "")
        + f"); vision-threatening (grade ≥ {vt['from_grade']}) AUC {_auc(vt['auc'])}"
        f"{_ci(ci, 'vision_threatening', 'auc')}; quadratic weighted kappa {figures['qwk']:.2f}"
        f"{_ci(ci, '', 'qwk')}; 95% CIs by patient bootstrap"
    )


def grading_line_zh(figures: dict[str, Any], grading: dict[str, Any]) -> str:
    ci = figures.get("ci95", {})
    ref, vt = figures["referable"], figures["vision_threatening"]
    point = grading.get("operating_point") or {}
    rule = (
        f"P(需转诊) ≥ {grading['referable_threshold']:.4g}"
        + (
            f"（在 {point.get('n_images', '?')} 只验证集眼上按灵敏度 ≥ "
            f"{point['sensitivity_target']:.2f} 选定）"
            if point
            else ""
        )
        if grading.get("referable_threshold") is not None
        else "最高概率分级"
    )
    patients = figures.get("n_patients")
    return (
        f"在 {patients or '?'} 名患者的 {figures['n_images']} 只留出眼上（{ref['n_positive']} 只需转诊），"
        f"需转诊糖尿病视网膜病变（≥ {ref['from_grade']} 级）AUC {_auc(ref['auc'])}"
        f"{_ci(ci, 'referable', 'auc')}，在 {rule} 时灵敏度 {ref['sensitivity']:.2f}"
        f"{_ci(ci, 'referable', 'sensitivity')}、特异度 {ref['specificity']:.2f}"
        f"{_ci(ci, 'referable', 'specificity')}；威胁视力（≥ {vt['from_grade']} 级）AUC "
        f"{_auc(vt['auc'])}{_ci(ci, 'vision_threatening', 'auc')}；二次加权 kappa "
        f"{figures['qwk']:.2f}{_ci(ci, '', 'qwk')}（95% 置信区间按患者自助法）"
    )


def evidence_texts(
    base_en: str, base_zh: str, figures: dict[str, Any], grading: dict[str, Any], demo: bool
) -> dict[str, str]:
    """``evidence``/``evidence_en``/``evidence_zh``: the DR sentence, then the per-label line
    (``base_*``, written without the demonstration wrapper)."""
    en = f"{grading_line_en(figures, grading)}; {base_en}"
    zh = f"{grading_line_zh(figures, grading)}；{base_zh}"
    if demo:
        en = f"Demonstration model: {en}; not for diagnosis"
        zh = f"演示模型：{zh}；不可用于诊断"
    return {"evidence": en, "evidence_en": en, "evidence_zh": zh}
