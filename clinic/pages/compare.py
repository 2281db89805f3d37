"""Compare visits: one patient's two visits side by side (photos per eye with synchronised
zoom, AI findings, the doctor's conclusions) and the VA/IOP trend with both visits marked."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.comparison import (
    Visit,
    VisitChoiceError,
    VisitEye,
    parse_visit_ids,
    patient_visits,
    visit_comparison,
    visit_pair,
)
from clinic.pages.patient import trend_charts
from clinic.pages.viewer import viewer_json, viewer_photo
from core.profiles import va_notation_for
from core.web import staff_view
from patients.models import Patient
from patients.services import patient_record_view
from screening.models import Eye


def _with_viewer(visit: Visit, eye: str) -> VisitEye:
    """The eye of the visit, with the viewer's photos (the report's first) as JSON."""
    visit_eye = visit.eyes[eye]
    day = f"{timezone.localtime(visit.record.screened_at):%Y-%m-%d}"
    visit_eye.viewer_photos = viewer_json(
        [
            viewer_photo(
                image,
                f"{visit_eye.label} · {day} · " + _("Photo %(number)s") % {"number": image.pk},
                visit_eye.heatmaps if image == visit_eye.photo else (),
            )
            for image in visit_eye.photos
        ]
    )
    return visit_eye


@staff_view("patients.view_patient", "screening.view_screeningrecord")
def compare_visits(request: HttpRequest, patient_id: str) -> HttpResponse:
    patient = get_object_or_404(Patient, patient_id=patient_id)
    try:
        ids = parse_visit_ids(request.GET.get("a"), request.GET.get("b"))
    except VisitChoiceError as exc:
        return HttpResponseBadRequest(str(exc))
    visits = patient_visits(patient=patient)
    pair = visit_pair(visits=visits, ids=ids)
    if pair is None and ids is not None:
        # A visit that does not exist, or another patient's, is not shown here.
        raise Http404(_("No such visit of this patient."))
    patient_record_view(actor=request.user, patient=patient)
    context = {"nav_section": "patients", "patient": patient, "visits": visits, "pair": None}
    if pair is not None:
        earlier, later = (visit_comparison(record=record) for record in pair)
        chronological = sorted(visits, key=lambda r: (r.screened_at, r.pk))
        index = {record.pk: position for position, record in enumerate(chronological)}
        va_notation = va_notation_for(request.user)
        va_chart, iop_chart = trend_charts(
            chronological,
            marks=[(index[earlier.record.pk], "A"), (index[later.record.pk], "B")],
            va_notation=va_notation,
        )
        pairs = [("A", earlier), ("B", later)]
        context.update(
            pair=(earlier, later),
            eyes=[
                (
                    eye,
                    label,
                    [(letter, visit, _with_viewer(visit, eye)) for letter, visit in pairs],
                )
                for eye, label in Eye.choices
            ],
            va_notation=va_notation,
            va_chart=va_chart,
            iop_chart=iop_chart,
            chart_note=_("A and B mark the two visits compared."),
        )
    return render(request, "pages/compare_visits.html", context)
