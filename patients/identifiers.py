"""Validation, normalisation and masking of phone numbers and Chinese resident ID numbers."""

from __future__ import annotations

import datetime as dt
import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE_RE = re.compile(r"^0\d{2,3}\d{7,8}$")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"


def normalize_phone(raw: str) -> str:
    """Digits only, without a +86/0086 country prefix; raises ValidationError if implausible."""
    digits = re.sub(r"[\s\-()]", "", raw or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not digits.isdigit() or not (MOBILE_RE.match(digits) or LANDLINE_RE.match(digits)):
        raise ValidationError(
            _(
                "Enter a mainland mobile number (11 digits, e.g. 13812348000) or a landline with its area code (e.g. 010-12345678)."
            ),
            code="invalid_phone",
        )
    return digits


def national_id_check_char(first17: str) -> str:
    total = sum(int(digit) * weight for digit, weight in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def national_id_birth_date(national_id: str) -> dt.date:
    return dt.date(int(national_id[6:10]), int(national_id[10:12]), int(national_id[12:14]))


def national_id_sex(national_id: str) -> str:
    """The sex a resident ID records in its 17th digit: odd ``"male"``, even ``"female"``."""
    return "male" if int(national_id[16]) % 2 else "female"


def normalize_national_id(raw: str) -> str:
    """An 18-character resident ID with a valid check character and birth date, upper-cased."""
    value = (raw or "").strip().upper()
    if not re.fullmatch(r"\d{17}[\dX]", value):
        raise ValidationError(
            _("A resident ID number has 18 characters: 17 digits and a final digit or X."),
            code="invalid_national_id",
        )
    if national_id_check_char(value[:17]) != value[17]:
        raise ValidationError(
            _("This ID number's check character is wrong; please check it against the ID card."),
            code="invalid_national_id_checksum",
        )
    try:
        national_id_birth_date(value)
    except ValueError as exc:
        raise ValidationError(
            _("This ID number does not contain a valid birth date."),
            code="invalid_national_id_date",
        ) from exc
    return value


def mask_phone(phone: str) -> str:
    """13812348000 → 138****8000; short numbers keep only their last 2 digits."""
    if not phone:
        return ""
    if len(phone) >= 11:
        return f"{phone[:3]}{'*' * (len(phone) - 7)}{phone[-4:]}"
    return f"{'*' * max(len(phone) - 2, 0)}{phone[-2:]}"


def mask_national_id(national_id: str) -> str:
    """110101199003074514 → 110***********4514 (region and birth date hidden)."""
    if not national_id:
        return ""
    return f"{national_id[:3]}{'*' * (len(national_id) - 7)}{national_id[-4:]}"
