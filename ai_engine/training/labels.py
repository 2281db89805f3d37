"""Label vocabulary: names found in datasets → card labels (code, zh, en, referable, normal).

A dataset names its classes in its own words (``normal``, ``dr_grade_2``, ODIR's ``N``);
``--labels`` lists the ones to train on, optionally as ``name=CODE``. Known names get the
card's codes and bilingual names from :data:`VOCABULARY`; an unknown name becomes its own
code with the name as its text, for the user to edit in ``model.json``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# code: (zh, en, referable, normal, aliases)
VOCABULARY: dict[str, tuple[str, str, bool, bool, tuple[str, ...]]] = {
    "N": ("正常眼底", "Normal fundus", False, True, ("normal", "normal fundus", "normal_fundus")),
    "D": (
        "糖尿病视网膜病变",
        "Diabetic retinopathy",
        True,
        False,
        ("diabetic_retinopathy", "diabetic retinopathy", "dr"),
    ),
    "G": ("青光眼", "Glaucoma", True, False, ("glaucoma", "suspected glaucoma")),
    "C": ("白内障", "Cataract", True, False, ("cataract",)),
    "A": (
        "年龄相关性黄斑变性",
        "Age-related macular degeneration",
        True,
        False,
        ("amd", "age-related macular degeneration"),
    ),
    "H": (
        "高血压性视网膜病变",
        "Hypertensive retinopathy",
        True,
        False,
        ("hypertensive", "hypertensive retinopathy", "hypertension"),
    ),
    "M": ("病理性近视", "Pathological myopia", True, False, ("myopia", "pathological myopia")),
    "O": ("其他异常", "Other abnormality", True, False, ("other", "others")),
    "dr0": (
        "无明显糖尿病视网膜病变",
        "No apparent diabetic retinopathy",
        False,
        True,
        ("dr_grade_0", "grade0", "r0"),
    ),
    "dr1": (
        "轻度非增殖期糖尿病视网膜病变",
        "Mild non-proliferative diabetic retinopathy",
        False,
        False,
        ("dr_grade_1", "grade1", "r1"),
    ),
    "dr2": (
        "中度非增殖期糖尿病视网膜病变",
        "Moderate non-proliferative diabetic retinopathy",
        True,
        False,
        ("dr_grade_2", "grade2", "r2"),
    ),
    "dr3": (
        "重度非增殖期糖尿病视网膜病变",
        "Severe non-proliferative diabetic retinopathy",
        True,
        False,
        ("dr_grade_3", "grade3", "r3"),
    ),
    "dr4": (
        "增殖期糖尿病视网膜病变",
        "Proliferative diabetic retinopathy",
        True,
        False,
        ("dr_grade_4", "grade4", "r4"),
    ),
    "DME": (
        "糖尿病黄斑水肿",
        "Diabetic macular oedema",
        True,
        False,
        ("dme", "maculopathy", "diabetic macular oedema", "diabetic macular edema"),
    ),
    "RDR": (
        "需转诊的糖尿病视网膜病变",
        "Referable diabetic retinopathy (grade ≥ 2)",
        True,
        False,
        ("referable_dr", "referable", "rdr"),
    ),
    "abnormal": ("异常", "Abnormal", True, False, ()),
}
_ALIASES = {
    alias.lower(): code
    for code, (_zh, _en, _ref, _normal, aliases) in VOCABULARY.items()
    for alias in (code, *aliases)
}
_CODE = re.compile(r"[^A-Za-z0-9_.+-]+")


class LabelError(ValueError):
    """A label list that cannot be used (unknown syntax, duplicates, wrong count)."""


@dataclass(frozen=True)
class TrainLabel:
    """One output: the name it has in the data, and what the card will say about it."""

    name: str
    code: str
    zh: str
    en: str
    referable: bool
    normal: bool

    def card_entry(self, threshold: float = 0.5) -> dict[str, object]:
        return {
            "code": self.code,
            "zh": self.zh,
            "en": self.en,
            "threshold": round(float(threshold), 4),
            "referable": self.referable,
            "normal": self.normal,
        }


def vocabulary_code(name: str) -> str | None:
    return _ALIASES.get(name.strip().lower())


def make_label(name: str, code: str | None = None) -> TrainLabel:
    known = vocabulary_code(code or name)
    if known is not None:
        zh, en, referable, normal, _ = VOCABULARY[known]
        return TrainLabel(name, code or known, zh, en, referable, normal)
    code = code or _CODE.sub("_", name.strip()).strip("_")[:40] or "label"
    return TrainLabel(name, code, name, name, False, name.strip().lower() == "normal")


def parse_labels(spec: str | list[str]) -> list[TrainLabel]:
    """``"normal,cataract,glaucoma"`` or ``"0=dr0,1=dr1"`` → labels, in output order."""
    items = spec if isinstance(spec, list) else [s for s in spec.split(",")]
    labels = []
    for item in items:
        item = item.strip()
        if not item:
            raise LabelError(f"--labels {spec!r}: empty label name")
        name, _, code = item.partition("=")
        if code and not re.fullmatch(r"[A-Za-z0-9_.+-]{1,40}", code.strip()):
            raise LabelError(f"--labels: code {code!r} must be 1-40 letters, digits, _ . + -")
        labels.append(make_label(name.strip(), code.strip() or None))
    for attr in ("name", "code"):
        values = [getattr(label, attr) for label in labels]
        duplicates = sorted({v for v in values if values.count(v) > 1})
        if duplicates:
            raise LabelError(f"--labels: duplicate {attr}s {duplicates}")
    return labels


def dr_grading_for(labels: list[TrainLabel]) -> dict[str, object] | None:
    """An ICDR card block when the labels are exactly the grades dr0…dr4 (or dr0…dr3)."""
    codes = [label.code for label in labels]
    if codes == [f"dr{g}" for g in range(5)]:
        return {"scheme": "icdr_0_4", "referable_from": 2}
    if codes == [f"dr{g}" for g in range(4)]:
        return {"scheme": "icdr_0_3", "referable_from": 2}
    return None
