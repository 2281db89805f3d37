"""AI results written by hand for tests that are not about the engine: analyses with findings
and heatmaps, and a screening analysed on both eyes with its triage."""

from __future__ import annotations

import io
from collections.abc import Sequence

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageDraw

from ai_engine.models import Analysis, AnalysisStatus, Finding, RecordTriage
from screening.models import RecordStatus, ScreeningRecord
from screening.services import image_upload

# (code, zh, en, probability, threshold, abnormal areas)
DR_POSITIVE = [
    ("D", "糖尿病视网膜病变", "Diabetic retinopathy", 0.83, 0.5, ["黄斑区 macula"]),
    ("N", "正常", "Normal", 0.12, 0.5, []),
]
NORMAL = [
    ("D", "糖尿病视网膜病变", "Diabetic retinopathy", 0.21, 0.5, []),
    ("N", "正常", "Normal", 0.77, 0.5, []),
]
# The shipped demo package's labels (ai_engine/packages/ophai-demo-screening): multiclass, argmax.
MULTICLASS_CARD = {
    "name": "ophai-demo-screening",
    "version": "0.1.0",
    "task": "multiclass",
    "labels": [
        {"code": "N", "zh": "正常眼底", "en": "Normal fundus", "threshold": 0.28, "normal": True},
        {"code": "C", "zh": "白内障", "en": "Cataract", "threshold": 0.31, "referable": True},
        {"code": "G", "zh": "青光眼", "en": "Glaucoma", "threshold": 0.34, "referable": True},
    ],
    "validation": {"decision": "argmax"},
    "evidence": "Demonstration model: macro-F1 0.67",
    "demonstration": True,
}
# What the issue saw: glaucoma 0.41 over its 0.34 threshold, yet "normal" is the argmax.
MULTICLASS_NORMAL_WINS = [
    ("N", "正常眼底", "Normal fundus", 0.45, 0.28, []),
    ("G", "青光眼", "Glaucoma", 0.41, 0.34, ["optic_disc"]),
    ("C", "白内障", "Cataract", 0.14, 0.31, []),
]
MULTICLASS_GLAUCOMA = [
    ("G", "青光眼", "Glaucoma", 0.62, 0.34, ["optic_disc"]),
    ("N", "正常眼底", "Normal fundus", 0.30, 0.28, []),
    ("C", "白内障", "Cataract", 0.08, 0.31, []),
]
REFERABLE_DR_REASON = {
    "code": "referable_finding",
    "eye": "OD",
    "params": {
        "label_zh": "糖尿病视网膜病变",
        "label_en": "Diabetic retinopathy",
        "probability": "0.83",
    },
}


def overlay_png(size: int = 96) -> bytes:
    """A small heatmap-like overlay PNG (red blob on transparent), like the engine writes."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((size // 4, size // 4, size * 3 // 4, size * 3 // 4), fill=(255, 40, 0, 170))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def add_analysis(
    image,
    package,
    *,
    findings: Sequence[tuple] = (),
    status: str = AnalysisStatus.DONE,
    run: int = 1,
    quality: float | None = None,
    reasons: Sequence[str] | None = None,
) -> Analysis:
    """An analysis of `image` by `package`; positive findings get a stored heatmap.

    An ungradable analysis scores 0.31 with reason "underexposed" unless told otherwise; a
    queued or running one has no quality verdict yet.
    """
    ungradable = status == AnalysisStatus.UNGRADABLE
    if reasons is None:
        reasons = ["underexposed"] if ungradable else []
    analysis = Analysis.objects.create(
        image=image,
        package=package,
        run=run,
        model_name=package.name,
        model_version=package.version,
        weights_sha256=package.weights_sha256,
        demonstration=package.demonstration,
        status=status,
        quality_score=quality if quality is not None else (0.31 if ungradable else 0.86),
        quality_gradable=None
        if status in (AnalysisStatus.QUEUED, AnalysisStatus.RUNNING)
        else not ungradable,
        quality_reasons=list(reasons),
    )
    top = max((row[3] for row in findings), default=None)
    referable = {x["code"] for x in package.card.get("labels", []) if x.get("referable")}
    for code, zh, en, probability, threshold, areas in findings:
        # As the engine stores them: a multiclass model's one positive is its argmax.
        positive = probability == top if package.task == "multiclass" else probability >= threshold
        heatmap = ""
        if positive:
            heatmap = default_storage.save(
                f"heatmaps/test/{analysis.pk}-{code}.png", ContentFile(overlay_png())
            )
        Finding.objects.create(
            analysis=analysis,
            label_code=code,
            label_zh=zh,
            label_en=en,
            probability=probability,
            threshold=threshold,
            positive=positive,
            referable=code in referable,
            heatmap=heatmap,
            abnormal_areas=list(areas),
        )
    return analysis


def make_analysed(
    record,
    technician,
    photo_file,
    package,
    *,
    od=DR_POSITIVE,
    os_=NORMAL,
    level: str = "high",
    priority: int = 2,
) -> ScreeningRecord:
    """Give `record` a photo per eye, a finished analysis each and a triage; status analysed."""
    for offset, (eye, findings) in enumerate((("OD", od), ("OS", os_))):
        image = image_upload(
            actor=technician,
            record=record,
            eye=eye,
            uploaded_file=photo_file(seed=record.pk * 2 + offset),
        )
        add_analysis(image, package, findings=findings)
    RecordTriage.objects.create(
        record=record, level=level, priority=priority, reasons=[REFERABLE_DR_REASON]
    )
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    record.refresh_from_db()
    return record


def multiclass_package():
    """The demo screening package's row (multiclass: the most probable label is the result)."""
    from tests.factories import ModelPackageFactory

    return ModelPackageFactory(
        name=MULTICLASS_CARD["name"],
        version=MULTICLASS_CARD["version"],
        task="multiclass",
        card=MULTICLASS_CARD,
    )


def make_retaken(record, technician, photo_file, package) -> ScreeningRecord:
    """A retake: OD analysed; OS a gradable photo with results, then a newer random-noise photo
    (quality 0.0, not gradable). Status analysed, triage computed; `record.good_os` and
    `record.noise_os` are the two OS photos. With `package` multiclass (`multiclass_package`)
    OD's result is "normal" (glaucoma 0.41 over its threshold, not the argmax), OS's glaucoma."""
    from ai_engine.services import triage_update

    od = image_upload(actor=technician, record=record, eye="OD", uploaded_file=photo_file(seed=1))
    add_analysis(od, package, findings=MULTICLASS_NORMAL_WINS)
    good = image_upload(actor=technician, record=record, eye="OS", uploaded_file=photo_file(seed=2))
    add_analysis(good, package, findings=MULTICLASS_GLAUCOMA)
    noise = image_upload(
        actor=technician, record=record, eye="OS", uploaded_file=photo_file(seed=3)
    )
    add_analysis(noise, package, status=AnalysisStatus.UNGRADABLE, quality=0.0, findings=[])
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    triage_update(record=record)
    record.refresh_from_db()
    record.good_os, record.noise_os = good, noise
    return record


# --- diabetic eye packages (ophai-dr: ICDR grade 0-4, ophai-dme: macular oedema) ------------
DR_GRADES = [
    ("dr0", "无明显糖尿病视网膜病变", "No apparent diabetic retinopathy", False, True),
    (
        "dr1",
        "轻度非增殖期糖尿病视网膜病变",
        "Mild non-proliferative diabetic retinopathy",
        False,
        False,
    ),
    (
        "dr2",
        "中度非增殖期糖尿病视网膜病变",
        "Moderate non-proliferative diabetic retinopathy",
        True,
        False,
    ),
    (
        "dr3",
        "重度非增殖期糖尿病视网膜病变",
        "Severe non-proliferative diabetic retinopathy",
        True,
        False,
    ),
    ("dr4", "增殖期糖尿病视网膜病变", "Proliferative diabetic retinopathy", True, False),
]
DR_CARD = {
    "name": "ophai-dr",
    "version": "0.3.0",
    "task": "multiclass",
    "labels": [
        {"code": c, "zh": zh, "en": en, "threshold": 0.5, "referable": r, "normal": n}
        for c, zh, en, r, n in DR_GRADES
    ],
    "dr_grading": {
        "scheme": "icdr_0_4",
        "referable_from": 2,
        "vision_threatening_from": 3,
        "referable_threshold": 0.3,
    },
    "demonstration": True,
    "intended_use_zh": "仅供研究——不可用于诊断。",
    "intended_use_en": "Research use — not for diagnosis.",
    "evidence": "Demonstration model: referable-DR AUC 0.91 on 600 held-out eyes; not for diagnosis",
    "evidence_zh": "演示模型：在 600 只留出眼上可转诊 DR 的 AUC 0.91；不可用于诊断",
    "evidence_en": "Demonstration model: referable-DR AUC 0.91 on 600 held-out eyes; not for diagnosis",
}
DME_CARD = {
    "name": "ophai-dme",
    "version": "0.2.0",
    "task": "binary",
    "labels": [
        {
            "code": "DME",
            "zh": "糖尿病黄斑水肿",
            "en": "Diabetic macular oedema",
            "threshold": 0.4,
            "referable": True,
            "normal": False,
        }
    ],
    "demonstration": True,
    "evidence": "Demonstration model: DME AUC 0.88; not for diagnosis",
    "evidence_zh": "演示模型：DME 的 AUC 0.88；不可用于诊断",
    "evidence_en": "Demonstration model: DME AUC 0.88; not for diagnosis",
}


def dr_findings(*probabilities: float) -> list[tuple]:
    """Stored findings of the DR package for grade probabilities p0…p4 (macula for R>=1)."""
    return [
        (code, zh, en, p, 0.5, ["macula"] if grade else [])
        for grade, ((code, zh, en, _r, _n), p) in enumerate(
            zip(DR_GRADES, probabilities, strict=True)
        )
    ]


def dme_findings(probability: float) -> list[tuple]:
    return [("DME", "糖尿病黄斑水肿", "Diabetic macular oedema", probability, 0.4, ["macula"])]


def dr_package(card: dict | None = None):
    from tests.factories import ModelPackageFactory

    card = card or DR_CARD
    return ModelPackageFactory(
        name=card["name"], version=card["version"], task="multiclass", card=card
    )


def dme_package():
    from tests.factories import ModelPackageFactory

    return ModelPackageFactory(
        name=DME_CARD["name"], version=DME_CARD["version"], task="binary", card=DME_CARD
    )


def make_diabetic(record, technician, photo_file, *, od: dict, os_: dict) -> ScreeningRecord:
    """A photo per eye read by the DR and DME packages, e.g. ``od={"dr": (p0…p4), "dme": 0.2}``;
    status analysed, triage computed by the engine (``triage_update``)."""
    from ai_engine.services import triage_update

    dr, dme = dr_package(), dme_package()
    for offset, (eye, results) in enumerate((("OD", od), ("OS", os_))):
        image = image_upload(
            actor=technician,
            record=record,
            eye=eye,
            uploaded_file=photo_file(seed=record.pk * 2 + offset),
        )
        if "dr" in results:
            add_analysis(image, dr, findings=dr_findings(*results["dr"]))
        if "dme" in results:
            add_analysis(image, dme, findings=dme_findings(results["dme"]))
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    triage_update(record=record)
    record.refresh_from_db()
    return record
