"""Reads of patients."""

from __future__ import annotations

import re

from django.db.models import Q, QuerySet

from patients.models import Patient
from patients.pinyin import pinyin_query

# The last digits staff read off a phone or an ID card: four are enough to narrow a clinic's list.
MIN_TAIL_DIGITS = 4
MIN_PINYIN_ANYWHERE = 4
_DIGITS_QUERY = re.compile(r"\d[\d\s-]*")
_NATIONAL_ID_TAIL = re.compile(rf"\d{{{MIN_TAIL_DIGITS - 1},17}}[\dX]")


def _from_a_reading_start(field: str, text: str) -> Q:
    return Q(**{f"{field}__startswith": text}) | Q(**{f"{field}__contains": f" {text}"})


def patient_search(*, query: str = "") -> QuerySet[Patient]:
    """Patients matching what staff type: a patient ID (or its start), part of the Chinese name,
    the name in pinyin or its initials ('zxy', 'zhangxiaoyu', 'Zhang Xiaoyu' find 张晓宇; case,
    spaces and tone marks ignored), a phone number or its last 4+ digits, or a resident ID
    number or its last 4+ characters (x or X)."""
    patients = Patient.objects.all()
    query = (query or "").strip()
    if not query:
        return patients
    condition = Q(patient_id__iexact=query) | Q(name__icontains=query)
    if query.upper().startswith("P"):
        condition |= Q(patient_id__istartswith=query)
    spelled = pinyin_query(query)
    if len(spelled) >= 2:
        # The stored keys list each reading of the name, space-separated. Initials match from
        # the start of a reading; so does short pinyin ("li"), while longer pinyin matches
        # anywhere (a given name typed alone) without "an" matching every 张 and 王.
        condition |= _from_a_reading_start("name_initials", spelled)
        if len(spelled) >= MIN_PINYIN_ANYWHERE:
            condition |= Q(name_pinyin__contains=spelled)
        else:
            condition |= _from_a_reading_start("name_pinyin", spelled)
    compact = re.sub(r"[\s-]", "", query).upper()
    if _DIGITS_QUERY.fullmatch(query) and len(compact) >= MIN_TAIL_DIGITS:
        condition |= Q(phone__endswith=compact)
    if _NATIONAL_ID_TAIL.fullmatch(compact):
        condition |= Q(national_id__endswith=compact)
    return patients.filter(condition)


def patient_get(*, patient_id: str) -> Patient:
    return Patient.objects.get(patient_id=patient_id)
