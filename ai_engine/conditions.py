"""The conditions a doctor's signed conclusion and an AI model's labels can both express.

Shared by the statistics page's AI–doctor agreement and the learning loop's shadow agreement,
promotion gate and drift watch (``ai_engine.learning``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from screening.models import ConclusionCode


@dataclass(frozen=True)
class Category:
    code: str
    label: str
    doctor_codes: frozenset[str]
    ai_labels: frozenset[str]  # lower-cased model label codes


def _labels(*codes: str) -> frozenset[str]:
    return frozenset(code.lower() for code in codes)


DR_GRADES = ("1", "2", "3", "4", "grade1", "grade2", "grade3", "grade4", "dr1", "dr2", "dr3", "dr4")
AGREEMENT_CATEGORIES: tuple[Category, ...] = (
    Category(
        "dr",
        _("Diabetic retinopathy"),
        frozenset(
            {
                ConclusionCode.DR_MILD,
                ConclusionCode.DR_MODERATE,
                ConclusionCode.DR_SEVERE,
                ConclusionCode.DR_PROLIFERATIVE,
            }
        ),
        # ODIR "D", a binary/RETFound "DR", ICDR grades 1–4 of a grading model.
        _labels(
            "D",
            "DR",
            "diabetic_retinopathy",
            "npdr",
            "pdr",
            "dr_mild",
            "dr_moderate",
            "dr_severe",
            "dr_proliferative",
            *DR_GRADES,
        ),
    ),
    Category(
        "glaucoma",
        _("Glaucoma"),
        frozenset({ConclusionCode.GLAUCOMA_SUSPECT}),
        _labels("G", "glaucoma", "glaucoma_suspect"),
    ),
    Category(
        "cataract", _("Cataract"), frozenset({ConclusionCode.CATARACT}), _labels("C", "cataract")
    ),
    Category("amd", _("AMD"), frozenset({ConclusionCode.AMD}), _labels("A", "AMD")),
    Category(
        "hypertensive",
        _("Hypertensive retinopathy"),
        frozenset({ConclusionCode.HYPERTENSIVE}),
        _labels("H", "hypertensive", "hypertensive_retinopathy", "hypertension"),
    ),
    Category(
        "myopia",
        _("Pathological myopia"),
        frozenset({ConclusionCode.MYOPIA}),
        _labels("M", "myopia", "pathological_myopia"),
    ),
)
# Labels that only say "not diseased" for a grading model: they mark the condition as assessed.
ASSESSED_ONLY = {"dr": _labels("0", "grade0", "dr0")}
