"""Staff web UI: patient search, registration, editing and the (audited) patient page."""

from __future__ import annotations

from django.apps import apps
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Max, Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.charts import line_chart
from clinic.web import add_service_errors, staff_view
from patients.forms import PatientForm, PatientSearchForm
from patients.models import Patient
from patients.selectors import patient_search
from patients.services import EDITABLE_FIELDS, patient_create, patient_record_view, patient_update
from screening.models import IOP_NORMAL_HIGH, IOP_NORMAL_LOW, DoctorReview
from screening.selectors import record_list

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
            return redirect("patients:detail", patient_id=patient.patient_id)
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
            return redirect("patients:detail", patient_id=patient.patient_id)
    return render(request, "patients/patient_form.html", {"form": form, "patient": patient})


@staff_view("patients.view_patient", "screening.view_screeningrecord")
def patient_detail(request: HttpRequest, patient_id: str) -> HttpResponse:
    patient = get_object_or_404(Patient, patient_id=patient_id)
    patient_record_view(actor=request.user, patient=patient)
    records = record_list(patient=patient).prefetch_related(
        Prefetch(
            "reviews",
            queryset=DoctorReview.objects.filter(signed_at__isnull=False).order_by("-version"),
            to_attr="signed_reviews",
        )
    )
    reports_installed = apps.is_installed("reports")
    if reports_installed:
        from reports.models import Report  # an optional, later app: imported only when present

        records = records.prefetch_related(
            Prefetch(
                "reports", queryset=Report.objects.order_by("-version"), to_attr="report_versions"
            )
        )
    records = list(records)
    chronological = sorted(records, key=lambda r: r.screened_at)
    dates = [f"{timezone.localtime(r.screened_at):%Y-%m-%d}" for r in chronological]

    def values(field: str) -> list[float | None]:
        return [
            None if getattr(r, field) is None else float(getattr(r, field)) for r in chronological
        ]

    va_chart = line_chart(
        x_labels=dates,
        series=[
            (_("Right eye (OD)"), "od", values("va_od")),
            (_("Left eye (OS)"), "os", values("va_os")),
        ],
        y_min=0,
        y_max=1.2,
        y_step=0.2,
    )
    iop_chart = line_chart(
        x_labels=dates,
        series=[
            (_("Right eye (OD)"), "od", values("iop_od")),
            (_("Left eye (OS)"), "os", values("iop_os")),
        ],
        y_min=5,
        y_max=30,
        y_step=5,
        normal_range=(float(IOP_NORMAL_LOW), float(IOP_NORMAL_HIGH)),
    )
    return render(
        request,
        "patients/patient_detail.html",
        {
            "patient": patient,
            "records": records,
            "chronological": chronological,
            "va_chart": va_chart,
            "iop_chart": iop_chart,
            "reports_installed": reports_installed,
        },
    )
