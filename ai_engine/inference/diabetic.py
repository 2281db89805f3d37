"""Diabetic eye results: an ICDR grade from a ``dr_grading`` package, macular oedema from a
package with a ``DME`` label, and what the two say together for one eye.

Plain Python (no torch): web processes rebuild these from stored findings. Every surface
(screening page, worklist triage, PDF, API, statistics) reads a grade, "referable" and
"vision-threatening" from here, so none can contradict another or the card's decision rule:

- the grade is the most probable ICDR grade (argmax);
- referable is P(grade >= ``referable_from``) against the card's ``referable_threshold`` (its
  screening operating point, chosen on validation, sensitivity first); a card without one
  lets the argmax grade decide;
- a vision-threatening grade is referable whatever the operating point says;
- vision-threatening is an argmax grade >= ``vision_threatening_from`` (severe NPDR or worse)
  or macular oedema; P(vision-threatening) = 1 - (1 - P(grade >= 3)) (1 - P(DME)).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DME_CODE = "DME"
DECISION_REFERABLE_THRESHOLD = "referable_threshold"
DECISION_GRADE = "grade"

# ICDR grade → (zh, en); the report writes "中度非增殖期糖尿病视网膜病变 (R2)".
ICDR_GRADE_NAMES: dict[int, tuple[str, str]] = {
    0: ("无明显糖尿病视网膜病变", "No apparent diabetic retinopathy"),
    1: ("轻度非增殖期糖尿病视网膜病变", "Mild non-proliferative diabetic retinopathy"),
    2: ("中度非增殖期糖尿病视网膜病变", "Moderate non-proliferative diabetic retinopathy"),
    3: ("重度非增殖期糖尿病视网膜病变", "Severe non-proliferative diabetic retinopathy"),
    4: ("增殖期糖尿病视网膜病变", "Proliferative diabetic retinopathy"),
}
DME_NAMES = ("糖尿病黄斑水肿", "Diabetic macular oedema")
NO_DME_NAMES = ("未见糖尿病黄斑水肿", "No diabetic macular oedema")


def dr_grade_words(grade: int, language: str = "zh") -> str:
    """``2`` → ``中度非增殖期糖尿病视网膜病变 (R2)`` (or the English words)."""
    zh, en = ICDR_GRADE_NAMES.get(grade, (f"糖尿病视网膜病变 {grade} 级", f"DR grade {grade}"))
    return f"{zh if language.startswith('zh') else en} (R{grade})"


def is_dr_card(card: Mapping[str, Any]) -> bool:
    return bool(card.get("dr_grading")) and card.get("task") == "multiclass"


def is_dme_card(card: Mapping[str, Any]) -> bool:
    return not is_dr_card(card) and any(
        label.get("code") == DME_CODE for label in card.get("labels", [])
    )


class _FromModel:
    """What an assessment says about the model that made it (its card's name, version, flag and
    evidence line in the reader's language)."""

    model_name: str
    model_version: str
    demonstration: bool
    evidence_zh: str
    evidence_en: str

    def evidence(self, language: str = "zh") -> str:
        return self.evidence_zh if language.startswith("zh") else self.evidence_en

    def model_dict(self, language: str = "zh") -> dict[str, Any]:
        return {
            "model": {"name": self.model_name, "version": self.model_version},
            "demonstration": self.demonstration,
            "evidence": self.evidence(language),
        }


@dataclass(frozen=True)
class DrAssessment(_FromModel):
    """One photo's ICDR grade from one ``dr_grading`` model."""

    model_name: str
    model_version: str
    demonstration: bool
    probabilities: tuple[float, ...]  # per grade 0…n-1
    referable_from: int = 2
    vision_threatening_from: int = 3
    referable_threshold: float | None = None
    evidence_zh: str = ""  # the card's evidence line, per report language
    evidence_en: str = ""

    @property
    def grade(self) -> int:
        return max(range(len(self.probabilities)), key=lambda g: self.probabilities[g])

    @property
    def grade_probability(self) -> float:
        return self.probabilities[self.grade]

    @property
    def p_referable(self) -> float:
        return float(sum(self.probabilities[self.referable_from :]))

    @property
    def p_severe(self) -> float:
        """P(grade >= ``vision_threatening_from``)."""
        return float(sum(self.probabilities[self.vision_threatening_from :]))

    @property
    def decision(self) -> str:
        return DECISION_GRADE if self.referable_threshold is None else DECISION_REFERABLE_THRESHOLD

    @property
    def referable(self) -> bool:
        """By the card's rule; a vision-threatening grade is referable whatever the rule says
        (a high operating point could otherwise leave an argmax R3 "not referable")."""
        if self.severe:
            return True
        if self.referable_threshold is None:
            return self.grade >= self.referable_from
        return self.p_referable >= self.referable_threshold

    @property
    def severe(self) -> bool:
        return self.grade >= self.vision_threatening_from

    def words(self, language: str = "zh") -> str:
        return dr_grade_words(self.grade, language)

    def to_dict(self, language: str = "zh") -> dict[str, Any]:
        return {
            **self.model_dict(language),
            "grade": self.grade,
            "grade_text": self.words(language),
            "grade_probability": round(self.grade_probability, 4),
            "probabilities": [round(p, 4) for p in self.probabilities],
            "p_referable": round(self.p_referable, 4),
            "referable": self.referable,
            "referable_from": self.referable_from,
            "referable_threshold": self.referable_threshold,
            "decision": self.decision,
            "p_severe": round(self.p_severe, 4),
            "vision_threatening_from": self.vision_threatening_from,
        }


@dataclass(frozen=True)
class DmeAssessment(_FromModel):
    """One photo's macular-oedema probability from one model, against its card's threshold."""

    model_name: str
    model_version: str
    demonstration: bool
    probability: float
    threshold: float
    evidence_zh: str = ""
    evidence_en: str = ""

    @property
    def positive(self) -> bool:
        return self.probability >= self.threshold

    def words(self, language: str = "zh") -> str:
        zh, en = DME_NAMES if self.positive else NO_DME_NAMES
        return zh if language.startswith("zh") else en

    def to_dict(self, language: str = "zh") -> dict[str, Any]:
        return {
            **self.model_dict(language),
            "positive": self.positive,
            "text": self.words(language),
            "probability": round(self.probability, 4),
            "threshold": self.threshold,
        }


@dataclass(frozen=True)
class EyeDiabetic:
    """What the DR and DME models say together about one eye (either may be missing)."""

    eye: str
    dr: DrAssessment | None = None
    dme: DmeAssessment | None = None

    @property
    def assessed(self) -> bool:
        return self.dr is not None or self.dme is not None

    @property
    def referable(self) -> bool:
        return bool((self.dr and self.dr.referable) or (self.dme and self.dme.positive))

    @property
    def vision_threatening(self) -> bool:
        return bool((self.dr and self.dr.severe) or (self.dme and self.dme.positive))

    @property
    def p_vision_threatening(self) -> float | None:
        if not self.assessed:
            return None
        severe = self.dr.p_severe if self.dr else 0.0
        dme = self.dme.probability if self.dme else 0.0
        return 1.0 - (1.0 - severe) * (1.0 - dme)

    def to_dict(self, language: str = "zh") -> dict[str, Any]:
        p_vt = self.p_vision_threatening
        return {
            "dr": self.dr.to_dict(language) if self.dr else None,
            "dme": self.dme.to_dict(language) if self.dme else None,
            "referable": self.referable,
            "vision_threatening": self.vision_threatening,
            "p_vision_threatening": None if p_vt is None else round(p_vt, 4),
        }


def _evidence(card: Mapping[str, Any]) -> dict[str, str]:
    """The card's evidence line in both languages (an old card's single line for both)."""
    single = str(card.get("evidence") or "")
    return {
        "evidence_zh": str(card.get("evidence_zh") or single),
        "evidence_en": str(card.get("evidence_en") or single),
    }


def dr_assessment(
    card: Mapping[str, Any],
    probabilities: Mapping[str, float],
    *,
    model_name: str = "",
    model_version: str = "",
    demonstration: bool = True,
) -> DrAssessment:
    """A ``dr_grading`` card and its per-label probabilities (by code) → the assessment."""
    grading = card.get("dr_grading") or {}
    codes = [label["code"] for label in card.get("labels", [])]
    threshold = grading.get("referable_threshold")
    return DrAssessment(
        model_name=model_name or str(card.get("name", "")),
        model_version=model_version or str(card.get("version", "")),
        demonstration=demonstration,
        probabilities=tuple(float(probabilities.get(code, 0.0)) for code in codes),
        referable_from=int(grading.get("referable_from", 2)),
        vision_threatening_from=int(grading.get("vision_threatening_from", 3)),
        referable_threshold=None if threshold is None else float(threshold),
        **_evidence(card),
    )


def dme_assessment(
    card: Mapping[str, Any],
    probability: float,
    *,
    model_name: str = "",
    model_version: str = "",
    demonstration: bool = True,
) -> DmeAssessment:
    label = next(label for label in card.get("labels", []) if label.get("code") == DME_CODE)
    return DmeAssessment(
        model_name=model_name or str(card.get("name", "")),
        model_version=model_version or str(card.get("version", "")),
        demonstration=demonstration,
        probability=float(probability),
        threshold=float(label.get("threshold", 0.5)),
        **_evidence(card),
    )


def eye_diabetic(
    eye: str, results: Sequence[tuple[Mapping[str, Any], Mapping[str, float], dict[str, Any]]]
) -> EyeDiabetic:
    """One eye's (card, probabilities by code, {model_name, model_version, demonstration})
    per model → the eye's DR and DME assessment (the first DR and the first DME model).

    A model that stored no probability for the photo (a monochrome photo: colour models do
    not read it) gives nothing, never grade 0."""
    dr = dme = None
    for card, probabilities, meta in results:
        codes = [label.get("code") for label in card.get("labels", [])]
        if dr is None and is_dr_card(card) and all(code in probabilities for code in codes):
            dr = dr_assessment(card, probabilities, **meta)
        elif dme is None and is_dme_card(card) and DME_CODE in probabilities:
            dme = dme_assessment(card, probabilities[DME_CODE], **meta)
    return EyeDiabetic(eye=eye, dr=dr, dme=dme)
