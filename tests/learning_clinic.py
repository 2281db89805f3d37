"""A small synthetic clinic for the learning loop's tests: photo rows without files, analyses
and signed reviews written directly (no model runs), so gate and drift tests stay fast."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools

from django.utils import timezone

from ai_engine.models import Analysis, AnalysisStatus, Finding, ModelPackage
from screening.models import DoctorReview, FundusImage, RecordStatus, ScreeningRecord
from tests.factories import ModelPackageFactory, ScreeningRecordFactory

LABELS = [
    {"code": "D", "zh": "糖尿病视网膜病变", "en": "Diabetic retinopathy", "threshold": 0.5},
    {"code": "G", "zh": "青光眼", "en": "Glaucoma", "threshold": 0.5},
    {"code": "N", "zh": "正常", "en": "Normal", "threshold": 0.5, "normal": True},
]
CARD = {"labels": LABELS, "evidence": "synthetic test model"}
_photo_numbers = itertools.count(1)


def package(version: str, state: str, *, name: str = "odir", **card) -> ModelPackage:
    """A multilabel package row registered a day ago (held-out cases are signed after)."""
    row = ModelPackageFactory(name=name, version=version, state=state, card={**CARD, **card})
    ModelPackage.objects.filter(pk=row.pk).update(
        registered_at=timezone.now() - dt.timedelta(days=1)
    )
    row.refresh_from_db()
    return row


def photo(record: ScreeningRecord, eye: str, *, uploaded_at: dt.datetime | None = None):
    """A photo row (no file: nothing here reads the pixels)."""
    number = next(_photo_numbers)
    image = FundusImage.objects.create(
        record=record,
        eye=eye,
        file=f"fundus/test/{record.pk}-{eye}-{number}.jpg",
        sha256=hashlib.sha256(f"{record.pk}{eye}{number}".encode()).hexdigest(),
        width=64,
        height=64,
        format="JPEG",
        mode="RGB",
        size_bytes=100,
        uploaded_by=record.operator,
    )
    if uploaded_at is not None:
        FundusImage.objects.filter(pk=image.pk).update(uploaded_at=uploaded_at)
    return image


def read(
    image,
    package: ModelPackage,
    positive: set[str] = frozenset(),
    *,
    shadow: bool = False,
    status: str = AnalysisStatus.DONE,
) -> Analysis:
    """`package`'s finished analysis of `image`: the labels in `positive` at 0.9, others 0.1."""
    analysis = Analysis.objects.create(
        image=image,
        package=package,
        model_name=package.name,
        model_version=package.version,
        weights_sha256=package.weights_sha256,
        demonstration=package.demonstration,
        shadow=shadow,
        status=status,
        quality_gradable=status == AnalysisStatus.DONE,
        quality_score=0.9,
    )
    if status != AnalysisStatus.DONE:
        return analysis
    for label in LABELS:
        hit = label["code"] in positive or (label["code"] == "N" and not positive)
        Finding.objects.create(
            analysis=analysis,
            label_code=label["code"],
            label_zh=label["zh"],
            label_en=label["en"],
            probability=0.9 if hit else 0.1,
            threshold=0.5,
            positive=hit,
        )
    return analysis


def signed_visit(
    doctor, *, od: list[str], os_: list[str], technician=None, signed_at=None
) -> ScreeningRecord:
    """A screening with one photo per eye and a signed review concluding per eye."""
    extra = {"operator": technician} if technician is not None else {}
    record = ScreeningRecordFactory(status=RecordStatus.REVIEWED, **extra)
    photo(record, "OD")
    photo(record, "OS")
    DoctorReview.objects.create(
        record=record,
        doctor=doctor,
        conclusion_codes=sorted(set(od) | set(os_)),
        conclusion_codes_od=od,
        conclusion_codes_os=os_,
        recommendation="routine",
        signed_at=signed_at or timezone.now() - dt.timedelta(hours=1),
    )
    return record


def eye_photo(record: ScreeningRecord, eye: str):
    return record.images.get(eye=eye)
