"""Labelled-data export: the clinic's signed reviews as a training set for ``train_model``.

Every gradable photo of a signed review (an amended review: its latest signed version) is
written as its sanitised copy under a salted-hash name, with the doctor's per-eye conclusion
mapped to each bundled package's labels in one ``labels.csv`` (the layout
:mod:`ai_engine.training.data` reads). No direct identifier leaves the clinic: patients are
keyed by HMAC-SHA256 with a secret salt (the same patient, the same key, across exports with
the same salt, so the split stays by patient), and doctors and signing times appear only as
counts and months in ``manifest.json``. The folder appears whole or not at all.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from ai_engine.models import Analysis, AnalysisStatus, TrainingScreening
from core.audit import audit_log
from core.models import AuditEvent
from screening.models import ConclusionCode, DoctorReview, DrGrade, Eye, FundusImage
from screening.sanitized import sanitized_copy
from screening.selectors import current_reviews

EXPORT_KIND = "ophai-clinic-training-export"
EXPORT_FORMAT = 1
CLINIC_DATASET = "clinic"  # ai_engine.training.lineage.CLINIC_SOURCE: what --mix calls clinic
CSV_COLUMNS = ("file", "dataset", "patient", "eye", "label", "dr_grade", "dme")
EYE_NAMES = {Eye.OD: "right", Eye.OS: "left"}
# A visit-level conclusion that holds for both eyes whichever eye was photographed.
EYE_INDEPENDENT_CODES = frozenset({ConclusionCode.NORMAL})
SCREENING_LABELS = {
    ConclusionCode.CATARACT: "cataract",
    ConclusionCode.GLAUCOMA_SUSPECT: "glaucoma",
}

# Why a photo or one of its labels was left out (manifest keys).
SKIP_SUPERSEDED = "photo replaced by a later photo"
SKIP_NO_AI = "no finished quality check"
SKIP_UNGRADABLE = "not gradable (quality check)"
SKIP_DOCTOR_UNGRADABLE = "not gradable (doctor)"
NO_PER_EYE_LABEL = "no per-eye label"
NOT_A_SCREENING_LABEL = "conclusion outside normal/cataract/glaucoma"
SEVERAL_SCREENING_LABELS = "cataract and glaucoma suspect together"
NO_DR_GRADE = "no DR grade"
DR_UNGRADABLE = "DR not gradable"
NO_DME = "macular oedema not assessed"

# How each bundled package trains on the export mixed with its public data (README).
TRAIN_COMMANDS = {
    "ophai-screening": (
        "python manage.py train_model --init ophai-screening --data {export}/labels.csv "
        "--data ../shared/data/fundus/labels.csv --labels normal=N,cataract=C,glaucoma=G "
        "--mix clinic=1,public=3 --test-fraction 0.2 --epochs 10 --phase1-epochs 0 "
        "--lr2 1e-4 --out var/models/ophai-screening-clinic --name ophai-screening "
        "--model-version 1.1.0-clinic"
    ),
    "ophai-dr": (
        "python manage.py train_model --init ophai-dr --data {export}/labels.csv "
        "--data ../shared/data/fundus/labels.csv --data ../shared/data/dr_camera/labels.csv "
        "--label-column dr_grade --labels 0=dr0,1=dr1,2=dr2,3=dr3,4=dr4 "
        "--mix clinic=1,public=3 --test-fraction 0.2 --epochs 10 --phase1-epochs 0 "
        "--lr2 1e-4 --out var/models/ophai-dr-clinic --name ophai-dr --model-version 1.1.0-clinic"
    ),
    "ophai-dme": (
        "python manage.py train_model --init ophai-dme --data {export}/labels.csv "
        "--data ../shared/data/dme/labels.csv --data ../shared/data/dr_camera/labels.csv "
        "--label-column dme,dme,maculopathy --labels dme --positive 1,yes "
        "--mix clinic=1,public=3 --test-fraction 0.2 --epochs 10 --phase1-epochs 0 "
        "--lr2 1e-4 --out var/models/ophai-dme-clinic --name ophai-dme --model-version 1.1.0-clinic"
    ),
}


@dataclass
class TrainingExport:
    """What an export wrote: its folder and the manifest (counts only)."""

    folder: Path
    manifest: dict[str, Any]


@dataclass
class _Row:
    file: str
    patient: str
    eye: str
    label: str
    dr_grade: str
    dme: str
    image: FundusImage  # read while writing: a big export never holds every photo in memory


@dataclass
class _Tally:
    skipped: Counter[str] = field(default_factory=Counter)
    unlabelled: dict[str, Counter[str]] = field(
        default_factory=lambda: {"label": Counter(), "dr_grade": Counter(), "dme": Counter()}
    )


def export_salt() -> bytes:
    """The secret salt: AI_TRAINING_KEY_SALT, else one derived from SECRET_KEY."""
    salt = settings.AI_TRAINING_KEY_SALT
    if salt:
        return salt.encode()
    return hmac.new(
        settings.SECRET_KEY.encode(), b"ophai training export salt", hashlib.sha256
    ).digest()


def training_patient_key(*, patient_pk: int, salt: bytes) -> str:
    """The patient's key in exports: stable for one salt, unlinkable to the record without it."""
    digest = hmac.new(salt, f"patient:{patient_pk}".encode(), hashlib.sha256).hexdigest()
    return f"{CLINIC_DATASET}-{digest[:20]}"


def _photo_name(image: FundusImage, salt: bytes, extension: str) -> str:
    digest = hmac.new(salt, f"photo:{image.sha256}".encode(), hashlib.sha256).hexdigest()
    return f"images/{digest[:24]}{extension}"


def latest_signed_reviews(
    *, since: dt.date | None = None, record_ids: Iterable[int] | None = None
) -> list[DoctorReview]:
    """Per screening, its latest signed review version (signed on or after ``since``)."""
    latest = current_reviews(records=None if record_ids is None else list(record_ids))
    chosen = [
        review
        for review in latest.values()
        if since is None or review.signed_at.date() >= since  # type: ignore[union-attr]
    ]
    return sorted(chosen, key=lambda r: r.record_id)


def _latest_analyses(images: list[FundusImage]) -> dict[int, list[Analysis]]:
    """Per photo, the latest run of each package."""
    latest: dict[tuple[int, int], Analysis] = {}
    for analysis in Analysis.objects.filter(image__in=images).order_by("run"):
        latest[(analysis.image_id, analysis.package_id)] = analysis
    by_image: dict[int, list[Analysis]] = {}
    for analysis in latest.values():
        by_image.setdefault(analysis.image_id, []).append(analysis)
    return by_image


def _quality_skip(analyses: list[Analysis]) -> str | None:
    """None for a gradable photo (a finished analysis: the engine stores an ungradable
    photo's analysis as UNGRADABLE), else why it is left out."""
    if any(a.status == AnalysisStatus.DONE and a.quality_gradable is not False for a in analyses):
        return None
    if any(a.status == AnalysisStatus.UNGRADABLE for a in analyses):
        return SKIP_UNGRADABLE
    return SKIP_NO_AI


def _eye_codes(review: DoctorReview, eye: str, photographed: set[str]) -> list[str] | None:
    """The doctor's conclusion for one eye; the visit-level one only where it cannot belong to
    the other eye (one photographed eye, or a code that holds for both)."""
    own = review.conclusion_codes_od if eye == Eye.OD else review.conclusion_codes_os
    if own:
        return list(own)
    visit = list(review.conclusion_codes or [])
    if visit and (len(photographed) == 1 or set(visit) <= EYE_INDEPENDENT_CODES):
        return visit
    return None


def _screening_label(codes: list[str] | None) -> tuple[str, str]:
    """(label, why none): normal / cataract / glaucoma for the screening package."""
    if codes is None:
        return "", NO_PER_EYE_LABEL
    found = {SCREENING_LABELS[c] for c in codes if c in SCREENING_LABELS}
    if len(found) > 1:
        return "", SEVERAL_SCREENING_LABELS
    if found:
        return found.pop(), ""
    if set(codes) == {ConclusionCode.NORMAL}:
        return "normal", ""
    return "", NOT_A_SCREENING_LABEL


def _diabetic_labels(review: DoctorReview, eye: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """((ICDR grade "0"–"4", why none), (DME "1"/"0", why none)) for one eye."""
    grade = review.dr_grade_od if eye == Eye.OD else review.dr_grade_os
    dme = review.dme_od if eye == Eye.OD else review.dme_os
    if grade == DrGrade.UNGRADABLE:
        dr = ("", DR_UNGRADABLE)
    else:
        dr = (grade, "") if grade else ("", NO_DR_GRADE)
    return dr, (("", NO_DME) if dme is None else ("1" if dme else "0", ""))


def _photo_extension(image: FundusImage) -> str:
    if image.sanitized_file:
        return Path(image.sanitized_file.name).suffix.lower() or ".jpg"
    return ".jpg" if image.format in ("JPEG", "MPO") else ".png"  # as sanitized_copy makes it


def _photo_bytes(image: FundusImage) -> bytes:
    """The sanitised copy (pixels only); made now for photos stored before copies existed."""
    if image.sanitized_file:
        with image.sanitized_file.open("rb") as handle:
            return handle.read()
    with image.file.open("rb") as handle:
        return sanitized_copy(io.BytesIO(handle.read())).content


def _collect(reviews: list[DoctorReview], salt: bytes, tally: _Tally) -> list[_Row]:
    images = list(
        FundusImage.objects.filter(record__in=[r.record_id for r in reviews]).order_by("pk")
    )
    analyses = _latest_analyses(images)
    by_record: dict[int, list[FundusImage]] = {}
    for image in images:
        by_record.setdefault(image.record_id, []).append(image)
    rows: list[_Row] = []
    for review in reviews:
        photos = by_record.get(review.record_id, [])
        current = [p for p in photos if p.superseded_by_id is None]
        tally.skipped[SKIP_SUPERSEDED] += len(photos) - len(current)
        photographed = {p.eye for p in current}
        patient = training_patient_key(patient_pk=review.record.patient_id, salt=salt)
        for image in current:
            reason = _quality_skip(analyses.get(image.pk, []))
            codes = _eye_codes(review, image.eye, photographed)
            if reason is None and codes and ConclusionCode.UNGRADABLE in codes:
                reason = SKIP_DOCTOR_UNGRADABLE
            if reason is not None:
                tally.skipped[reason] += 1
                continue
            label, label_why = _screening_label(codes)
            (dr, dr_why), (dme, dme_why) = _diabetic_labels(review, image.eye)
            if not (label or dr or dme):
                # Nothing to learn from: counted under the screening label's reason.
                tally.skipped[label_why] += 1
                continue
            for column, why in (("label", label_why), ("dr_grade", dr_why), ("dme", dme_why)):
                if why:
                    tally.unlabelled[column][why] += 1
            rows.append(
                _Row(
                    _photo_name(image, salt, _photo_extension(image)),
                    patient,
                    EYE_NAMES[image.eye],
                    label,
                    dr,
                    dme,
                    image,
                )
            )
    # Ordered by the hashed keys: the row order says nothing about when or who.
    return sorted(rows, key=lambda r: (r.patient, r.file))


def _month(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m") if value else None


def _manifest(reviews: list[DoctorReview], rows: list[_Row], tally: _Tally) -> dict[str, Any]:
    signed = sorted(r.signed_at for r in reviews if r.signed_at)
    per_label: dict[str, dict[str, int]] = {}
    for column in ("label", "dr_grade", "dme"):
        counts = Counter(getattr(r, column) for r in rows if getattr(r, column))
        per_label[column] = dict(sorted(counts.items()))
    return {
        "kind": EXPORT_KIND,
        "format": EXPORT_FORMAT,
        "dataset": CLINIC_DATASET,
        "photos": len(rows),
        "patients": len({r.patient for r in rows}),
        "screenings": len(reviews),
        "amended_reviews": sum(1 for r in reviews if r.version > 1),
        "doctors": len({r.doctor_id for r in reviews}),
        "signed_months": {"first": _month(signed[0]), "last": _month(signed[-1])}
        if signed
        else None,
        "per_label": per_label,
        "skipped_photos": dict(sorted(tally.skipped.items())),
        "photos_without_label": {
            column: dict(sorted(counts.items())) for column, counts in tally.unlabelled.items()
        },
        "columns": {
            "label": "ophai-screening: normal / cataract / glaucoma (doctor's per-eye conclusion)",
            "dr_grade": "ophai-dr: the doctor's ICDR grade 0-4 of the eye",
            "dme": "ophai-dme: the doctor's macular oedema answer, 1 yes / 0 no",
            "patient": "HMAC-SHA256 of the clinic's patient record with the export salt: one key "
            "per patient in every export made with the same salt",
        },
        "photos_are": "sanitised copies: pixels only, no metadata, file names from a salted hash",
        "train_commands": {
            name: command.format(export="EXPORT_DIR") for name, command in TRAIN_COMMANDS.items()
        },
    }


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValidationError(
            _("%(path)s is not an empty folder; choose a new folder for the export."),
            code="not_empty",
            params={"path": out},
        )


def _write(folder: Path, rows: list[_Row], manifest: dict[str, Any]) -> None:
    (folder / "images").mkdir()
    for row in rows:
        (folder / row.file).write_bytes(_photo_bytes(row.image))
    with (folder / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow(
                [row.file, CLINIC_DATASET, row.patient, row.eye, row.label, row.dr_grade, row.dme]
            )
    (folder / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def training_set_export(
    *,
    out: str | Path,
    actor: Any = None,
    since: dt.date | None = None,
    record_ids: Iterable[int] | None = None,
) -> TrainingExport:
    """Export the gradable photos of signed reviews into the new folder ``out``.

    ``record_ids`` limits the export to those screenings (the admin action); ``since`` to
    reviews whose latest signed version was signed on or after that date. Raises
    ValidationError for a folder that exists and is not empty, or when nothing can be exported.
    """
    out = Path(out)
    _check_out(out)
    reviews = latest_signed_reviews(since=since, record_ids=record_ids)
    tally = _Tally()
    rows = _collect(reviews, export_salt(), tally)
    if not rows:
        raise ValidationError(
            _("No gradable photo of a signed review to export (%(count)s signed screenings)."),
            code="empty",
            params={"count": len(reviews)},
        )
    manifest = _manifest(reviews, rows, tally)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        _write(partial, rows, manifest)
        _check_out(out)
        if out.exists():
            out.rmdir()
        partial.rename(out)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    audit_log(
        actor=actor,
        action=AuditEvent.Action.CREATE,
        # The proxy's label: the audit log shows it by name, in the reader's language.
        object_type=TrainingScreening._meta.label_lower,
        object_repr=f"training set: {manifest['photos']} photos, {manifest['patients']} patients",
        changes={
            "folder": [None, str(out)],
            "since": [None, since.isoformat() if since else None],
            "screenings": [None, manifest["screenings"]],
            "photos": [None, manifest["photos"]],
            "patients": [None, manifest["patients"]],
        },
    )
    return TrainingExport(out, manifest)
