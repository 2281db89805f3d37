"""The ICD-10 codes a screening doctor records per eye: the common eye-screening diagnoses with
their Chinese and English names, and the default codes of each pick-list conclusion.

A short, curated catalogue rather than all of ICD-10: a code outside it is refused, so that the
report, the patient API and the statistics can always name what was recorded. Diabetic
retinopathy is coded in the dagger–asterisk pair E1x.3† + H36.0*.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.translation import get_language


@dataclass(frozen=True)
class Icd10Code:
    """One catalogue entry."""

    code: str
    name_zh: str
    name_en: str

    def name(self, language: str | None = None) -> str:
        """The name in `language` (default: the active one; Chinese unless English)."""
        language = language or get_language() or "zh-hans"
        return self.name_en if language.startswith("en") else self.name_zh


CATALOGUE: dict[str, Icd10Code] = {
    entry.code: entry
    for entry in (
        Icd10Code("Z01.0", "眼和视力检查（未见异常）", "Examination of eyes and vision (no abnormality)"),
        Icd10Code("E10.3", "1型糖尿病伴有眼的并发症", "Type 1 diabetes mellitus with ophthalmic complications"),
        Icd10Code("E11.3", "2型糖尿病伴有眼的并发症", "Type 2 diabetes mellitus with ophthalmic complications"),
        Icd10Code("E14.3", "糖尿病伴有眼的并发症", "Unspecified diabetes mellitus with ophthalmic complications"),
        Icd10Code("H36.0", "糖尿病性视网膜病变", "Diabetic retinopathy"),
        Icd10Code("H40.0", "可疑青光眼", "Glaucoma suspect"),
        Icd10Code("H40.1", "原发性开角型青光眼", "Primary open-angle glaucoma"),
        Icd10Code("H40.2", "原发性闭角型青光眼", "Primary angle-closure glaucoma"),
        Icd10Code("H40.9", "青光眼", "Glaucoma, unspecified"),
        Icd10Code("H25.0", "老年性初期白内障", "Senile incipient cataract"),
        Icd10Code("H25.1", "老年性核性白内障", "Senile nuclear cataract"),
        Icd10Code("H25.9", "老年性白内障", "Senile cataract, unspecified"),
        Icd10Code("H26.9", "白内障", "Cataract, unspecified"),
        Icd10Code("H35.3", "黄斑变性（年龄相关性黄斑变性）", "Degeneration of macula (age-related macular degeneration)"),
        Icd10Code("H35.0", "高血压性视网膜病变（背景性视网膜病变）", "Background retinopathy (hypertensive retinopathy)"),
        Icd10Code("H35.2", "其他增殖性视网膜病变", "Other proliferative retinopathy"),
        Icd10Code("H35.6", "视网膜出血", "Retinal haemorrhage"),
        Icd10Code("H35.8", "其他特指的视网膜疾患", "Other specified retinal disorders"),
        Icd10Code("H35.9", "视网膜疾患", "Retinal disorder, unspecified"),
        Icd10Code("H44.2", "退行性近视（病理性近视）", "Degenerative (pathological) myopia"),
        Icd10Code("H52.1", "近视", "Myopia"),
        Icd10Code("H33.0", "孔源性视网膜脱离", "Retinal detachment with retinal break"),
        Icd10Code("H33.2", "浆液性视网膜脱离", "Serous retinal detachment"),
        Icd10Code("H33.5", "其他视网膜脱离", "Other retinal detachments"),
        Icd10Code("H34.1", "视网膜中央动脉阻塞", "Central retinal artery occlusion"),
        Icd10Code("H34.8", "视网膜静脉阻塞", "Other retinal vascular occlusions (retinal vein occlusion)"),
        Icd10Code("H43.1", "玻璃体积血", "Vitreous haemorrhage"),
        Icd10Code("H47.1", "视乳头水肿", "Papilloedema"),
        Icd10Code("H47.2", "视神经萎缩", "Optic atrophy"),
        Icd10Code("H31.0", "脉络膜视网膜瘢痕", "Chorioretinal scars"),
    )
}  # fmt: skip

# By ConclusionCode value (screening.models imports this module): the codes a picked
# conclusion fills in; the doctor may change them. "Other abnormality" and
# "photos not gradable" name no diagnosis: the doctor types the code of what they saw.
DEFAULT_CODES: dict[str, tuple[str, ...]] = {
    "normal": ("Z01.0",),
    "dr_mild": ("E11.3", "H36.0"),
    "dr_moderate": ("E11.3", "H36.0"),
    "dr_severe": ("E11.3", "H36.0"),
    "dr_proliferative": ("E11.3", "H36.0"),
    "glaucoma_suspect": ("H40.0",),
    "cataract": ("H26.9",),
    "amd": ("H35.3",),
    "hypertensive": ("H35.0",),
    "myopia": ("H44.2",),
    "other": (),
    "ungradable": (),
}

NORMAL_EXAM_CODE = "Z01.0"
_SEPARATORS = re.compile(r"[\s,，;；、]+")


def default_codes(conclusion_codes: Iterable[str]) -> list[str]:
    """The default ICD-10 codes of the picked conclusions, each once, in the order picked."""
    codes: dict[str, None] = {}
    for conclusion in conclusion_codes:
        codes.update(dict.fromkeys(DEFAULT_CODES.get(conclusion, ())))
    return list(codes)


def parse_codes(value: str | Iterable[str] | None) -> list[str]:
    """Codes as typed ("e11.3, H36.0" or a list) → upper-case, each once; not yet validated."""
    if value is None:
        return []
    parts = _SEPARATORS.split(value) if isinstance(value, str) else [str(v) for v in value]
    return list(dict.fromkeys(part.strip().upper() for part in parts if part and part.strip()))


def unknown_codes(codes: Iterable[str]) -> list[str]:
    return [code for code in codes if code not in CATALOGUE]


def code_name(code: str, language: str | None = None) -> str:
    """The code's name in `language` (default: the active one); the code itself if unknown."""
    entry = CATALOGUE.get(code)
    return entry.name(language) if entry is not None else code


def choices() -> list[tuple[str, str]]:
    """(code, "code name") in the active language, for pick-lists and help text."""
    return [(code, f"{code} {entry.name()}") for code, entry in CATALOGUE.items()]
