"""Tiny DR (ICDR grade 0–4) and DME packages and their analyses, written by hand."""

from __future__ import annotations

from collections.abc import Sequence

from ai_engine.models import Analysis
from screening.models import RecordStatus, ScreeningRecord
from screening.services import image_upload
from tests.ai_results import add_analysis

DR_CARD = {
    "name": "ophai-dr",
    "version": "1.0.0",
    "task": "multiclass",
    "labels": [
        {"code": f"dr{g}", "zh": f"{g}级", "en": f"grade {g}", "threshold": 0.5, "normal": g == 0}
        for g in range(5)
    ],
    "dr_grading": {"scheme": "icdr_0_4", "referable_from": 2, "vision_threatening_from": 3},
    "demonstration": False,
}
DME_CARD = {
    "name": "ophai-dme",
    "version": "1.0.0",
    "task": "binary",
    "labels": [{"code": "DME", "zh": "黄斑水肿", "en": "Macular oedema", "threshold": 0.5}],
    "demonstration": False,
}


def dr_package():
    from tests.factories import ModelPackageFactory

    return ModelPackageFactory(
        name="ophai-dr", version="1.0.0", task="multiclass", card=DR_CARD, demonstration=False
    )


def dme_package():
    from tests.factories import ModelPackageFactory

    return ModelPackageFactory(
        name="ophai-dme", version="1.0.0", task="binary", card=DME_CARD, demonstration=False
    )


def grade_probabilities(grade: int, confidence: float = 0.8) -> list[float]:
    """Probabilities over R0–R4 whose argmax is `grade`."""
    rest = (1.0 - confidence) / 4
    return [confidence if g == grade else rest for g in range(5)]


def add_dr(image, grade: int) -> Analysis:
    rows = [
        (f"dr{g}", f"{g}级", f"grade {g}", p, 0.5, [])
        for g, p in enumerate(grade_probabilities(grade))
    ]
    return add_analysis(image, dr_package(), findings=rows)


def add_dme(image, probability: float) -> Analysis:
    return add_analysis(
        image,
        dme_package(),
        findings=[("DME", "黄斑水肿", "Macular oedema", probability, 0.5, ["macula"])],
    )


def make_dr_analysed(
    record: ScreeningRecord,
    technician,
    photo_file,
    *,
    grades: Sequence[int | None] = (2, 0),
    dme: Sequence[float | None] = (None, None),
) -> ScreeningRecord:
    """A photo per eye (OD, OS) graded by the DR package (None: no DR reading) and read by the
    DME package (a probability; None: none); status analysed."""
    for offset, (eye, grade, p_dme) in enumerate(zip(("OD", "OS"), grades, dme, strict=True)):
        image = image_upload(
            actor=technician,
            record=record,
            eye=eye,
            uploaded_file=photo_file(seed=record.pk * 7 + offset),
        )
        if grade is not None:
            add_dr(image, grade)
        if p_dme is not None:
            add_dme(image, p_dme)
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    record.refresh_from_db()
    return record
