"""The patient page: details, screening history with each visit's conclusion and report, trends."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.charts import LineChart, line_chart
from core.profiles import va_notation_for
from core.web import staff_view
from patients.models import Patient
from patients.services import patient_record_view
from reports.models import Report
from screening.acuity import DECIMAL
from screening.models import (
    IOP_NORMAL_HIGH,
    IOP_NORMAL_LOW,
    AcuityKind,
    DoctorReview,
    ScreeningRecord,
)
from screening.selectors import record_list


def trend_charts(
    chronological: list[ScreeningRecord],
    marks: Sequence[tuple[int, str]] = (),
    *,
    va_notation: str,
) -> tuple[LineChart, LineChart]:
    """The VA (uncorrected, in `va_notation`) and IOP charts of visits in time order; `marks`
    labels chosen visits (index)."""
    dates = [f"{timezone.localtime(r.screened_at):%Y-%m-%d}" for r in chronological]

    def values(field: str) -> list[float | None]:
        return [
            None if getattr(r, field) is None else float(getattr(r, field)) for r in chronological
        ]

    def acuities(eye: str) -> list[float | None]:
        measured = [r.acuity_of(AcuityKind.UNCORRECTED, eye) for r in chronological]
        return [
            None
            if value is None
            else float(value.decimal if va_notation == DECIMAL else value.five_point)
            for value in measured
        ]

    va_axis = (0, 1.2, 0.2) if va_notation == DECIMAL else (3.0, 5.3, 0.5)
    va_chart = line_chart(
        x_labels=dates,
        series=[
            (_("Right eye (OD)"), "od", acuities("od")),
            (_("Left eye (OS)"), "os", acuities("os")),
        ],
        y_min=va_axis[0],
        y_max=va_axis[1],
        y_step=va_axis[2],
        marks=marks,
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
        marks=marks,
    )
    return va_chart, iop_chart


@staff_view("patients.view_patient", "screening.view_screeningrecord")
def patient_detail(request: HttpRequest, patient_id: str) -> HttpResponse:
    patient = get_object_or_404(Patient, patient_id=patient_id)
    patient_record_view(actor=request.user, patient=patient)
    records = list(
        record_list(patient=patient).prefetch_related(
            Prefetch(
                "reviews",
                queryset=DoctorReview.objects.filter(signed_at__isnull=False).order_by("-version"),
                to_attr="signed_reviews",
            ),
            Prefetch(
                "reports", queryset=Report.objects.order_by("-version"), to_attr="report_versions"
            ),
        )
    )
    chronological = sorted(records, key=lambda r: r.screened_at)
    va_notation = va_notation_for(request.user)
    va_chart, iop_chart = trend_charts(chronological, va_notation=va_notation)
    return render(
        request,
        "pages/patient_detail.html",
        {
            "nav_section": "patients",
            "patient": patient,
            "records": records,
            "chronological": chronological,
            "va_chart": va_chart,
            "va_notation": va_notation,
            "iop_chart": iop_chart,
        },
    )
