"""Writes to screening records, fundus photos and doctor reviews. Every write is audited."""

from __future__ import annotations

import calendar
import datetime as dt
import enum
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from core.audit import audit_log, field_changes
from core.conflicts import StaleVersion
from core.models import AuditEvent
from core.roles import Role, is_doctor, require_permission, user_roles
from core.tasks import enqueue_on_commit
from patients.models import Patient
from screening.acuity import Acuity, AcuityError, parse_acuity
from screening.icd10 import NORMAL_EXAM_CODE, default_codes, parse_codes, unknown_codes
from screening.models import (
    AcuityKind,
    ConclusionCode,
    Correction,
    DoctorReview,
    DrGrade,
    Eye,
    FollowUpContact,
    FundusImage,
    RecallStatus,
    Recommendation,
    RecordStatus,
    ScreeningRecord,
    acuity_columns,
)
from screening.sanitized import sanitized_copy, sanitized_storage_name
from screening.thumbnails import thumbnail_name
from screening.uploads import fundus_storage_name, validate_fundus_upload

S = RecordStatus
ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    S.DRAFT: {S.IMAGES_UPLOADED},
    S.IMAGES_UPLOADED: {S.ANALYSING, S.REVIEWED},
    S.ANALYSING: {S.ANALYSED, S.REVIEWED},
    S.ANALYSED: {S.ANALYSING, S.REVIEWED, S.IMAGES_UPLOADED},
    S.REVIEWED: {S.REPORTED, S.REVIEWED},
    S.REPORTED: {S.REVIEWED},
}
# Acuity inputs take text in either notation (screening.acuity.parse_acuity).
ACUITY_INPUTS = ("va_od", "va_os", "cva_od", "cva_os", "phva_od", "phva_os")
MEASUREMENT_FIELDS = (
    "screened_at",
    *ACUITY_INPUTS,
    "cva_correction_od",
    "cva_correction_os",
    "iop_od",
    "iop_os",
    "notes",
)
ACUITY_ERRORS = {
    "invalid": _lazy(
        "Enter visual acuity in 5-point (e.g. 4.9) or decimal (e.g. 0.8) notation, "
        "or CF, HM, LP, NLP (指数, 手动, 光感, 无光感)."
    ),
    "out_of_range": _lazy(
        "Visual acuity must be 3.0–5.3 in 5-point or 0.01–2.0 in decimal notation."
    ),
    "bad_distance": _lazy(
        "Only counting fingers takes a distance, 1–600 cm (e.g. CF/30cm or 指数/30cm)."
    ),
}
IOP_MAX = Decimal("80")
FOLLOW_UP_MONTHS_MAX = 36
REVIEW_FIELDS = (
    "conclusion_codes",
    "conclusion_text",
    "recommendation",
    "recommendation_text",
    "follow_up_months",
    "follow_up_date",
    "dr_grade_od",
    "dr_grade_os",
    "dme_od",
    "dme_os",
    "amendment_reason",
)
# Per eye (OD, OS): written by the web form and the API; a caller that leaves them out (the
# admin, a command) keeps what the latest review says, so an amendment carries them over.
EYE_REVIEW_FIELDS = tuple(
    f"{name}_{eye}"
    for eye in ("od", "os")
    for name in ("conclusion_codes", "diagnosis_codes", "conclusion_text", "recommendation")
)
DIAGNOSIS_CODES_MAX = 10
# The visit's recommendation derived from the eyes' is the most pressing of them.
RECOMMENDATION_URGENCY = (
    Recommendation.URGENT,
    Recommendation.REFER,
    Recommendation.RETAKE,
    Recommendation.FOLLOW_UP,
    Recommendation.ROUTINE,
)


# --- status ---------------------------------------------------------------------------------
def record_transition(*, record: ScreeningRecord, to: str) -> ScreeningRecord:
    """Move a record to `to` if the workflow allows it; the row is locked while it changes."""
    with transaction.atomic():
        locked = ScreeningRecord.objects.select_for_update().get(pk=record.pk)
        if to not in ALLOWED_TRANSITIONS[locked.status]:
            raise ValidationError(
                _("A screening in status “%(current)s” cannot move to “%(target)s”.")
                % {"current": S(locked.status).label, "target": S(to).label},
                code="invalid_transition",
            )
        locked.status = to
        locked.save(update_fields=["status", "updated_at"])
    record.status = locked.status
    return record


def record_mark_analysing(*, record: ScreeningRecord) -> bool:
    """Called by the AI engine when it starts; a reviewed record keeps its status."""
    return _transition_if(
        record=record, allowed_from={S.IMAGES_UPLOADED, S.ANALYSED}, to=S.ANALYSING
    )


def record_mark_analysed(*, record: ScreeningRecord) -> bool:
    return _transition_if(record=record, allowed_from={S.ANALYSING}, to=S.ANALYSED)


def record_mark_reported(*, record: ScreeningRecord) -> bool:
    return _transition_if(record=record, allowed_from={S.REVIEWED}, to=S.REPORTED)


def _transition_if(*, record: ScreeningRecord, allowed_from: set[str], to: str) -> bool:
    with transaction.atomic():
        locked = ScreeningRecord.objects.select_for_update().get(pk=record.pk)
        if locked.status not in allowed_from:
            record.status = locked.status
            return False
        locked.status = to
        locked.save(update_fields=["status", "updated_at"])
    record.status = to
    return True


# --- records --------------------------------------------------------------------------------
def _decimal_or_none(value: Any, field: str, errors: dict[str, list[str]]) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        errors.setdefault(field, []).append(_("Enter a number."))
        return None


def _acuity_columns(kind: str, eye: str, value: Acuity | None) -> dict[str, Any]:
    """One parsed acuity as the columns that store it (None: all cleared)."""
    logmar, category, cf_cm = acuity_columns(kind, eye)
    columns = {
        logmar: None if value is None else value.logmar,
        category: "" if value is None else value.category,
        cf_cm: None if value is None else value.cf_distance_cm,
    }
    if kind == AcuityKind.UNCORRECTED:
        columns[f"va_{eye}"] = (
            None if value is None or value.category else value.decimal.quantize(Decimal("0.01"))
        )
    if kind == AcuityKind.CORRECTED and value is None:
        columns[f"cva_correction_{eye}"] = ""
    return columns


def record_clean_measurements(
    fields: dict[str, Any], *, patient: Patient | None = None
) -> dict[str, Any]:
    """Validate and normalise a screening's measurements into the columns that store them;
    with `patient`, the screening time must also fall on or after the patient's date of birth.

    Acuity inputs (va_od, cva_os, phva_od…) are text in either notation; each becomes its
    logMAR, low-vision category and CF distance (the uncorrected one also its decimal va_<eye>).
    """
    errors: dict[str, list[str]] = {}
    cleaned = dict(fields)
    for eye in ("od", "os"):
        iop_field = f"iop_{eye}"
        for kind in AcuityKind.values:
            name = f"{kind}_{eye}"
            if name not in fields:
                continue
            del cleaned[name]
            try:
                value = parse_acuity(fields[name])
            except AcuityError as exc:
                errors.setdefault(name, []).append(str(ACUITY_ERRORS[exc.code]))
                continue
            cleaned.update(_acuity_columns(kind, eye, value))
        correction = f"cva_correction_{eye}"
        if correction in fields:
            chosen = fields[correction] or ""
            if chosen not in Correction.values:
                if chosen:
                    errors.setdefault(correction, []).append(_("Choose glasses or contact lenses."))
                chosen = ""
            if chosen and cleaned.get(f"cva_logmar_{eye}", "unchanged") is None:
                errors.setdefault(correction, []).append(
                    _("Enter the corrected visual acuity, or leave the correction empty.")
                )
            cleaned[correction] = chosen
        if iop_field in cleaned:
            iop = _decimal_or_none(cleaned[iop_field], iop_field, errors)
            if iop is not None and not (Decimal("0") < iop <= IOP_MAX):
                errors.setdefault(iop_field, []).append(
                    _("Intraocular pressure must be between 1 and %(high)s mmHg.")
                    % {"high": IOP_MAX}
                )
            elif iop is not None:
                iop = iop.quantize(Decimal("0.1"))
            cleaned[iop_field] = iop
    if cleaned.get("screened_at") is None and "screened_at" in cleaned:
        cleaned["screened_at"] = timezone.now()
    screened_at = cleaned.get("screened_at")
    if screened_at is not None and screened_at > timezone.now() + dt.timedelta(minutes=5):
        errors.setdefault("screened_at", []).append(
            _("The screening time cannot be in the future.")
        )
    elif (
        screened_at is not None
        and patient is not None
        and timezone.localdate(screened_at) < patient.date_of_birth
    ):
        errors.setdefault("screened_at", []).append(
            _("The screening time cannot be before the patient's date of birth (%(born)s).")
            % {"born": patient.date_of_birth.isoformat()}
        )
    if "notes" in cleaned:
        cleaned["notes"] = (cleaned["notes"] or "").strip()
    if errors:
        raise ValidationError(errors)
    return cleaned


def record_create(
    *,
    actor,
    patient: Patient,
    screened_at: dt.datetime | None = None,
    va_od: Decimal | str | None = None,
    va_os: Decimal | str | None = None,
    cva_od: Decimal | str | None = None,
    cva_os: Decimal | str | None = None,
    cva_correction_od: str = "",
    cva_correction_os: str = "",
    phva_od: Decimal | str | None = None,
    phva_os: Decimal | str | None = None,
    iop_od: Decimal | str | None = None,
    iop_os: Decimal | str | None = None,
    notes: str = "",
) -> ScreeningRecord:
    """Start a screening; acuity in either notation ("4.9", "0.8", "CF/30cm", "手动")."""
    require_permission(actor, "screening.add_screeningrecord")
    fields = record_clean_measurements(
        {
            "screened_at": screened_at,
            "va_od": va_od,
            "va_os": va_os,
            "cva_od": cva_od,
            "cva_os": cva_os,
            "cva_correction_od": cva_correction_od,
            "cva_correction_os": cva_correction_os,
            "phva_od": phva_od,
            "phva_os": phva_os,
            "iop_od": iop_od,
            "iop_os": iop_os,
            "notes": notes,
        },
        patient=patient,
    )
    with transaction.atomic():
        record = ScreeningRecord.objects.create(patient=patient, operator=actor, **fields)
        audit_log(
            actor=actor,
            action=AuditEvent.Action.CREATE,
            obj=record,
            patient_ref=patient.patient_id,
            changes={
                name: [None, value] for name, value in fields.items() if value not in (None, "")
            },
        )
    return record


def _refuse_correction_without_acuity(record: ScreeningRecord, cleaned: dict[str, Any]) -> None:
    """A correction sent alone needs a corrected acuity already stored for that eye."""
    errors = {
        f"cva_correction_{eye}": [
            _("Enter the corrected visual acuity, or leave the correction empty.")
        ]
        for eye in ("od", "os")
        if cleaned.get(f"cva_correction_{eye}")
        and cleaned.get(f"cva_logmar_{eye}", getattr(record, f"cva_logmar_{eye}")) is None
    }
    if errors:
        raise ValidationError(errors)


def record_update(*, actor, record: ScreeningRecord, **fields: Any) -> ScreeningRecord:
    """Correct measurements or notes; refused once a doctor has signed."""
    require_permission(actor, "screening.change_screeningrecord")
    unknown = set(fields) - set(MEASUREMENT_FIELDS)
    if unknown:
        raise TypeError(f"record_update got fields it cannot change: {sorted(unknown)}")
    _refuse_measurement_change_if_locked(record)
    cleaned = record_clean_measurements(fields, patient=record.patient)
    _refuse_correction_without_acuity(record, cleaned)
    with transaction.atomic():
        # Signing locks this row too (record_transition): a correction and a signature
        # arriving together are serialised, and the one that comes second sees the other.
        locked = ScreeningRecord.objects.select_for_update().get(pk=record.pk)
        _refuse_measurement_change_if_locked(locked)
        changes = field_changes(locked, cleaned)
        if not changes:
            return locked
        for name, value in cleaned.items():
            setattr(locked, name, value)
        locked.save(update_fields=[*cleaned.keys(), "updated_at"])
        audit_log(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            obj=locked,
            patient_ref=record.patient.patient_id,
            changes=changes,
        )
    for name in (*cleaned.keys(), "updated_at", "status"):
        setattr(record, name, getattr(locked, name))
    return record


# --- assignment -----------------------------------------------------------------------------
# Deciding who reads a screening is the doctors' and the administrators' work; technicians
# take the photos and leave the choice of reader to them.
ASSIGNING_ROLES = frozenset({Role.DOCTOR.value, Role.ADMINISTRATOR.value})


def record_may_assign(user) -> bool:
    """Whether `user` may put screenings on a doctor's worklist (doctors and administrators)."""
    return bool(getattr(user, "is_active", False) and user_roles(user) & ASSIGNING_ROLES)


def record_assign(*, actor, record: ScreeningRecord, doctor) -> ScreeningRecord:
    """Put the screening on `doctor`'s worklist (None: back on every doctor's); audited.

    Reassignment is allowed until a doctor signs; a signed screening keeps its assignment."""
    if not record_may_assign(actor):
        raise PermissionDenied(_("Only a doctor or an administrator may assign screenings."))
    if doctor is not None and not is_doctor(doctor):
        raise ValidationError(
            {
                "doctor": _("%(name)s is not a doctor.")
                % {"name": doctor.get_full_name() or doctor.get_username()}
            }
        )
    with transaction.atomic():
        # No select_related: PostgreSQL refuses FOR UPDATE on the nullable side of a join.
        locked = ScreeningRecord.objects.select_for_update().get(pk=record.pk)
        if locked.is_locked:
            raise ValidationError(
                _("Screening %(record)s is signed: its doctor can no longer change.")
                % {"record": record}
            )
        new_id = doctor.pk if doctor is not None else None
        if locked.assigned_doctor_id != new_id:
            before = locked.assigned_doctor
            locked.assigned_doctor = doctor
            locked.save(update_fields=["assigned_doctor", "updated_at"])
            audit_log(
                actor=actor,
                action=AuditEvent.Action.UPDATE,
                obj=locked,
                patient_ref=record.patient.patient_id,
                changes={
                    "assigned_doctor": [
                        before.get_username() if before is not None else None,
                        doctor.get_username() if doctor is not None else None,
                    ]
                },
            )
    record.assigned_doctor = doctor
    record.updated_at = locked.updated_at
    return record


# --- photos ---------------------------------------------------------------------------------
class DuplicatePhotoHeld(ValidationError):
    """The photo is already stored for another screening of the same patient (either eye).

    Often the wrong file (last year's photo, or the other eye's); the upload is held until the
    technician confirms it (``confirm_duplicate=True``). `duplicates` are the earlier photos.
    """

    def __init__(self, duplicates: list[FundusImage]) -> None:
        first = duplicates[0]
        super().__init__(
            _(
                "This photo is already stored for this patient's screening of %(date)s "
                "(%(eye)s, photo ID %(number)s). Check that it is the right photo of the right "
                "eye; if it is, confirm to upload it again."
            )
            % {
                "date": timezone.localtime(first.record.screened_at).date().isoformat(),
                "eye": Eye(first.eye).label,
                "number": first.pk,
            },
            code="duplicate",
        )
        self.duplicates = duplicates


def image_upload(
    *,
    actor,
    record: ScreeningRecord,
    eye: str,
    uploaded_file,
    confirm_duplicate: bool = False,
    replaces: FundusImage | None = None,
) -> FundusImage:
    """Validate and store one fundus photo and its sanitised copy, then queue its AI analysis
    after commit.

    The same photo in this screening is refused; one already stored for another screening of
    the patient raises `DuplicatePhotoHeld` unless `confirm_duplicate` (the confirmation is
    audited). The sanitised copy is made in memory before anything is written; both files
    are written under server-generated names before the row, and removed again if the row
    cannot be written, so a refused upload leaves nothing behind. A photo added to an analysed
    screening sets it back to "photos uploaded" until the AI has seen it. With `replaces` (see
    `image_replace`), that photo becomes history in the same transaction.
    """
    require_permission(actor, "screening.add_fundusimage")
    if eye not in Eye.values:
        raise ValidationError({"eye": [_("Choose the right eye (OD) or the left eye (OS).")]})
    _refuse_if_locked(record)
    validated = validate_fundus_upload(uploaded_file)
    _refuse_duplicate(record, validated.sha256)
    earlier = _other_visit_duplicates(record, validated.sha256)
    if earlier and not confirm_duplicate:
        raise DuplicatePhotoHeld(earlier)
    sanitized = sanitized_copy(uploaded_file)

    stored_name = default_storage.save(fundus_storage_name(validated=validated), uploaded_file)
    written = [stored_name]
    try:
        sanitized_name = default_storage.save(
            sanitized_storage_name(stored_name, sanitized.extension),
            ContentFile(sanitized.content),
        )
        written.append(sanitized_name)
        with transaction.atomic():
            # The patient's row serialises uploads to their screenings, so that two visits
            # receiving the same photo at once cannot both skip the confirmation.
            Patient.objects.select_for_update().get(pk=record.patient_id)
            locked = ScreeningRecord.objects.select_for_update().get(pk=record.pk)
            _refuse_if_locked(locked)
            earlier = _other_visit_duplicates(record, validated.sha256)
            if earlier and not confirm_duplicate:
                raise DuplicatePhotoHeld(earlier)
            image = FundusImage.objects.create(
                record=locked,
                eye=eye,
                file=stored_name,
                sanitized_file=sanitized_name,
                sha256=validated.sha256,
                width=validated.width,
                height=validated.height,
                format=validated.format,
                mode=validated.mode,
                size_bytes=validated.size_bytes,
                original_name=validated.original_name,
                uploaded_by=actor,
            )
            if locked.status in (S.DRAFT, S.ANALYSED):
                record_transition(record=locked, to=S.IMAGES_UPLOADED)
            changes: dict[str, Any] = {"eye": [None, eye], "sha256": [None, validated.sha256]}
            if earlier:
                changes["confirmed_duplicate_of"] = [None, [photo.pk for photo in earlier]]
            audit_log(
                actor=actor,
                action=AuditEvent.Action.CREATE,
                obj=image,
                patient_ref=locked.patient.patient_id,
                changes=changes,
            )
            if replaces is not None:
                _supersede(actor=actor, old=replaces, new=image)
            _enqueue_configured("FUNDUS_ANALYSIS_TASK", image.pk, cluster=settings.AI_CLUSTER_NAME)
    except IntegrityError as exc:
        _delete_stored(written)
        raise ValidationError(
            _("This photo was already uploaded to this screening."), code="duplicate"
        ) from exc
    except BaseException:
        _delete_stored(written)
        raise
    record.status = locked.status
    return image


def image_replace(*, actor, image: FundusImage, uploaded_file) -> FundusImage:
    """A technician retakes `image`: the new photo (same eye) is analysed and used instead; the
    old one stays on the record as history, marked as replaced, and in the audit log."""
    require_permission(actor, "screening.add_fundusimage")
    _refuse_if_superseded(image)
    return image_upload(
        actor=actor,
        record=image.record,
        eye=image.eye,
        uploaded_file=uploaded_file,
        replaces=image,
    )


def _refuse_if_superseded(image: FundusImage) -> None:
    if image.superseded_by_id is not None:
        raise ValidationError(
            _("Photo %(number)s was already replaced by photo %(new)s.")
            % {"number": image.pk, "new": image.superseded_by_id},
            code="superseded",
        )


def _supersede(*, actor, old: FundusImage, new: FundusImage) -> None:
    locked = FundusImage.objects.select_for_update().get(pk=old.pk)
    _refuse_if_superseded(locked)
    locked.superseded_by = new
    # The doctor chose the old photo for the report; the choice does not pass to a photo they
    # have not seen: the default rule picks again.
    locked.chosen_for_report = False
    locked.save(update_fields=["superseded_by", "chosen_for_report"])
    audit_log(
        actor=actor,
        action=AuditEvent.Action.UPDATE,
        obj=locked,
        patient_ref=new.record.patient.patient_id,
        changes={"superseded_by": [None, new.pk]},
    )
    old.superseded_by, old.chosen_for_report = new, False


def image_choose_for_report(
    *, doctor, record: ScreeningRecord, eye: str, image: FundusImage | None
) -> FundusImage | None:
    """The doctor picks the photo of `eye` the report, summary, triage and API use (None: back
    to the default, the newest gradable photo with AI results). Audited."""
    require_permission(doctor, "screening.change_doctorreview")
    if eye not in Eye.values:
        raise ValidationError({"eye": [_("Choose the right eye (OD) or the left eye (OS).")]})
    with transaction.atomic():
        locked = (
            ScreeningRecord.objects.select_for_update().select_related("patient").get(pk=record.pk)
        )
        if locked.is_locked:
            raise ValidationError(
                _("This screening has a signed review; the photos of its report are final."),
                code="locked",
            )
        photos = FundusImage.objects.select_for_update().filter(record=locked, eye=eye)
        previous = next((photo for photo in photos if photo.chosen_for_report), None)
        if image is not None:
            image = next((photo for photo in photos if photo.pk == image.pk), None)
            if image is None:
                raise ValidationError(
                    _("This photo is not a photo of this eye in this screening."),
                    code="wrong_photo",
                )
            _refuse_if_superseded(image)
        if previous == image:
            return image
        if previous is not None:
            previous.chosen_for_report = False
            previous.save(update_fields=["chosen_for_report"])
        if image is not None:
            image.chosen_for_report = True
            image.save(update_fields=["chosen_for_report"])
        audit_log(
            actor=doctor,
            action=AuditEvent.Action.UPDATE,
            obj=locked,
            patient_ref=locked.patient.patient_id,
            changes={
                f"report_photo_{eye.lower()}": [
                    previous.pk if previous else None,
                    image.pk if image else None,
                ]
            },
        )
    return image


def _delete_stored(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


def _other_visit_duplicates(record: ScreeningRecord, sha256: str) -> list[FundusImage]:
    return list(
        FundusImage.objects.filter(record__patient_id=record.patient_id, sha256=sha256)
        .exclude(record_id=record.pk)
        .select_related("record")
        .order_by("-record__screened_at", "-pk")
    )


def image_sanitize(*, image: FundusImage) -> FundusImage:
    """Make the sanitised copy of a photo stored before copies existed; a no-op when it has one.

    Raises FileNotFoundError if the original is missing, and the validator's ``corrupt``
    ValidationError if it no longer decodes. Safe when two requests race: one copy wins.
    """
    if image.sanitized_file:
        return image
    with default_storage.open(image.file.name, "rb") as handle:
        sanitized = sanitized_copy(handle)
    name = default_storage.save(
        sanitized_storage_name(image.file.name, sanitized.extension),
        ContentFile(sanitized.content),
    )
    won = FundusImage.objects.filter(pk=image.pk, sanitized_file="").update(sanitized_file=name)
    if won:
        image.sanitized_file = name
        # The preview was made from the original before copies existed: make it again.
        default_storage.delete(thumbnail_name(image))
    else:
        default_storage.delete(name)
        image.refresh_from_db(fields=["sanitized_file"])
    return image


def _refuse_measurement_change_if_locked(record: ScreeningRecord) -> None:
    if record.is_locked:
        raise ValidationError(
            _("This screening has a signed review; its measurements can no longer be changed."),
            code="locked",
        )


def _refuse_if_locked(record: ScreeningRecord) -> None:
    if record.is_locked:
        raise ValidationError(
            _("This screening has a signed review; start a new screening to add photos."),
            code="locked",
        )


def _refuse_duplicate(record: ScreeningRecord, sha256: str) -> None:
    existing = record.images.filter(sha256=sha256).first()
    if existing is not None:
        raise ValidationError(
            _("This photo was already uploaded to this screening (%(eye)s, photo ID %(number)s).")
            % {"eye": Eye(existing.eye).label, "number": existing.pk},
            code="duplicate",
        )


def image_delete(*, actor, image: FundusImage) -> None:
    """Remove a photo uploaded by mistake, before any review is signed."""
    require_permission(actor, "screening.delete_fundusimage")
    record = image.record
    _refuse_if_locked(record)
    names = [name for name in (image.file.name, image.sanitized_file.name) if name]
    with transaction.atomic():
        audit_log(
            actor=actor,
            action=AuditEvent.Action.DELETE,
            obj=image,
            patient_ref=record.patient.patient_id,
            changes={"eye": [image.eye, None], "sha256": [image.sha256, None]},
        )
        image.delete()
        if not record.images.exists() and record.status != S.DRAFT:
            ScreeningRecord.objects.filter(pk=record.pk).update(
                status=S.DRAFT, updated_at=timezone.now()
            )
            record.status = S.DRAFT
        transaction.on_commit(lambda: _delete_stored(names))


def image_record_view(*, actor, image: FundusImage, original: bool = False) -> None:
    """Log that `actor` opened the photo: its sanitised copy, or (a distinct action) the
    original file as uploaded."""
    audit_log(
        actor=actor,
        action=AuditEvent.Action.VIEW_ORIGINAL if original else AuditEvent.Action.VIEW,
        obj=image,
        patient_ref=image.record.patient.patient_id,
    )


def _enqueue_configured(setting_name: str, *args, cluster: str | None = None) -> None:
    """Queue the later app's task named in settings; earlier apps never import later ones."""
    task_path = getattr(settings, setting_name, "")
    if task_path:
        enqueue_on_commit(task_path, *args, cluster=cluster)


# --- doctor reviews -------------------------------------------------------------------------
def _add_months(day: dt.date, months: int) -> dt.date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _clean_review(fields: dict[str, Any], *, is_amendment: bool) -> dict[str, Any]:
    """Validate a review. The visit's conclusion and recommendation may be left empty when
    the eyes have theirs: the conclusion is then the union of the eyes' (an abnormal finding
    outranks "not gradable", which outranks "no abnormality"), the recommendation the most
    pressing of the eyes' (RECOMMENDATION_URGENCY)."""
    errors: dict[str, list[str]] = {}
    eyes = _clean_eye_conclusions(fields, errors)
    codes = list(dict.fromkeys(fields.get("conclusion_codes") or []))
    if not codes:
        codes = _visit_codes_from_eyes(eyes)
    if not fields.get("recommendation"):
        fields = {**fields, "recommendation": _visit_recommendation_from_eyes(eyes)}
    unknown = [code for code in codes if code not in ConclusionCode.values]
    if not codes:
        errors.setdefault("conclusion_codes", []).append(_("Choose at least one conclusion."))
    elif unknown:
        errors.setdefault("conclusion_codes", []).append(
            _("Unknown conclusion code(s): %(codes)s.") % {"codes": ", ".join(map(str, unknown))}
        )
    elif len(codes) > 1 and (ConclusionCode.NORMAL in codes or ConclusionCode.UNGRADABLE in codes):
        errors.setdefault("conclusion_codes", []).append(
            _("“No abnormality” and “not gradable” cannot be combined with other conclusions.")
        )
    if fields.get("recommendation") not in Recommendation.values:
        errors.setdefault("recommendation", []).append(_("Choose a recommendation."))
    months = fields.get("follow_up_months")
    if months is not None and not (1 <= int(months) <= FOLLOW_UP_MONTHS_MAX):
        errors.setdefault("follow_up_months", []).append(
            _("The follow-up interval must be between 1 and %(max)s months.")
            % {"max": FOLLOW_UP_MONTHS_MAX}
        )
    follow_up_date = fields.get("follow_up_date")
    if follow_up_date is not None and follow_up_date < timezone.localdate():
        errors.setdefault("follow_up_date", []).append(
            _("The follow-up date cannot be in the past.")
        )
    diabetic = _clean_diabetic_eyes(fields, errors)
    if (
        ConclusionCode.NORMAL in codes
        and "conclusion_codes" not in errors
        and any(_dr_abnormal(diabetic, eye) for eye in ("od", "os"))
    ):
        errors.setdefault("conclusion_codes", []).append(
            _(
                "“No abnormality found” contradicts the diabetic retinopathy grade or macular "
                "oedema recorded for an eye: correct one or the other."
            )
        )
    _check_eyes_against_visit(codes, eyes, diabetic, errors)
    if is_amendment and not (fields.get("amendment_reason") or "").strip():
        errors.setdefault("amendment_reason", []).append(
            _("This screening already has a signed review: give the reason for the amendment.")
        )
    if errors:
        raise ValidationError(errors)
    return {
        **fields,
        **_grades_from_dr_conclusions(diabetic, eyes),
        **eyes,
        "conclusion_codes": codes,
        "conclusion_text": (fields.get("conclusion_text") or "").strip(),
        "recommendation_text": (fields.get("recommendation_text") or "").strip(),
        "amendment_reason": (fields.get("amendment_reason") or "").strip(),
    }


EYE_NAMES = {"od": _lazy("the right eye (OD)"), "os": _lazy("the left eye (OS)")}
# An eye's DR conclusion and its ICDR grade say the same thing.
DR_CONCLUSION_GRADES = {
    ConclusionCode.DR_MILD: "1",
    ConclusionCode.DR_MODERATE: "2",
    ConclusionCode.DR_SEVERE: "3",
    ConclusionCode.DR_PROLIFERATIVE: "4",
}


def _grades_from_dr_conclusions(diabetic: dict[str, Any], eyes: dict[str, Any]) -> dict[str, Any]:
    """An eye concluded as DR but left ungraded gets the grade its conclusion names (the worse
    of two), so statistics, exports and AI agreement read one answer. Oedema is never implied."""
    filled = dict(diabetic)
    for eye in ("od", "os"):
        grades = [
            DR_CONCLUSION_GRADES[code]
            for code in eyes.get(f"conclusion_codes_{eye}") or []
            if code in DR_CONCLUSION_GRADES
        ]
        if grades and not filled.get(f"dr_grade_{eye}"):
            filled[f"dr_grade_{eye}"] = max(grades)
    return filled


def _clean_eye_conclusions(fields: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    """Per eye: pick-list conclusions, ICD-10 codes from the catalogue (the picked conclusions'
    defaults when left empty), free text and recommendation (empty allowed)."""
    cleaned: dict[str, Any] = {}
    for eye in ("od", "os"):
        name = EYE_NAMES[eye]
        codes_field, icd_field = f"conclusion_codes_{eye}", f"diagnosis_codes_{eye}"
        text_field, rec_field = f"conclusion_text_{eye}", f"recommendation_{eye}"
        raw_codes = fields.get(codes_field) or []
        codes = list(dict.fromkeys(raw_codes)) if isinstance(raw_codes, list | tuple) else None
        if codes is None or any(code not in ConclusionCode.values for code in codes):
            unknown = [str(c) for c in (codes or [raw_codes]) if c not in ConclusionCode.values]
            errors.setdefault(codes_field, []).append(
                _("Unknown conclusion code(s) for %(eye)s: %(codes)s.")
                % {"eye": name, "codes": ", ".join(unknown)}
            )
            codes = []
        elif len(codes) > 1 and (
            ConclusionCode.NORMAL in codes or ConclusionCode.UNGRADABLE in codes
        ):
            errors.setdefault(codes_field, []).append(
                _(
                    "For %(eye)s, “no abnormality” and “not gradable” cannot be combined with "
                    "other conclusions."
                )
                % {"eye": name}
            )
        raw_icd = fields.get(icd_field)
        if raw_icd is not None and not isinstance(raw_icd, str | list | tuple):
            raw_icd = [raw_icd]
        icd = parse_codes(raw_icd)
        if not icd and codes:
            icd = default_codes(codes)
        unknown_icd = unknown_codes(icd)
        if unknown_icd:
            errors.setdefault(icd_field, []).append(
                _(
                    "Not in the clinic's ICD-10 catalogue: %(codes)s (for %(eye)s). Use codes "
                    "such as E11.3, H36.0, H40.0 or H26.9."
                )
                % {"codes": ", ".join(unknown_icd), "eye": name}
            )
        elif len(icd) > DIAGNOSIS_CODES_MAX:
            errors.setdefault(icd_field, []).append(
                _("At most %(max)d ICD-10 codes per eye.") % {"max": DIAGNOSIS_CODES_MAX}
            )
        elif codes_field in errors:
            pass  # the conclusions are wrong: what the codes go with is not known
        elif NORMAL_EXAM_CODE in icd and (
            len(icd) > 1 or any(code != ConclusionCode.NORMAL for code in codes)
        ):
            errors.setdefault(icd_field, []).append(
                _(
                    "For %(eye)s, %(code)s (no abnormality) goes only with the conclusion “No "
                    "abnormality found” and no other code."
                )
                % {"eye": name, "code": NORMAL_EXAM_CODE}
            )
        elif ConclusionCode.NORMAL in codes and icd and icd != [NORMAL_EXAM_CODE]:
            errors.setdefault(icd_field, []).append(
                _("For %(eye)s, “No abnormality found” cannot carry a diagnosis code: %(codes)s.")
                % {"eye": name, "codes": ", ".join(icd)}
            )
        text = fields.get(text_field)
        text = text.strip() if isinstance(text, str) else ""
        recommendation = fields.get(rec_field) or ""
        if recommendation not in Recommendation.values and recommendation != "":
            errors.setdefault(rec_field, []).append(
                _("Choose a recommendation for %(eye)s, or leave it empty.") % {"eye": name}
            )
            recommendation = ""
        if not codes and (icd or text or recommendation) and codes_field not in errors:
            errors.setdefault(codes_field, []).append(
                _("Choose the conclusion for %(eye)s, or leave its other fields empty.")
                % {"eye": name}
            )
        cleaned.update(
            {codes_field: codes, icd_field: icd, text_field: text, rec_field: recommendation}
        )
    return cleaned


def _visit_codes_from_eyes(eyes: dict[str, Any]) -> list[str]:
    union = list(dict.fromkeys([*eyes["conclusion_codes_od"], *eyes["conclusion_codes_os"]]))
    abnormal = [c for c in union if c not in (ConclusionCode.NORMAL, ConclusionCode.UNGRADABLE)]
    if abnormal:
        return abnormal
    if ConclusionCode.UNGRADABLE in union:
        return [ConclusionCode.UNGRADABLE]
    return [ConclusionCode.NORMAL] if union else []


def _visit_recommendation_from_eyes(eyes: dict[str, Any]) -> str:
    given = {eyes["recommendation_od"], eyes["recommendation_os"]}
    return next((str(r) for r in RECOMMENDATION_URGENCY if r in given), "")


def _check_eyes_against_visit(
    codes: list[str],
    eyes: dict[str, Any],
    diabetic: dict[str, Any],
    errors: dict[str, list[str]],
) -> None:
    """An eye called normal with an abnormal DR grade, or a normal visit with an abnormal eye."""
    for eye in ("od", "os"):
        field = f"conclusion_codes_{eye}"
        eye_codes = eyes[field]
        if field in errors:
            continue
        if ConclusionCode.NORMAL in eye_codes and _dr_abnormal(diabetic, eye):
            errors.setdefault(field, []).append(
                _(
                    "“No abnormality found” for %(eye)s contradicts the DR grade or macular "
                    "oedema recorded for it: correct one or the other."
                )
                % {"eye": EYE_NAMES[eye]}
            )
        grade = diabetic.get(f"dr_grade_{eye}")
        dr_codes = [code for code in eye_codes if code in DR_CONCLUSION_GRADES]
        if grade and grade != DrGrade.UNGRADABLE and dr_codes:
            if any(DR_CONCLUSION_GRADES[code] != grade for code in dr_codes):
                errors.setdefault(field, []).append(
                    _(
                        "The diabetic retinopathy conclusion for %(eye)s does not match its ICDR "
                        "grade (R%(grade)s): correct one or the other."
                    )
                    % {"eye": EYE_NAMES[eye], "grade": grade}
                )
        abnormal = [
            c for c in eye_codes if c not in (ConclusionCode.NORMAL, ConclusionCode.UNGRADABLE)
        ]
        if ConclusionCode.NORMAL in codes and abnormal and "conclusion_codes" not in errors:
            errors.setdefault("conclusion_codes", []).append(
                _(
                    "The visit's “No abnormality found” contradicts the conclusion for %(eye)s: "
                    "correct one or the other, or leave the visit's conclusion empty."
                )
                % {"eye": EYE_NAMES[eye]}
            )


def _carry_over_eyes(fields: dict[str, Any], latest: DoctorReview | None) -> dict[str, Any]:
    """Per-eye fields the caller left out keep the latest review's values (an amendment starts
    from the signed review)."""
    carried = dict(fields)
    for name in EYE_REVIEW_FIELDS:
        if carried.get(name, KEEP) is KEEP:
            value = getattr(latest, name) if latest is not None else ""
            carried[name] = list(value) if isinstance(value, list) else value
    for name in EYE_REVIEW_FIELDS:
        if name.startswith(("conclusion_codes", "diagnosis_codes")) and carried[name] == "":
            carried[name] = []
    return carried


DR_GRADE_ERRORS = {
    "od": _lazy("Choose the right eye's (OD) ICDR grade: R0 to R4, or “ungradable”."),
    "os": _lazy("Choose the left eye's (OS) ICDR grade: R0 to R4, or “ungradable”."),
}
DME_ERRORS = {
    "od": _lazy("Say whether the right eye (OD) has macular oedema: yes, no, or leave it empty."),
    "os": _lazy("Say whether the left eye (OS) has macular oedema: yes, no, or leave it empty."),
}


def _clean_diabetic_eyes(fields: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    """Per eye: the ICDR grade as a DrGrade value (``2``, ``"2"``, ``"R2"`` or ``"ungradable"``;
    None or empty: not graded, stored empty) and macular oedema as True / False / None."""
    cleaned: dict[str, Any] = {}
    for eye in ("od", "os"):
        name = f"dr_grade_{eye}"
        grade = fields.get(name)
        if isinstance(grade, bool):
            grade = "invalid"
        elif isinstance(grade, int):
            grade = str(grade)
        elif isinstance(grade, str):
            grade = grade.strip().lower().removeprefix("r") if grade.strip() else None
        if grade is not None and grade not in DrGrade.values:
            errors.setdefault(name, []).append(str(DR_GRADE_ERRORS[eye]))
            grade = None
        cleaned[name] = grade or ""
        name = f"dme_{eye}"
        dme = fields.get(name)
        if dme is not None and not isinstance(dme, bool):
            errors.setdefault(name, []).append(str(DME_ERRORS[eye]))
            dme = None
        cleaned[name] = dme
    return cleaned


def _dr_abnormal(diabetic: dict[str, Any], eye: str) -> bool:
    grade = diabetic.get(f"dr_grade_{eye}")
    return bool(diabetic.get(f"dme_{eye}")) or grade not in ("", "0", DrGrade.UNGRADABLE)


def review_clean(*, record: ScreeningRecord, fields: dict[str, Any]) -> dict[str, Any]:
    """Validate a review's fields for `record` (forms call this to show errors in place)."""
    latest = _latest_review_of_photographed(record)
    return _clean_review(_carry_over_eyes(fields, latest), is_amendment=_is_amendment(latest))


def _latest_review_of_photographed(record: ScreeningRecord) -> DoctorReview | None:
    """The record's latest review (draft or signed), once the record has photos."""
    if record.status == S.DRAFT:
        raise ValidationError(
            _("Upload at least one photo before writing a review."), code="no_photos"
        )
    return record.reviews.select_related("doctor").order_by("-version").first()


def _is_amendment(latest: DoctorReview | None) -> bool:
    return latest is not None and (latest.is_signed or latest.supersedes_id is not None)


class Unseen(enum.Enum):
    """A write from a caller that showed no review to anyone (a command, a fixture)."""

    ANY_REVISION = "any"


ANY_REVISION = Unseen.ANY_REVISION


class Kept(enum.Enum):
    """A per-eye field the caller left out: the latest review's value stays."""

    KEEP = "keep"


KEEP = Kept.KEEP


def _refuse_if_stale(latest: DoctorReview | None, revision: int | None | Unseen) -> None:
    """`revision` is the latest review's revision as the doctor saw it (None: there was none)."""
    if revision is ANY_REVISION:
        return
    if (latest.revision if latest is not None else None) != revision:
        raise _review_conflict(latest)


def review_refuse_if_stale(*, record: ScreeningRecord, revision: int | None | Unseen) -> None:
    """StaleVersion unless `revision` is that of the record's latest review (None: it has none).
    Forms call this to show the conflict in place; the writes check again under the lock."""
    latest = record.reviews.select_related("doctor").order_by("-version").first()
    _refuse_if_stale(latest, revision)


def _review_conflict(current: DoctorReview | None) -> StaleVersion:
    if current is None:
        return StaleVersion(
            _("The review you saw no longer exists: nothing was saved or signed."), current=None
        )
    if current.is_signed:
        message = _(
            "The review of this screening changed after you last saw it (now version "
            "%(version)d, revision %(revision)d, signed by %(doctor)s): nothing was saved or "
            "signed. Check the current review and try again."
        )
    else:
        message = _(
            "The review of this screening changed after you last saw it (now version "
            "%(version)d, revision %(revision)d, draft by %(doctor)s): nothing was saved or "
            "signed. Check the current review and try again."
        )
    doctor = current.doctor.get_full_name() or current.doctor.get_username()
    return StaleVersion(
        message % {"version": current.version, "revision": current.revision, "doctor": doctor},
        current=current,
    )


def review_save_draft(
    *,
    doctor,
    record: ScreeningRecord,
    conclusion_codes: list[str] | None = None,
    recommendation: str = "",
    conclusion_text: str = "",
    recommendation_text: str = "",
    follow_up_months: int | None = None,
    follow_up_date: dt.date | None = None,
    dr_grade_od: str | int | None = "",
    dr_grade_os: str | int | None = "",
    dme_od: bool | None = None,
    dme_os: bool | None = None,
    conclusion_codes_od: list[str] | Kept = KEEP,
    conclusion_codes_os: list[str] | Kept = KEEP,
    diagnosis_codes_od: list[str] | str | Kept = KEEP,
    diagnosis_codes_os: list[str] | str | Kept = KEEP,
    conclusion_text_od: str | Kept = KEEP,
    conclusion_text_os: str | Kept = KEEP,
    recommendation_od: str | Kept = KEEP,
    recommendation_os: str | Kept = KEEP,
    amendment_reason: str = "",
    revision: int | None | Unseen = ANY_REVISION,
) -> DoctorReview:
    """Create or update the record's open draft; after a signed review the draft is an amendment.

    `revision` is that of the record's latest review as the doctor saw it (None when there was
    none): if the reviews changed since, nothing is written (StaleVersion). Every entry point
    that showed the doctor a review passes it; ANY_REVISION is for callers that showed none.
    Saving what is already there changes nothing. Per-eye fields left out (KEEP) keep the
    latest review's values; empty ICD-10 codes are the picked conclusions' defaults.
    """
    require_permission(doctor, "screening.change_doctorreview")
    fields = {
        "conclusion_codes": conclusion_codes,
        "conclusion_text": conclusion_text,
        "recommendation": recommendation,
        "recommendation_text": recommendation_text,
        "follow_up_months": follow_up_months,
        "follow_up_date": follow_up_date,
        "dr_grade_od": dr_grade_od,
        "dr_grade_os": dr_grade_os,
        "dme_od": dme_od,
        "dme_os": dme_os,
        "conclusion_codes_od": conclusion_codes_od,
        "conclusion_codes_os": conclusion_codes_os,
        "diagnosis_codes_od": diagnosis_codes_od,
        "diagnosis_codes_os": diagnosis_codes_os,
        "conclusion_text_od": conclusion_text_od,
        "conclusion_text_os": conclusion_text_os,
        "recommendation_od": recommendation_od,
        "recommendation_os": recommendation_os,
        "amendment_reason": amendment_reason,
    }
    with transaction.atomic():
        record = (
            ScreeningRecord.objects.select_for_update().select_related("patient").get(pk=record.pk)
        )
        latest = _latest_review_of_photographed(record)
        _refuse_if_stale(latest, revision)
        return _write_draft(doctor=doctor, record=record, latest=latest, fields=fields)


def _write_draft(
    *, doctor, record: ScreeningRecord, latest: DoctorReview | None, fields: dict[str, Any]
) -> DoctorReview:
    cleaned = _clean_review(_carry_over_eyes(fields, latest), is_amendment=_is_amendment(latest))
    if latest is not None and not latest.is_signed:
        changes = field_changes(latest, cleaned)
        if latest.doctor_id != doctor.pk:
            changes["doctor"] = [latest.doctor.get_username(), doctor.get_username()]
        if not changes:
            return latest
        for name, value in cleaned.items():
            setattr(latest, name, value)
        latest.doctor = doctor
        latest.revision += 1
        latest.save()
        review, action = latest, AuditEvent.Action.UPDATE
    else:
        review = DoctorReview.objects.create(
            record=record,
            version=(latest.version + 1) if latest else 1,
            revision=(latest.revision + 1) if latest else 1,
            doctor=doctor,
            supersedes=latest,
            **cleaned,
        )
        changes = {
            name: [None, value] for name, value in cleaned.items() if value not in (None, "", [])
        }
        action = AuditEvent.Action.CREATE
    audit_log(
        actor=doctor,
        action=action,
        obj=review,
        patient_ref=record.patient.patient_id,
        changes={**changes, "revision": [None, review.revision]},
    )
    return review


def review_sign(*, doctor, review: DoctorReview, revision: int | None = None) -> DoctorReview:
    """Sign a draft as the doctor saw it: `revision`, by default that of `review` as the caller
    loaded it. It becomes the record's conclusion, and its report is generated. The same
    signature asked for again answers with the signed review; a review changed since the
    doctor saw it is not signed (StaleVersion)."""
    require_permission(doctor, "screening.sign_doctorreview")
    if revision is None:
        revision = review.revision
    with transaction.atomic():
        # The record first, as every review write locks it: no lock-order deadlock.
        record = (
            ScreeningRecord.objects.select_for_update()
            .select_related("patient")
            .get(pk=review.record_id)
        )
        locked = DoctorReview.objects.select_related("doctor").get(pk=review.pk)
        if locked.is_signed and locked.doctor_id == doctor.pk and locked.revision == revision + 1:
            return locked  # this signature, asked for twice (a double click): one signature
        if locked.is_signed or locked.revision != revision:
            raise _review_conflict(locked)
        return _sign(doctor=doctor, record=record, review=locked)


def review_save_and_sign(
    *, doctor, record: ScreeningRecord, revision: int | None | Unseen, **fields: Any
) -> DoctorReview:
    """Save what the doctor wrote and sign it, in one step (the web form's and the admin's
    "sign"). Posting the same again after it was signed (a double click, a resent form) is
    the same signature, answered with the signed review."""
    require_permission(doctor, "screening.sign_doctorreview")
    require_permission(doctor, "screening.change_doctorreview")
    with transaction.atomic():
        record = (
            ScreeningRecord.objects.select_for_update().select_related("patient").get(pk=record.pk)
        )
        latest = _latest_review_of_photographed(record)
        fields = _carry_over_eyes(fields, latest)
        if _is_repeated_signature(latest, doctor=doctor, revision=revision, fields=fields):
            return latest
        _refuse_if_stale(latest, revision)
        review = _write_draft(doctor=doctor, record=record, latest=latest, fields=fields)
        return _sign(doctor=doctor, record=record, review=review)


def _is_repeated_signature(
    latest: DoctorReview | None, *, doctor, revision: int | None | Unseen, fields: dict[str, Any]
) -> bool:
    """The same request again (a double click, a resent form): since the revision the doctor
    saw, this doctor signed exactly the content posted again."""
    if latest is None or not latest.is_signed or latest.doctor_id != doctor.pk:
        return False
    if revision is ANY_REVISION or latest.revision <= (revision or 0):
        return False
    try:
        cleaned = _clean_review(fields, is_amendment=latest.supersedes_id is not None)
    except ValidationError:
        return False
    if cleaned.get("follow_up_date") is None:
        cleaned.pop("follow_up_date", None)  # signing filled it in from the interval
    return not field_changes(latest, cleaned)


def _sign(*, doctor, record: ScreeningRecord, review: DoctorReview) -> DoctorReview:
    now = timezone.now()
    review.signed_at = now
    review.doctor = doctor
    review.revision += 1
    if review.follow_up_months and review.follow_up_date is None:
        review.follow_up_date = _add_months(timezone.localdate(now), review.follow_up_months)
    review.save(update_fields=["signed_at", "doctor", "follow_up_date", "revision", "updated_at"])
    record_transition(record=record, to=S.REVIEWED)
    audit_log(
        actor=doctor,
        action=AuditEvent.Action.SIGN,
        obj=review,
        patient_ref=record.patient.patient_id,
        changes={"version": [None, review.version], "revision": [None, review.revision]},
    )
    _enqueue_configured("REVIEW_SIGNED_TASK", review.record_id)
    return review


# --- follow-up recall -----------------------------------------------------------------------
RECALL_MARKS = (
    RecallStatus.CONTACTED,
    RecallStatus.RESCHEDULED,
    RecallStatus.CAME_BACK,
    RecallStatus.DECLINED,
)
RECALL_NOTE_MAX_LENGTH = 500


def follow_up_mark(
    *,
    actor,
    review: DoctorReview,
    status: str,
    new_date: dt.date | None = None,
    note: str = "",
) -> FollowUpContact:
    """Record a step of recalling the patient for `review`'s follow-up (contacted, rescheduled
    to `new_date`, came back, declined); earlier steps stay as history. Audited."""
    require_permission(actor, "screening.add_followupcontact")
    errors: dict[str, list[str]] = {}
    if status not in RECALL_MARKS:
        errors["status"] = [_("Choose contacted, rescheduled, came back or declined.")]
    if status == RecallStatus.RESCHEDULED:
        if new_date is None:
            errors["new_date"] = [_("Enter the new follow-up date.")]
        elif new_date < timezone.localdate():
            errors["new_date"] = [_("The new follow-up date cannot be in the past.")]
    elif new_date is not None:
        errors["new_date"] = [_("Only a rescheduled follow-up takes a new date.")]
    note = (note or "").strip()
    if len(note) > RECALL_NOTE_MAX_LENGTH:
        errors["note"] = [
            _("Keep the note under %(max)d characters.") % {"max": RECALL_NOTE_MAX_LENGTH}
        ]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        # The record first, as every review write locks it: an amendment cannot slip in between.
        record = (
            ScreeningRecord.objects.select_for_update()
            .select_related("patient")
            .get(pk=review.record_id)
        )
        current = record.reviews.filter(signed_at__isnull=False).order_by("-version").first()
        if current is None or current.pk != review.pk or current.follow_up_date is None:
            raise ValidationError(
                _("This conclusion has been amended or sets no follow-up; reload the recall list.")
            )
        contact = FollowUpContact.objects.create(
            record=record,
            review=current,
            status=status,
            new_date=new_date,
            note=note,
            created_by=actor,
        )
        changes: dict[str, list[Any]] = {"status": [None, status]}
        if new_date is not None:
            changes["new_date"] = [None, new_date.isoformat()]
        if note:
            changes["note"] = [None, note]
        audit_log(
            actor=actor,
            action=AuditEvent.Action.CREATE,
            obj=contact,
            patient_ref=record.patient.patient_id,
            changes=changes,
        )
    return contact


def recall_page_view(*, actor, review: DoctorReview, full_phone: bool) -> None:
    """Log that `actor` opened a recall, and whether the patient's full phone number was shown."""
    patient = review.record.patient
    audit_log(
        actor=actor,
        action=AuditEvent.Action.VIEW,
        obj=patient,
        patient_ref=patient.patient_id,
        changes={"recall_of_record": review.record_id, "full_phone": full_phone},
    )


def recall_export_record(
    *, actor, patient_refs: list[str], filters: list[str], fmt: str, full_phone: bool
) -> None:
    """Log a download of the recall list: whom it named, which filters, full phones or not."""
    refs = list(dict.fromkeys(patient_refs))
    audit_log(
        actor=actor,
        action=AuditEvent.Action.DOWNLOAD,
        object_type="screening.followupcontact",
        object_repr=f"recall list ({len(refs)} patients, {fmt})",
        patient_ref=refs[0] if len(refs) == 1 else "",
        changes={
            "listed_patients": refs,
            "filters": filters,
            "format": fmt,
            "full_phone": full_phone,
        },
    )
