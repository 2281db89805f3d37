"""Staff web UI: patient search, registration and editing.

The patient page shows screenings and reports, so it lives in the site shell
(clinic/pages/patient.py).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from core.web import add_service_errors, staff_view
from patients.forms import PatientForm, PatientSearchForm
from patients.models import Patient
from patients.selectors import patient_search
from patients.services import EDITABLE_FIELDS, patient_create, patient_update

PAGE_SIZE = 25


@staff_view("patients.view_patient")
def patient_list(request: HttpRequest) -> HttpResponse:
    form = PatientSearchForm(request.GET or None)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    patients = (
        patient_search(query=query)
        .annotate(last_screened_at=Max("screening_records__screened_at"))
        .order_by("-created_at", "-id")
    )
    page = Paginator(patients, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "patients/patient_list.html",
        {"form": form, "query": query, "page": page, "patients": page.object_list},
    )


@staff_view("patients.add_patient")
def patient_new(request: HttpRequest) -> HttpResponse:
    form = PatientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            patient = patient_create(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                _("Patient %(patient_id)s registered.") % {"patient_id": patient.patient_id},
            )
            return redirect("pages:patient-detail", patient_id=patient.patient_id)
    return render(request, "patients/patient_form.html", {"form": form, "patient": None})


@staff_view("patients.change_patient")
def patient_edit(request: HttpRequest, patient_id: str) -> HttpResponse:
    patient = get_object_or_404(Patient, patient_id=patient_id)
    initial = {name: getattr(patient, name) for name in EDITABLE_FIELDS}
    form = PatientForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            patient_update(actor=request.user, patient=patient, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Patient details saved."))
            return redirect("pages:patient-detail", patient_id=patient.patient_id)
    return render(request, "patients/patient_form.html", {"form": form, "patient": patient})
