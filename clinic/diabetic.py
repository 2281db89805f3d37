"""The doctor's DR grade and macular oedema per eye against the AI's: per screening (the
screening page's review area) and in aggregate (statistics: quadratic weighted kappa)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ai_engine.inference.diabetic import EyeDiabetic
from screening.models import DR_REFERABLE_FROM, DoctorReview, Eye, ReviewEyeDiabetic

GRADES = 5  # ICDR R0–R4

SAME, ADJACENT, DIFFERENT = "same", "adjacent", "different"


def grade_agreement(ai_grade: int, doctor_grade: int) -> str:
    """``same`` grade, ``adjacent`` (one grade apart) or ``different``."""
    gap = abs(ai_grade - doctor_grade)
    return SAME if gap == 0 else ADJACENT if gap == 1 else DIFFERENT


@dataclass(frozen=True)
class EyeComparison:
    """One eye: what the AI read and what the doctor recorded (either may be missing)."""

    eye: str
    label: str
    ai: EyeDiabetic | None
    doctor: ReviewEyeDiabetic | None

    @property
    def doctor_grade(self) -> int | None:
        return self.doctor.grade if self.doctor else None

    @property
    def grade_agreement(self) -> str | None:
        if self.ai is None or self.ai.dr is None or self.doctor_grade is None:
            return None
        return grade_agreement(self.ai.dr.grade, self.doctor_grade)

    @property
    def grade_gap(self) -> int | None:
        if self.grade_agreement is None:
            return None
        return abs(self.ai.dr.grade - self.doctor_grade)

    @property
    def referable_agrees(self) -> bool | None:
        """AI referable DR (at its card's operating point) vs the doctor's grade >= R2."""
        if self.ai is None or self.ai.dr is None or self.doctor_grade is None:
            return None
        return self.ai.dr.referable == (self.doctor_grade >= DR_REFERABLE_FROM)

    @property
    def dme_agrees(self) -> bool | None:
        if self.ai is None or self.ai.dme is None or self.doctor is None:
            return None
        if self.doctor.dme is None:
            return None
        return self.ai.dme.positive == self.doctor.dme

    @property
    def shows_dr(self) -> bool:
        return bool((self.ai and self.ai.dr) or (self.doctor and self.doctor.dr_grade))

    @property
    def shows_dme(self) -> bool:
        return bool((self.ai and self.ai.dme) or (self.doctor and self.doctor.dme is not None))


def compare_eyes(ai: dict[str, EyeDiabetic], review: DoctorReview | None) -> list[EyeComparison]:
    """Per eye (OD, OS) that a DR/DME model read or the doctor graded."""
    doctor = {eye.eye: eye for eye in review.diabetic_eyes} if review is not None else {}
    rows = []
    for eye, label in Eye.choices:
        row = EyeComparison(eye=eye, label=str(label), ai=ai.get(eye), doctor=doctor.get(eye))
        if row.shows_dr or row.shows_dme:
            rows.append(row)
    return rows


def quadratic_weighted_kappa(
    pairs: Sequence[tuple[int, int]], levels: int = GRADES
) -> float | None:
    """Cohen's kappa with quadratic weights for (rater A, rater B) grades 0…levels-1; None
    without pairs or when both raters gave one and the same grade throughout (undefined)."""
    if not pairs:
        return None
    n = len(pairs)
    observed = [[0.0] * levels for _ in range(levels)]
    for a, b in pairs:
        observed[a][b] += 1
    rows = [sum(observed[i]) for i in range(levels)]
    cols = [sum(observed[i][j] for i in range(levels)) for j in range(levels)]
    weight = [[(i - j) ** 2 / (levels - 1) ** 2 for j in range(levels)] for i in range(levels)]
    disagreement = sum(weight[i][j] * observed[i][j] for i in range(levels) for j in range(levels))
    expected = sum(
        weight[i][j] * rows[i] * cols[j] / n for i in range(levels) for j in range(levels)
    )
    if expected == 0:
        return None
    return 1.0 - disagreement / expected
