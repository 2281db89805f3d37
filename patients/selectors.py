"""Reads of patients."""

from __future__ import annotations

import re

from django.db.models import Q, QuerySet

from patients.models import Patient


def patient_search(*, query: str = "") -> QuerySet[Patient]:
    """Patients matching an ID, a name, a phone number (or its last digits) or an ID number."""
    patients = Patient.objects.all()
    query = (query or "").strip()
    if not query:
        return patients
    digits = re.sub(r"\D", "", query)
    condition = Q(patient_id__iexact=query) | Q(name__icontains=query)
    if query.upper().startswith("P"):
        condition |= Q(patient_id__istartswith=query)
    if len(digits) >= 4 and len(digits) == len(query.replace("-", "").replace(" ", "")):
        condition |= Q(phone__contains=digits)
    if len(query) == 18:
        condition |= Q(national_id__iexact=query)
    return patients.filter(condition)


def patient_get(*, patient_id: str) -> Patient:
    return Patient.objects.get(patient_id=patient_id)
