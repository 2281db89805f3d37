"""Writes to patients: every create, change and delete goes through here and is audited."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import audit_log, field_changes
from core.models import AuditEvent
from core.roles import Role, require_permission, role_assign
from core.text import normalize_name
from patients.identifiers import (
    mask_national_id,
    mask_phone,
    national_id_birth_date,
    national_id_sex,
    normalize_national_id,
    normalize_phone,
)
from patients.models import Patient, PatientAccount, PatientIdCounter, Sex
from patients.pinyin import name_pinyin_keys

MAX_AGE_YEARS = 130
EDITABLE_FIELDS = ("name", "sex", "date_of_birth", "phone", "national_id", "notes")
# Identifiers are written to the audit log masked: the log must not become a second copy.
MASKERS = {"phone": mask_phone, "national_id": mask_national_id}


def patient_next_id(*, year: int | None = None) -> str:
    """Issue the next readable patient ID (e.g. P20260001); safe under concurrent requests.

    The counter row is updated with F() inside the caller's transaction, so the row stays
    locked until commit and two requests never get the same number.
    """
    year = year or timezone.localdate().year
    with transaction.atomic():
        updated = PatientIdCounter.objects.filter(year=year).update(last_value=F("last_value") + 1)
        if not updated:
            try:
                with transaction.atomic():
                    PatientIdCounter.objects.create(year=year, last_value=1)
            except IntegrityError:
                PatientIdCounter.objects.filter(year=year).update(last_value=F("last_value") + 1)
        value = PatientIdCounter.objects.get(year=year).last_value
    return f"{settings.PATIENT_ID_PREFIX}{year}{value:04d}"


def patient_clean_fields(
    fields: dict[str, Any], *, instance: Patient | None = None
) -> dict[str, Any]:
    """Normalise and validate; raises one ValidationError with every field's message."""
    errors: dict[str, list[str]] = {}
    cleaned = dict(fields)

    if "name" in cleaned:
        try:
            name = normalize_name(cleaned.get("name") or "")
        except ValidationError as exc:
            errors.setdefault("name", []).extend(exc.messages)
        else:
            if not name:
                errors.setdefault("name", []).append(_("Enter the patient's name."))
            cleaned["name"] = name

    for field, normalizer in (("phone", normalize_phone), ("national_id", normalize_national_id)):
        if cleaned.get(field):
            try:
                cleaned[field] = normalizer(cleaned[field])
            except ValidationError as exc:
                errors.setdefault(field, []).extend(exc.messages)
        elif field in cleaned:
            cleaned[field] = ""

    national_id = cleaned.get("national_id", instance.national_id if instance else "")
    if national_id and "national_id" not in errors:
        # A valid resident ID records the birth date and sex: fill what was left empty.
        if "sex" in cleaned and not cleaned["sex"]:
            cleaned["sex"] = national_id_sex(national_id)
        if "date_of_birth" in cleaned and cleaned["date_of_birth"] is None:
            cleaned["date_of_birth"] = national_id_birth_date(national_id)

    if "sex" in cleaned and cleaned["sex"] not in Sex.values:
        errors.setdefault("sex", []).append(_("Choose male, female or unknown."))

    date_of_birth = cleaned.get("date_of_birth", instance.date_of_birth if instance else None)
    if "date_of_birth" in cleaned:
        today = timezone.localdate()
        if not isinstance(date_of_birth, dt.date):
            errors.setdefault("date_of_birth", []).append(_("Enter the date of birth."))
        elif date_of_birth > today:
            errors.setdefault("date_of_birth", []).append(
                _("The date of birth cannot be in the future.")
            )
        elif today.year - date_of_birth.year > MAX_AGE_YEARS:
            errors.setdefault("date_of_birth", []).append(
                _("Check the date of birth: the patient would be over 130 years old.")
            )

    if national_id and "national_id" not in errors and isinstance(date_of_birth, dt.date):
        if national_id_birth_date(national_id) != date_of_birth:
            errors.setdefault("national_id", []).append(
                _(
                    "The birth date in the ID number (%(id_date)s) differs from the date of birth entered."
                )
                % {"id_date": national_id_birth_date(national_id).isoformat()}
            )
    sex = cleaned.get("sex", instance.sex if instance else "")
    if national_id and "national_id" not in errors and sex in (Sex.MALE, Sex.FEMALE):
        if national_id_sex(national_id) != sex:
            errors.setdefault("national_id", []).append(
                _(
                    "The ID number records the sex as %(id_sex)s (its 17th digit), "
                    "but %(sex)s was chosen."
                )
                % {
                    "id_sex": Sex(national_id_sex(national_id)).label,
                    "sex": Sex(sex).label,
                }
            )
    if national_id and "national_id" not in errors:
        duplicates = Patient.objects.filter(national_id=national_id)
        if instance is not None:
            duplicates = duplicates.exclude(pk=instance.pk)
        existing = duplicates.first()
        if existing is not None:
            errors.setdefault("national_id", []).append(
                _("Patient %(patient_id)s already has this ID number.")
                % {"patient_id": existing.patient_id}
            )
    if errors:
        raise ValidationError(errors)
    return cleaned


def _masked(changes: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {
        field: [None if value is None else MASKERS[field](value) for value in values]
        if field in MASKERS
        else values
        for field, values in changes.items()
    }


def patient_create(
    *,
    actor,
    name: str,
    sex: str = "",
    date_of_birth: dt.date | None = None,
    phone: str = "",
    national_id: str = "",
    notes: str = "",
) -> Patient:
    require_permission(actor, "patients.add_patient")
    fields = patient_clean_fields(
        {
            "name": name,
            "sex": sex,
            "date_of_birth": date_of_birth,
            "phone": phone,
            "national_id": national_id,
            "notes": notes,
        }
    )
    with transaction.atomic():
        name_pinyin, name_initials = name_pinyin_keys(fields["name"])
        patient = Patient.objects.create(
            patient_id=patient_next_id(),
            created_by=actor,
            name_pinyin=name_pinyin,
            name_initials=name_initials,
            **fields,
        )
        audit_log(
            actor=actor,
            action=AuditEvent.Action.CREATE,
            obj=patient,
            patient_ref=patient.patient_id,
            changes=_masked({name: [None, value] for name, value in fields.items() if value}),
        )
    return patient


def patient_update(*, actor, patient: Patient, **fields: Any) -> Patient:
    require_permission(actor, "patients.change_patient")
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"patient_update got fields it cannot change: {sorted(unknown)}")
    cleaned = patient_clean_fields(fields, instance=patient)
    changes = field_changes(patient, cleaned)
    if not changes:
        return patient
    with transaction.atomic():
        for name, value in cleaned.items():
            setattr(patient, name, value)
        derived = []
        if "name" in changes:
            patient.name_pinyin, patient.name_initials = name_pinyin_keys(patient.name)
            derived = ["name_pinyin", "name_initials"]
        patient.save(update_fields=[*cleaned.keys(), *derived, "updated_at"])
        audit_log(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            obj=patient,
            patient_ref=patient.patient_id,
            changes=_masked(changes),
        )
    return patient


def patient_delete(*, actor, patient: Patient) -> None:
    """Delete a patient registered by mistake; refused once clinical data exists."""
    require_permission(actor, "patients.delete_patient")
    if patient.screening_records.exists():
        raise ValidationError(
            _("Patient %(patient_id)s has screening records and cannot be deleted.")
            % {"patient_id": patient.patient_id}
        )
    with transaction.atomic():
        audit_log(
            actor=actor,
            action=AuditEvent.Action.DELETE,
            obj=patient,
            patient_ref=patient.patient_id,
        )
        patient.delete()


def patient_record_view(*, actor, patient: Patient) -> None:
    """Log that `actor` opened this patient's data (detail pages, API reads)."""
    audit_log(
        actor=actor, action=AuditEvent.Action.VIEW, obj=patient, patient_ref=patient.patient_id
    )


def patient_account_create(*, patient: Patient, wechat_openid: str) -> PatientAccount:
    """Bind a WeChat account to `patient`: a user with the patient role and no staff access.

    The caller has verified the patient's credentials (the mini-program's binding step).
    """
    with transaction.atomic():
        user = get_user_model().objects.create_user(
            username=f"wx-{uuid.uuid4().hex[:20]}", is_staff=False
        )
        user.set_unusable_password()
        user.save(update_fields=["password"])
        role_assign(user=user, role=Role.PATIENT)
        account = PatientAccount.objects.create(
            user=user, patient=patient, wechat_openid=wechat_openid, last_login_at=timezone.now()
        )
        audit_log(
            actor=user,
            action=AuditEvent.Action.CREATE,
            obj=account,
            patient_ref=patient.patient_id,
        )
    return account
